//! Engine.IO settings, with socket.io's defaults.

use std::time::Duration;

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

/// Settings of the Engine.IO layer. New sessions read the current value; running sessions
/// keep what they started with.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Packets that may wait in a session's outbound queue before the peer counts as too slow
    /// and is disconnected. Defaults to 1024.
    pub queue_capacity: usize,
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
            queue_capacity: 1024,
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
