//! `[backend]`: how switchboard talks to the app's backend — the secret that signs what it
//! sends (HTTP route steps), and how many calls may wait at once. Plain data.

/// `[backend]`, with its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSettings {
    /// The HMAC-SHA256 key signing each HTTP route call, if any (`secret_env`).
    pub secret: Option<Vec<u8>>,
    /// HTTP route calls waiting at once, over every route; past it an event's call is not
    /// made and its ack says so. Defaults to 1,024.
    pub max_in_flight: usize,
}

impl Default for BackendSettings {
    fn default() -> Self {
        BackendSettings {
            secret: None,
            max_in_flight: 1024,
        }
    }
}
