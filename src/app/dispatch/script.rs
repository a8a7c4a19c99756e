//! Routes that reach a script: the rest of the route continues in a future, the script
//! runs on the script pool, and what it decided is performed when it returns.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Core;
use super::run::Run;
use crate::adapter::Adapter;
use crate::app::metrics::add;
use crate::app::scope::EventScope;
use crate::app::snapshot::Snapshot;
use crate::engineio::Pending;
use crate::limits::Limit;
use crate::routing::template::Scope;
use crate::routing::{Action, ScriptRef};
use crate::scripting::{EventInput, EventOutput};
use crate::socketio::{Event, Socket};

impl Core {
    /// The rest of a route, from its first script on, performed in order. A script that
    /// fails loses the rest of the event: nothing it decided is done, no ack.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn continue_with_scripts(
        self: Arc<Self>,
        snapshot: Arc<Snapshot>,
        adapter: Arc<dyn Adapter>,
        socket: Arc<Socket>,
        name: String,
        event: Option<Event>,
        actions: Vec<Action>,
        acked: bool,
    ) -> Pending {
        Box::pin(async move {
            let mut run = Run::new(
                &self,
                &snapshot.routes.limits,
                adapter.as_ref(),
                &socket,
                &name,
                event.as_ref(),
            );
            run.set_acked(acked);
            let mut actions = VecDeque::from(actions);
            while let Some(action) = actions.pop_front() {
                let Action::Script(script) = action else {
                    run.perform(action);
                    continue;
                };
                let Some(out) = self
                    .call_script(&snapshot, &adapter, &socket, &name, event.as_ref(), &script)
                    .await
                else {
                    return;
                };
                socket.set_data(out.data);
                for action in out.actions {
                    run.perform(action);
                }
            }
            if let Some(more) = run.finish() {
                more.await;
            }
        })
    }

    /// Run one handler on the script pool.
    async fn call_script(
        &self,
        snapshot: &Arc<Snapshot>,
        adapter: &Arc<dyn Adapter>,
        socket: &Arc<Socket>,
        name: &str,
        event: Option<&Event>,
        script: &ScriptRef,
    ) -> Option<EventOutput> {
        let scope = EventScope::new(socket, event.map(|e| &e.args[..]));
        let args = match scope.args() {
            Some(args) => args.to_vec(),
            None if event.is_some_and(|e| !e.args.is_empty()) => {
                // serde_json stops at 128 levels: arguments deeper than that cannot be
                // handed to a script, and the event is refused rather than seen as empty.
                self.script_failed(
                    &script.name,
                    0,
                    "the event's arguments are not readable (nested too deeply)",
                    socket.nsp(),
                    name,
                );
                return None;
            }
            None => Vec::new(),
        };
        let input = Input {
            event: name.to_owned(),
            args,
            attachments: event
                .map(|e| e.attachments.clone())
                .unwrap_or_else(|| Arc::from([])),
            socket_id: socket.id().to_string(),
            rooms: adapter.rooms_of(socket.id()),
            data: socket.data(),
            handshake: socket.handshake_value().clone(),
        };
        let (snapshot, script_ref) = (snapshot.clone(), script.clone());
        let running = self.pool.run(move || {
            let began = Instant::now();
            let out = snapshot.scripts.run(
                &script_ref,
                EventInput {
                    event: &input.event,
                    args: input.args,
                    attachments: &input.attachments,
                    socket_id: &input.socket_id,
                    rooms: input.rooms,
                    data: input.data,
                    handshake: input.handshake,
                },
            );
            (out, began.elapsed())
        });
        let Ok(running) = running else {
            self.hits.hit(
                Limit::ScriptQueue,
                &socket.handshake().client_ip,
                &"script not run: every script thread busy",
            );
            return None;
        };
        self.metrics.scripts_running.fetch_add(1, Ordering::Relaxed);
        let result = running.await;
        self.metrics.scripts_running.fetch_sub(1, Ordering::Relaxed);
        add(&self.metrics.script_calls, 1);
        let Some((out, took)) = result else {
            self.script_failed(
                &script.name,
                0,
                "the script thread panicked",
                socket.nsp(),
                name,
            );
            return None;
        };
        add(
            &self.metrics.script_nanos,
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
        );
        match out {
            Ok(out) => Some(out),
            Err(e) => {
                self.script_failed(&e.path, e.line, &e.message, socket.nsp(), name);
                None
            }
        }
    }

    /// Count a failed script call and log it, at most once per script per interval.
    pub(super) fn script_failed(
        &self,
        path: &str,
        line: usize,
        message: &str,
        ns: &str,
        event: &str,
    ) {
        add(&self.metrics.script_errors, 1);
        if let Some(held) = self.failures.allow(path.to_owned(), Instant::now()) {
            tracing::warn!(
                script = %path,
                line,
                ns,
                event = %event.escape_debug(),
                suppressed = held,
                "Script failed; event dropped: {}",
                message.escape_debug()
            );
        }
    }
}

/// What a script call takes to its thread.
struct Input {
    event: String,
    args: Vec<serde_json::Value>,
    attachments: Arc<[bytes::Bytes]>,
    socket_id: String,
    rooms: Vec<String>,
    data: serde_json::Value,
    handshake: serde_json::Value,
}
