//! Token buckets: `burst` tokens, refilled at `per_second`; one event takes one token.
//! Pure: the caller passes the time, so tests step it by hand.

use std::time::{Duration, Instant};

/// A rate with a burst, as `[limits]` writes it (`"50/s"`, `{ rate = "50/s", burst = 100 }`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens held: what may arrive at once after a quiet spell.
    pub burst: u32,
}

impl Rate {
    /// `count` per `period`, with a burst of `count` unless given.
    pub fn new(count: u32, period: Duration, burst: Option<u32>) -> Rate {
        Rate {
            per_second: f64::from(count) / period.as_secs_f64().max(1e-9),
            burst: burst.unwrap_or(count).max(1),
        }
    }
}

/// One bucket. Starts full.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate`.
    pub fn new(rate: Rate, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: f64::from(rate.burst),
            last: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
        self.last = now;
    }

    /// Take one token if there is one.
    pub fn try_take(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full again: nothing is left to remember about its owner.
    pub fn is_full(&self, rate: Rate, now: Instant) -> bool {
        let mut copy = *self;
        copy.refill(rate, now);
        copy.tokens >= f64::from(rate.burst)
    }

    /// How long until a token is available.
    pub fn wait(&self, rate: Rate, now: Instant) -> Duration {
        let mut copy = *self;
        copy.refill(rate, now);
        let missing = (1.0 - copy.tokens).max(0.0);
        Duration::from_secs_f64(missing / rate.per_second.max(1e-9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let rate = Rate::new(2, Duration::from_secs(1), Some(3));
        let t0 = Instant::now();
        let mut b = TokenBucket::new(rate, t0);
        assert!(b.try_take(rate, t0) && b.try_take(rate, t0) && b.try_take(rate, t0));
        assert!(!b.try_take(rate, t0), "burst spent");
        assert_eq!(b.wait(rate, t0), Duration::from_millis(500));
        assert!(!b.try_take(rate, t0 + Duration::from_millis(400)));
        assert!(
            b.try_take(rate, t0 + Duration::from_millis(500)),
            "refilled at 2/s"
        );
        assert!(!b.is_full(rate, t0 + Duration::from_millis(500)));
        assert!(b.is_full(rate, t0 + Duration::from_secs(10)));
        assert!(b.try_take(rate, t0 + Duration::from_secs(10)));
    }

    #[test]
    fn per_minute_rates_and_default_burst() {
        let rate = Rate::new(60, Duration::from_secs(60), None);
        assert_eq!((rate.per_second, rate.burst), (1.0, 60));
    }
}
