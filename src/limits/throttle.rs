//! At most one log line per key and interval, with the count of what was held back, so a
//! flood of bad input cannot flood the log.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys remembered; past it the table starts over (a few extra lines, never unbounded).
const MAX_KEYS: usize = 4096;

/// A per-key log throttle.
#[derive(Debug)]
pub struct Throttle<K> {
    interval: Duration,
    seen: Mutex<HashMap<K, (Instant, u64)>>,
}

impl<K: Hash + Eq> Throttle<K> {
    /// One line per key every `interval`.
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to log for `key` now: `Some(n)` with the number of occurrences held back
    /// since the last line, or `None` to stay quiet (the occurrence is counted).
    pub fn allow(&self, key: K, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().expect("throttle lock");
        if seen.len() >= MAX_KEYS && !seen.contains_key(&key) {
            seen.clear();
        }
        match seen.get_mut(&key) {
            Some((last, held)) if now.saturating_duration_since(*last) < self.interval => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                *last = now;
                Some(std::mem::take(held))
            }
            None => {
                seen.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.allow("a", t0), Some(0));
        assert_eq!(t.allow("a", t0 + Duration::from_secs(1)), None);
        assert_eq!(t.allow("a", t0 + Duration::from_secs(2)), None);
        assert_eq!(t.allow("b", t0 + Duration::from_secs(2)), Some(0));
        assert_eq!(t.allow("a", t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(t.allow("a", t0 + Duration::from_secs(11)), None);
    }
}
