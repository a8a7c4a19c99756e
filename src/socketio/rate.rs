//! The event rate of one socket: a token bucket, and how long the socket has been over it.
//! Over the rate an event is dropped; a socket still over it after `events_excess_disconnect`
//! is disconnected. "Still over" means dropped events keep coming with gaps under a second.

use std::time::{Duration, Instant};

use crate::limits::{Rate, TokenBucket};

/// Longest gap between dropped events that still counts as one stretch of excess.
const EXCESS_GAP: Duration = Duration::from_secs(1);

/// What to do with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Handle it.
    Allow,
    /// Drop it.
    Drop,
    /// Drop it and disconnect the socket: it has been over its rate too long.
    Disconnect,
}

/// Per-socket state.
#[derive(Debug)]
pub(crate) struct EventRate {
    bucket: TokenBucket,
    excess: Option<(Instant, Instant)>,
}

impl EventRate {
    pub(crate) fn new(rate: Rate, now: Instant) -> Self {
        EventRate {
            bucket: TokenBucket::new(rate, now),
            excess: None,
        }
    }

    pub(crate) fn check(&mut self, rate: Rate, sustained: Duration, now: Instant) -> Verdict {
        if self.bucket.try_take(rate, now) {
            return Verdict::Allow;
        }
        let since = match self.excess {
            Some((since, last)) if now.saturating_duration_since(last) <= EXCESS_GAP => since,
            _ => now,
        };
        self.excess = Some((since, now));
        if now.saturating_duration_since(since) >= sustained {
            Verdict::Disconnect
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_dropped_and_sustained_excess_disconnects() {
        let rate = Rate::new(10, Duration::from_secs(1), Some(2));
        let t0 = Instant::now();
        let mut r = EventRate::new(rate, t0);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(r.check(rate, Duration::from_secs(3), at(0)), Verdict::Allow);
        assert_eq!(r.check(rate, Duration::from_secs(3), at(0)), Verdict::Allow);
        assert_eq!(r.check(rate, Duration::from_secs(3), at(1)), Verdict::Drop);
        // A quiet spell ends the stretch of excess.
        assert_eq!(
            r.check(rate, Duration::from_secs(3), at(5000)),
            Verdict::Allow
        );
        // Flooding: every 10 ms for 3 s, always more than 10/s.
        let mut last = Verdict::Allow;
        let mut ms = 5000;
        while last != Verdict::Disconnect {
            ms += 10;
            last = r.check(rate, Duration::from_secs(3), at(ms));
            assert!(ms < 9000, "disconnected within the sustain time");
        }
        assert!(ms >= 8000, "not before 3 s of excess: {ms}");
    }
}
