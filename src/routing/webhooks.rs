//! `[[webhooks]]`: what happened, told to the app's backend in signed batches. Plain data.

use std::time::Duration;

/// What a webhook is told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEvent {
    /// A socket joined a namespace.
    Connect,
    /// A socket left a namespace.
    Disconnect,
    /// A socket joined a room.
    Join,
    /// A socket left a room.
    Leave,
    /// A room got its first member.
    RoomOccupied,
    /// A room lost its last member.
    RoomVacated,
    /// A client event of this name (`"*"`: every client event).
    Event(String),
}

impl HookEvent {
    /// The name in `events` (and in the delivered JSON, for the lifecycle ones).
    pub fn parse(name: &str) -> HookEvent {
        match name {
            "connect" => HookEvent::Connect,
            "disconnect" => HookEvent::Disconnect,
            "join" => HookEvent::Join,
            "leave" => HookEvent::Leave,
            "room_occupied" => HookEvent::RoomOccupied,
            "room_vacated" => HookEvent::RoomVacated,
            other => HookEvent::Event(other.strip_prefix("event:").unwrap_or(other).to_owned()),
        }
    }
}

/// One `[[webhooks]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Where batches are POSTed.
    pub url: String,
    /// What it is told about.
    pub events: Vec<HookEvent>,
    /// Signs every batch (`secret_env`).
    pub secret: Option<Vec<u8>>,
    /// Most events in one batch. Defaults to 100.
    pub batch_max: usize,
    /// Longest an event waits for its batch to fill. Defaults to 1 s.
    pub batch_interval: Duration,
    /// Bytes of events waiting, at most; past it the oldest are dropped. Defaults to 8 MB.
    pub queue_bytes: usize,
    /// Wait for the backend's answer to one batch. Defaults to 5 s.
    pub timeout: Duration,
}

impl WebhookSettings {
    /// Whether it is told about client events named `event`.
    pub fn wants_event(&self, event: &str) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, HookEvent::Event(name) if name == event || name == "*"))
    }

    /// Whether it is told about `kind` (a lifecycle event).
    pub fn wants(&self, kind: &HookEvent) -> bool {
        self.events.contains(kind)
    }
}
