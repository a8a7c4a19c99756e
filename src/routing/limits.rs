//! `[limits]`: what any one peer may cost, with defaults a public deployment can keep.

use std::time::Duration;

use crate::limits::Rate;

/// `[limits]`, with defaults applied. Caps that read `None` are off.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Open connections (and, separately, sessions) at once. Defaults to `None`: the
    /// process's file limit minus a reserve, read at start.
    pub max_connections: Option<usize>,
    /// Connections, and sessions, per client address (IPv6: per /64). Defaults to 256.
    pub max_connections_per_ip: Option<usize>,
    /// Proxies whose `X-Forwarded-For` names the client. Defaults to none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// New sessions per client address. Defaults to 20/s with a burst of 60.
    pub handshakes_per_ip: Option<Rate>,
    /// Events per socket. Defaults to 100/s with a burst of 1,000 (what the stock client
    /// flushes at once after an offline spell).
    pub events_per_socket: Option<Rate>,
    /// A socket still sending over its rate after this long is disconnected. Defaults to 10 s.
    pub events_excess_disconnect: Duration,
    /// Namespaces one session may join. Defaults to 32.
    pub namespaces_per_session: usize,
    /// Rooms one socket may be in, its own room included. Defaults to 256.
    pub rooms_per_socket: usize,
    /// Longest room name, in bytes. Defaults to 256.
    pub room_name_bytes: usize,
    /// Acks the server may await from one socket. Defaults to 256.
    pub pending_acks: usize,
    /// Bytes waiting to be sent to one session before it counts as too slow. Defaults to
    /// 4 MB.
    pub queue_bytes: usize,
    /// Above this many queued bytes, `volatile` messages to the session are dropped.
    /// Defaults to 1 MB.
    pub volatile_bytes: usize,
    /// Longest a write to a peer may stall. Defaults to 10 s.
    pub write_timeout: Duration,
    /// Longest a peer may take to send request headers, or stay idle between requests.
    /// Defaults to 10 s.
    pub header_timeout: Duration,
    /// Longest a POST body may take. Defaults to 10 s.
    pub body_timeout: Duration,
    /// Longest a polling session's upgrade to WebSocket may take. Defaults to 10 s.
    pub upgrade_timeout: Duration,
    /// Request headers kept per session for scripts (`ctx.handshake.headers`). Defaults to
    /// 8 KB.
    pub handshake_headers_bytes: usize,
    /// Operations one script call may take. Defaults to 500,000.
    pub script_operations: u64,
    /// What one script call may send and keep (`socket.data`), in bytes. Defaults to 2 MB.
    pub script_output_bytes: usize,
    /// Longest one script call may run, whatever its operations cost. Defaults to 250 ms.
    pub script_timeout: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_connections: None,
            max_connections_per_ip: Some(256),
            trusted_proxies: Vec::new(),
            handshakes_per_ip: Some(Rate::new(20, Duration::from_secs(1), Some(60))),
            events_per_socket: Some(Rate::new(100, Duration::from_secs(1), Some(1000))),
            events_excess_disconnect: Duration::from_secs(10),
            namespaces_per_session: 32,
            rooms_per_socket: 256,
            room_name_bytes: 256,
            pending_acks: 256,
            queue_bytes: 4_000_000,
            volatile_bytes: 1_000_000,
            write_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            upgrade_timeout: Duration::from_secs(10),
            handshake_headers_bytes: 8_000,
            script_operations: 500_000,
            script_output_bytes: 2_000_000,
            script_timeout: Duration::from_millis(250),
        }
    }
}
