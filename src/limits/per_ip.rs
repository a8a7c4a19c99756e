//! Per-address state in a bounded table. IPv6 clients are keyed by their /64, the block one
//! subscriber usually holds, so an attacker with a /64 is still one client.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// A client address as limits count it: an IPv4 address, or an IPv6 /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKey {
    /// An IPv4 address (IPv4-mapped IPv6 addresses included).
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(v4) => IpKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey::V4(u32::from(v4)),
                None => IpKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// A table of per-address values that never grows past `capacity` entries: when full,
/// entries `idle` says are unneeded are dropped; if that frees nothing, a new address is not
/// tracked (the caller decides what that means). Idle entries are also swept each time the
/// table has doubled since the last sweep, so it stays near the addresses in use however
/// many have come and gone.
#[derive(Debug)]
pub struct PerIp<V> {
    table: Mutex<Table<V>>,
    capacity: usize,
}

#[derive(Debug)]
struct Table<V> {
    map: HashMap<IpKey, V>,
    /// The size at which idle entries are swept next.
    sweep_at: usize,
}

/// The smallest table that is ever swept before it is full.
const FIRST_SWEEP: usize = 1024;

impl<V> PerIp<V> {
    /// An empty table of at most `capacity` addresses.
    pub fn new(capacity: usize) -> Self {
        PerIp {
            table: Mutex::new(Table {
                map: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
            capacity: capacity.max(1),
        }
    }

    /// Run `f` on the value of `key`, creating it with `make` if the table has room (after
    /// pruning entries for which `idle` holds). `None` when there was no room.
    pub fn with<R>(
        &self,
        key: IpKey,
        make: impl FnOnce() -> V,
        idle: impl Fn(&V) -> bool,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R> {
        let mut table = self.table.lock().expect("per-ip lock");
        let Table { map, sweep_at } = &mut *table;
        if !map.contains_key(&key) && map.len() >= (*sweep_at).min(self.capacity) {
            map.retain(|_, v| !idle(v));
            *sweep_at = (2 * map.len()).max(FIRST_SWEEP);
            if map.capacity() > 4 * *sweep_at {
                map.shrink_to(*sweep_at);
            }
            if map.len() >= self.capacity {
                return None;
            }
        }
        Some(f(map.entry(key).or_insert_with(make)))
    }

    /// Run `f` on the value of `key` if there is one; remove it if `idle` then holds.
    pub fn update(&self, key: IpKey, f: impl FnOnce(&mut V), idle: impl Fn(&V) -> bool) {
        let map = &mut self.table.lock().expect("per-ip lock").map;
        if let Some(v) = map.get_mut(&key) {
            f(v);
            if idle(v) {
                map.remove(&key);
            }
        }
    }

    /// How many addresses are tracked.
    pub fn len(&self) -> usize {
        self.table.lock().expect("per-ip lock").map.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PerIp<usize> {
    /// Count one more for `key` if it has fewer than `cap`: `Some(true)` when counted,
    /// `Some(false)` at the cap, `None` when the table has no room for a new address.
    pub fn acquire(&self, key: IpKey, cap: usize) -> Option<bool> {
        self.with(
            key,
            || 0,
            |n| *n == 0,
            |n| {
                if *n >= cap {
                    false
                } else {
                    *n += 1;
                    true
                }
            },
        )
    }

    /// Count one less for `key` (forgetting it at zero).
    pub fn release(&self, key: IpKey) {
        self.update(key, |n| *n = n.saturating_sub(1), |n| *n == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(IpKey::from(a), IpKey::from(b));
        assert_ne!(IpKey::from(a), IpKey::from(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(IpKey::from(mapped), IpKey::from(v4));
    }

    #[test]
    fn the_table_stays_bounded_and_prunes_idle_entries() {
        let table: PerIp<u32> = PerIp::new(2);
        let key = |n: u8| IpKey::from(IpAddr::from([10, 0, 0, n]));
        let idle = |v: &u32| *v == 0;
        assert_eq!(
            table.with(
                key(1),
                || 0,
                idle,
                |v| {
                    *v += 1;
                    *v
                }
            ),
            Some(1)
        );
        assert_eq!(
            table.with(
                key(2),
                || 0,
                idle,
                |v| {
                    *v += 1;
                    *v
                }
            ),
            Some(1)
        );
        assert_eq!(table.with(key(3), || 0, idle, |v| *v), None, "full");
        table.update(key(1), |v| *v -= 1, idle);
        assert_eq!(table.len(), 1, "an entry back to idle is removed");
        assert_eq!(
            table.with(
                key(3),
                || 0,
                idle,
                |v| {
                    *v += 1;
                    *v
                }
            ),
            Some(1)
        );
    }

    #[test]
    fn addresses_that_come_and_go_do_not_pile_up() {
        // A rate bucket of each address is idle again soon after use: a stream of new
        // addresses, 100,000 of them, leaves a table near the few in use, not all of them.
        let table: PerIp<bool> = PerIp::new(65_536);
        let busy = |n: u32| n.is_multiple_of(1000); // one in a thousand stays in use
        for n in 0..100_000u32 {
            let key = IpKey::V4(n);
            table.with(key, || busy(n), |v| !*v, |_| ());
        }
        assert!(table.len() <= 2 * FIRST_SWEEP, "{} entries", table.len());
        for n in (0..100_000u32).filter(|n| busy(*n)) {
            assert_eq!(
                table.with(IpKey::V4(n), || false, |v| !*v, |v| *v),
                Some(true),
                "kept {n}"
            );
        }
    }
}
