//! Engine.IO settings, with socket.io's defaults.

use std::time::Duration;

use crate::limits::Rate;

/// What a session may use to carry packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    Websocket,
}

impl Transport {
    /// The name used in the `transport` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::Websocket => "websocket",
        }
    }

    /// Parse a `transport` query value.
    pub fn parse(name: &str) -> Option<Transport> {
        match name {
            "polling" => Some(Transport::Polling),
            "websocket" => Some(Transport::Websocket),
            _ => None,
        }
    }
}

/// CORS for the Engine.IO endpoint, as socket.io's `cors` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// Allowed origins; `"*"` allows any.
    pub origins: Vec<String>,
    /// Whether to send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
}

/// The session cookie of engine.io's `cookie` option, set by the handshake response so a
/// load balancer can keep a client on one node (sticky sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// The cookie name (engine.io's default is `io`); its value is the session id.
    pub name: String,
    /// `Path`; `None` leaves it out.
    pub path: Option<String>,
    /// Whether to add `HttpOnly`.
    pub http_only: bool,
    /// `SameSite` (`Lax`, `Strict`, `None`); `None` leaves it out.
    pub same_site: Option<String>,
}

impl Cookie {
    /// The `Set-Cookie` value for session `sid`.
    pub fn header(&self, sid: &str) -> String {
        let mut out = format!("{}={sid}", self.name);
        if let Some(path) = &self.path {
            out.push_str("; Path=");
            out.push_str(path);
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if let Some(same_site) = &self.same_site {
            out.push_str("; SameSite=");
            out.push_str(same_site);
        }
        out
    }
}

/// Who may open sessions, and how many: caps and rates per client address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admission {
    /// Sessions open at once. Defaults to `None` (no cap).
    pub max_sessions: Option<usize>,
    /// Sessions per client address (IPv6: per /64). Defaults to `None`.
    pub max_sessions_per_ip: Option<usize>,
    /// New sessions per client address. Defaults to `None`.
    pub handshakes_per_ip: Option<Rate>,
    /// Proxies whose `X-Forwarded-For` names the client. Defaults to none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Settings of the Engine.IO layer. New sessions read the current value; running sessions
/// keep what they started with.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Time between server pings. Defaults to 25 s.
    pub ping_interval: Duration,
    /// Time to wait for a pong before closing with "ping timeout". Defaults to 20 s.
    pub ping_timeout: Duration,
    /// Largest POST body or WebSocket message accepted, in bytes. Defaults to 1,000,000.
    pub max_payload: usize,
    /// Whether long-polling is accepted. Defaults to true.
    pub polling: bool,
    /// Whether WebSocket is accepted. Defaults to true.
    pub websocket: bool,
    /// Time allowed for a polling session's upgrade to WebSocket. Defaults to 10 s.
    pub upgrade_timeout: Duration,
    /// Bytes that may wait in a session's outbound queue before the peer counts as too slow
    /// and is disconnected. Defaults to 4,000,000.
    pub queue_bytes: usize,
    /// Past this many queued bytes, volatile packets to the session are dropped. Defaults to
    /// 1,000,000.
    pub volatile_bytes: usize,
    /// Longest a write to a WebSocket may stall before the peer counts as too slow. Defaults
    /// to 10 s.
    pub write_timeout: Duration,
    /// Longest a POST body may take to arrive. Defaults to 10 s.
    pub body_timeout: Duration,
    /// A session the layer above has not claimed by then is closed (socket.io's
    /// `connectTimeout`: no namespace joined). Defaults to `None`: no claim needed.
    pub claim_timeout: Option<Duration>,
    /// Request headers kept with a session (in order, until this many bytes). Defaults to
    /// 8,000.
    pub handshake_headers_bytes: usize,
    /// Caps and rates of new sessions.
    pub admission: Admission,
    /// CORS headers; `None` sends none. Defaults to `None`.
    pub cors: Option<Cors>,
    /// The session cookie set by handshakes; `None` sets none. Defaults to `None`.
    pub cookie: Option<Cookie>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            polling: true,
            websocket: true,
            upgrade_timeout: Duration::from_secs(10),
            queue_bytes: 4_000_000,
            volatile_bytes: 1_000_000,
            write_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            claim_timeout: None,
            handshake_headers_bytes: 8_000,
            admission: Admission::default(),
            cors: None,
            cookie: None,
        }
    }
}

impl EngineConfig {
    /// Whether `transport` is enabled.
    pub fn allows(&self, transport: Transport) -> bool {
        match transport {
            Transport::Polling => self.polling,
            Transport::Websocket => self.websocket,
        }
    }
}
