//! Every limit a peer can run into, counted for `/metrics` and logged at most once per
//! interval per limit.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::throttle::Throttle;

/// A limit of `[limits]` (or of `[server]`) that a peer ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// A message or POST body over `max_payload`.
    MaxPayload,
    /// `max_connections`: a connection or session refused.
    MaxConnections,
    /// `max_connections_per_ip`.
    ConnectionsPerIp,
    /// `handshakes_per_ip`.
    HandshakesPerIp,
    /// `events_per_socket`: an event dropped.
    EventsPerSocket,
    /// `events_per_socket`, sustained: the socket disconnected.
    EventsSustained,
    /// `namespaces_per_session`.
    NamespacesPerSession,
    /// `rooms_per_socket`.
    RoomsPerSocket,
    /// `room_name_bytes`.
    RoomNameBytes,
    /// A join or leave of a room named like a socket id.
    ReservedRoom,
    /// `pending_acks`.
    PendingAcks,
    /// `queue_bytes`: a session closed as too slow.
    QueueBytes,
    /// `write_timeout`: a session closed as too slow.
    WriteTimeout,
    /// `body_timeout`: a POST body that did not arrive in time.
    BodyTimeout,
    /// `script_output_bytes`: a script call that tried to send too much.
    ScriptOutput,
    /// `script_queue`: a script call refused because every script thread was busy.
    ScriptQueue,
}

impl Limit {
    /// Every limit, in the order `/metrics` lists them.
    pub const ALL: [Limit; 16] = [
        Limit::MaxPayload,
        Limit::MaxConnections,
        Limit::ConnectionsPerIp,
        Limit::HandshakesPerIp,
        Limit::EventsPerSocket,
        Limit::EventsSustained,
        Limit::NamespacesPerSession,
        Limit::RoomsPerSocket,
        Limit::RoomNameBytes,
        Limit::ReservedRoom,
        Limit::PendingAcks,
        Limit::QueueBytes,
        Limit::WriteTimeout,
        Limit::BodyTimeout,
        Limit::ScriptOutput,
        Limit::ScriptQueue,
    ];

    /// The label `/metrics` uses: the key of `[limits]` (or `[server]`) that set it.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxPayload => "max_payload",
            Limit::MaxConnections => "max_connections",
            Limit::ConnectionsPerIp => "max_connections_per_ip",
            Limit::HandshakesPerIp => "handshakes_per_ip",
            Limit::EventsPerSocket => "events_per_socket",
            Limit::EventsSustained => "events_per_socket_sustained",
            Limit::NamespacesPerSession => "namespaces_per_session",
            Limit::RoomsPerSocket => "rooms_per_socket",
            Limit::RoomNameBytes => "room_name_bytes",
            Limit::ReservedRoom => "reserved_room",
            Limit::PendingAcks => "pending_acks",
            Limit::QueueBytes => "queue_bytes",
            Limit::WriteTimeout => "write_timeout",
            Limit::BodyTimeout => "body_timeout",
            Limit::ScriptOutput => "script_output_bytes",
            Limit::ScriptQueue => "script_queue",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often each limit may write a log line.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Counters of limit hits, shared by every layer of one application.
#[derive(Debug)]
pub struct Hits {
    counts: [AtomicU64; Limit::ALL.len()],
    log: Throttle<Limit>,
}

impl Default for Hits {
    fn default() -> Self {
        Hits {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            log: Throttle::new(LOG_INTERVAL),
        }
    }
}

impl Hits {
    /// Count a hit of `limit`, and log it (with `who` and `what`) unless one was logged for
    /// this limit in the last interval.
    pub fn hit(&self, limit: Limit, who: &dyn fmt::Display, what: &dyn fmt::Display) {
        self.counts[index(limit)].fetch_add(1, Ordering::Relaxed);
        if let Some(held) = self.log.allow(limit, Instant::now()) {
            if held > 0 {
                tracing::warn!(limit = limit.as_str(), client = %who, suppressed = held, "Limit reached: {what} ({held} more since the last line)");
            } else {
                tracing::warn!(limit = limit.as_str(), client = %who, "Limit reached: {what}");
            }
        }
    }

    /// How many times `limit` was hit.
    pub fn count(&self, limit: Limit) -> u64 {
        self.counts[index(limit)].load(Ordering::Relaxed)
    }
}

fn index(limit: Limit) -> usize {
    Limit::ALL
        .iter()
        .position(|l| *l == limit)
        .expect("every limit is in ALL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_counted_per_limit() {
        let hits = Hits::default();
        hits.hit(Limit::RoomsPerSocket, &"1.2.3.4", &"too many rooms");
        hits.hit(Limit::RoomsPerSocket, &"1.2.3.4", &"too many rooms");
        hits.hit(Limit::PendingAcks, &"x", &"y");
        assert_eq!(hits.count(Limit::RoomsPerSocket), 2);
        assert_eq!(hits.count(Limit::PendingAcks), 1);
        assert_eq!(hits.count(Limit::MaxConnections), 0);
        let labels: std::collections::HashSet<_> = Limit::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(labels.len(), Limit::ALL.len(), "labels are distinct");
    }
}
