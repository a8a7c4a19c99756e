//! Where every message of a soak run is accounted for: sent, acknowledged, received by
//! each observer, or left unacknowledged for a stated reason.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// A growable set of message ids.
#[derive(Debug, Default)]
pub struct Bits(Vec<u64>);

impl Bits {
    /// Add `id`; whether it was new.
    pub fn insert(&mut self, id: u64) -> bool {
        let (word, bit) = ((id / 64) as usize, id % 64);
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        let new = self.0[word] & (1 << bit) == 0;
        self.0[word] |= 1 << bit;
        new
    }

    /// Whether `id` is in.
    pub fn contains(&self, id: u64) -> bool {
        self.0
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// How many ids are in.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// The run's books.
#[derive(Debug, Default)]
pub struct Ledger {
    next_id: Cell<u64>,
    /// Messages the server acknowledged: routed, so queued to every room member.
    pub acked: RefCell<Bits>,
    /// Messages whose sender closed abruptly right after sending, without waiting for the ack.
    pub abrupt: RefCell<Bits>,
    /// Messages whose sender's session ended before the ack, unexpectedly.
    pub lost: RefCell<Bits>,
    /// What each observer received.
    pub observed: Vec<RefCell<Bits>>,
    /// Messages an observer received twice.
    pub duplicates: Cell<u64>,
    /// Deliveries that could not be read.
    pub unreadable: Cell<u64>,
    /// Lifecycles completed, by kind (`websocket`, `polling`, `upgrade`, `hostile:<what>`).
    pub lifecycles: RefCell<BTreeMap<String, u64>>,
    /// Things that should not happen, by kind, with the first example of each.
    pub errors: RefCell<BTreeMap<String, (u64, String)>>,
}

impl Ledger {
    /// Books for `observers` observers.
    pub fn new(observers: usize) -> Ledger {
        Ledger {
            observed: (0..observers).map(|_| RefCell::default()).collect(),
            ..Ledger::default()
        }
    }

    /// A fresh message id.
    pub fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Ids handed out so far.
    pub fn sent(&self) -> u64 {
        self.next_id.get()
    }

    /// Observer `i` received message `id`.
    pub fn observe(&self, i: usize, id: u64) {
        if !self.observed[i].borrow_mut().insert(id) {
            self.duplicates.set(self.duplicates.get() + 1);
        }
    }

    /// A lifecycle of `kind` completed.
    pub fn lifecycle(&self, kind: &str) {
        *self
            .lifecycles
            .borrow_mut()
            .entry(kind.to_owned())
            .or_default() += 1;
    }

    /// Something that should not happen happened.
    pub fn error(&self, kind: &str, example: impl FnOnce() -> String) {
        let mut errors = self.errors.borrow_mut();
        let entry = errors
            .entry(kind.to_owned())
            .or_insert_with(|| (0, example()));
        entry.0 += 1;
    }

    /// Per observer, the acknowledged messages it lacks.
    pub fn missing(&self) -> Vec<u64> {
        let acked = self.acked.borrow();
        self.observed
            .iter()
            .map(|seen| {
                let seen = seen.borrow();
                (0..self.sent())
                    .filter(|id| acked.contains(*id) && !seen.contains(*id))
                    .count() as u64
            })
            .collect()
    }

    /// Of the messages in `set`, how many every observer received.
    pub fn seen_by_all(&self, set: &Bits) -> u64 {
        (0..self.sent())
            .filter(|id| set.contains(*id))
            .filter(|id| self.observed.iter().all(|o| o.borrow().contains(*id)))
            .count() as u64
    }
}

/// The id in a `say` delivery: `42["say","r3","m123"]`.
pub fn message_id(text: &[u8]) -> Option<u64> {
    let at = text.windows(3).rposition(|w| w == b",\"m")?;
    let digits = &text[at + 3..];
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_and_counted() {
        assert_eq!(message_id(br#"42["say","r3","m123"]"#), Some(123));
        assert_eq!(message_id(br#"42["say","r3","x"]"#), None);
        let ledger = Ledger::new(2);
        let (a, b) = (ledger.next_id(), ledger.next_id());
        ledger.acked.borrow_mut().insert(a);
        ledger.acked.borrow_mut().insert(b);
        ledger.observe(0, a);
        ledger.observe(0, b);
        ledger.observe(1, a);
        ledger.observe(1, a);
        assert_eq!(ledger.missing(), vec![0, 1]);
        assert_eq!(ledger.duplicates.get(), 1);
        assert_eq!(ledger.seen_by_all(&ledger.acked.borrow()), 1);
    }
}
