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
