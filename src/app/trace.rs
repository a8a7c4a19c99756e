//! A live trace of one event on a running server (`switchboard trace`, through the admin
//! port): the next events of that name are explained as they are routed — which route, each
//! step, who receives what — with the sender's real data and rooms. One trace at a time,
//! bounded in events and time; off, it costs one atomic load per event.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::adapter::Adapter;
use crate::routing::RouteTable;
use crate::routing::explain::{Question, explain};
use crate::socketio::{Event, Socket};

/// Most events one trace takes.
pub const MAX_EVENTS: usize = 100;
/// Longest explanation kept of one event, in bytes.
const MAX_TEXT: usize = 4096;

#[derive(Debug)]
struct Tracing {
    namespace: String,
    event: String,
    remaining: usize,
    tx: mpsc::Sender<String>,
}

/// The trace running, if any.
#[derive(Debug, Default)]
pub struct Tracer {
    armed: AtomicBool,
    current: Mutex<Option<Tracing>>,
}

impl Tracer {
    /// Trace the next `count` (at most [`MAX_EVENTS`]) events `event` of `namespace`; their
    /// explanations come on the receiver. `None` while another trace runs.
    pub fn start(
        &self,
        namespace: &str,
        event: &str,
        count: usize,
    ) -> Option<mpsc::Receiver<String>> {
        let mut current = self.current.lock().expect("trace lock");
        if current.as_ref().is_some_and(|t| !t.tx.is_closed()) {
            return None;
        }
        let count = count.clamp(1, MAX_EVENTS);
        let (tx, rx) = mpsc::channel(count);
        *current = Some(Tracing {
            namespace: namespace.to_owned(),
            event: event.to_owned(),
            remaining: count,
            tx,
        });
        self.armed.store(true, Ordering::Release);
        Some(rx)
    }

    /// An event arrived: explained, when it is the one traced.
    pub fn on_event(
        &self,
        table: &RouteTable,
        socket: &Socket,
        adapter: &dyn Adapter,
        event: &Event,
    ) {
        if !self.armed.load(Ordering::Acquire) {
            return;
        }
        let mut current = self.current.lock().expect("trace lock");
        let Some(tracing) = current.as_mut() else {
            return;
        };
        if tracing.tx.is_closed() || tracing.remaining == 0 {
            *current = None;
            self.armed.store(false, Ordering::Release);
            return;
        }
        if tracing.namespace != socket.nsp() || tracing.event != *event.name {
            return;
        }
        let mut args: Vec<Value> = serde_json::from_slice(&event.data).unwrap_or_default();
        if !args.is_empty() {
            args.remove(0);
        }
        let own = socket.id();
        let question = Question {
            namespace: socket.nsp().to_owned(),
            event: event.name.to_string(),
            args,
            socket_data: socket.data(),
            rooms: adapter
                .rooms_of(own)
                .into_iter()
                .filter(|r| r != own.as_str())
                .collect(),
        };
        let mut text = format!("socket {own}:\n");
        text.push_str(&explain(table, &question).unwrap_or_else(|e| e + "\n"));
        crate::routing::diag::clip(&mut text, MAX_TEXT, "…\n");
        let _ = tracing.tx.try_send(text);
        tracing.remaining -= 1;
        if tracing.remaining == 0 {
            *current = None;
            self.armed.store(false, Ordering::Release);
        }
    }
}
