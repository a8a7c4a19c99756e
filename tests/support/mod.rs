//! What the tests share: an in-process server ([`server`]), a raw HTTP client with a
//! long-polling session helper ([`client`]), a raw WebSocket client ([`ws`]), an Engine.IO
//! endpoint with a recording handler ([`engine`]) and throwaway folders ([`fs`]).
//!
//! Every wait is bounded by [`within`]: a test that would hang fails instead.

pub mod backend;
pub mod client;
pub mod engine;
pub mod fs;
pub mod process;
pub mod raw;
pub mod server;
pub mod ws;

use std::future::IntoFuture;
use std::time::Duration;

pub use client::{Polling, Reply, assert_error, get, request};
pub use engine::{EngineEvent, start_engine};
pub use fs::TempDir;
pub use server::{TestServer, compile_with_env, start, start_app, start_with};
pub use ws::{Msg, Ws};

/// The longest any single await may take before the test fails. Only ever reached when
/// something is broken; never used to let time pass.
pub const WAIT: Duration = Duration::from_secs(5);

/// Await `fut`, failing the test with `what` if it takes longer than [`WAIT`].
pub async fn within<F: IntoFuture>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut.into_future()).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Wait until `condition` holds (what the server does in its own time, such as noticing a
/// closed connection), failing the test with `what` after [`WAIT`]. The condition is looked
/// at every few milliseconds: a poll of state, never a sleep standing in for an event.
pub async fn until(what: &str, condition: impl Fn() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// The `sid` of an OPEN packet (`0{"sid":…}`) or a Socket.IO CONNECT answer
/// (`40{"sid":…}`, `40/chat,{"sid":…}`).
pub fn sid_of(packet: &str) -> String {
    let json = &packet[packet
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in {packet:?}"))..];
    let value: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {packet:?}"));
    let sid = value["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("no sid in {packet:?}"));
    assert_eq!(sid.len(), 20, "a sid is 20 characters: {sid:?}");
    sid.to_owned()
}
