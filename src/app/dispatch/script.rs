//! Routes that reach a script. The handler first runs on the connection's thread within a
//! small budget; one that needs more moves to the script pool, and the rest of the route
//! continues in a future that the transport awaits before the socket's next event.

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
use crate::routing::{Action, HttpCall, ScriptRef};
use crate::scripting::{EventInput, EventOutput, RoomLookup, ScriptError};

/// Operations a handler may take on the connection's thread before it is moved to a script
/// thread: a few microseconds, so even a stream of runaway events costs the threads serving
/// connections little, while handlers like the examples' (30 to 60 operations) never leave.
/// Small enough, too, that data nested within it (a level per operation at most) fits the
/// stack of a runtime thread; deeper work happens on the script threads' large stacks.
pub(super) const FIRST_ATTEMPT_OPERATIONS: u64 = 1_000;
use crate::socketio::{Event, Socket};

/// How a script call went on the connection's thread.
pub(super) enum Attempted {
    /// It finished: what it decided, or `None` when it failed (the event is lost).
    Done(Option<EventOutput>),
    /// It needs more than the first attempt's budget: run it on a script thread.
    Moved(Input),
}

/// Where the rest of a route is taken up on a future: a script that must run on a script
/// thread (its input ready), or a call to the app's backend.
pub(super) enum Deferred {
    /// A script, moved off the connection's thread.
    Script(ScriptRef, Box<Input>),
    /// An HTTP route step.
    Http(HttpCall),
}

impl Core {
    /// The rest of a route, from `first` on, then the actions after it, performed in order.
    /// A script that fails loses the rest of the event (nothing it decided is done, no ack);
    /// a backend call that fails does too, and answers the ack with an error.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn continue_later(
        self: Arc<Self>,
        snapshot: Arc<Snapshot>,
        adapter: Arc<dyn Adapter>,
        socket: Arc<Socket>,
        name: String,
        event: Option<Event>,
        first: Deferred,
        rest: Vec<Action>,
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
            let mut next = Some(first);
            let mut rest = rest.into_iter().peekable();
            loop {
                match next.take() {
                    Some(Deferred::Script(script, input)) => {
                        let Some(out) = self
                            .on_pool(&snapshot, &socket, &name, &script, *input)
                            .await
                        else {
                            return;
                        };
                        run.apply(out);
                    }
                    Some(Deferred::Http(call)) => {
                        let Some(reply) = self
                            .ask_backend(
                                &snapshot,
                                &adapter,
                                &socket,
                                &name,
                                event.as_ref(),
                                &call,
                                &mut run,
                            )
                            .await
                        else {
                            return;
                        };
                        let stop = reply.stop;
                        run.apply_reply(reply);
                        if stop {
                            break;
                        }
                    }
                    None => {}
                }
                let Some(action) = rest.next() else { break };
                match action {
                    Action::Script(script) => match self.first_attempt(
                        &snapshot,
                        &adapter,
                        &socket,
                        &name,
                        event.as_ref(),
                        &script,
                    ) {
                        Attempted::Done(Some(out)) => run.apply(out),
                        Attempted::Done(None) => return,
                        Attempted::Moved(input) => {
                            next = Some(Deferred::Script(script, Box::new(input)))
                        }
                    },
                    Action::Http(call) => next = Some(Deferred::Http(call)),
                    other => run.perform_next(other, &mut rest),
                }
            }
            if let Some(more) = run.finish() {
                more.await;
            }
        })
    }

    /// Run a handler here, within [`FIRST_ATTEMPT_OPERATIONS`]: most are done long before.
    /// One that is not has had no effect yet (what it decides is performed on return, what
    /// it printed is dropped) and is handed over, to run again from the start on a script
    /// thread.
    pub(super) fn first_attempt(
        &self,
        snapshot: &Arc<Snapshot>,
        adapter: &Arc<dyn Adapter>,
        socket: &Arc<Socket>,
        name: &str,
        event: Option<&Event>,
        script: &ScriptRef,
    ) -> Attempted {
        let scope = EventScope::new(socket, adapter.as_ref(), event.map(|e| &e.args[..]));
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
                return Attempted::Done(None);
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
            jwt: socket
                .claims()
                .map_or(serde_json::Value::Null, |c| (*c).clone()),
            namespace_rooms: Arc::new(NamespaceRooms(adapter.clone())),
        };
        let began = Instant::now();
        match snapshot
            .scripts
            .try_run(script, &input.view(), FIRST_ATTEMPT_OPERATIONS)
        {
            Some(out) => Attempted::Done(self.done(script, socket, name, out, began.elapsed())),
            None => Attempted::Moved(input),
        }
    }

    /// Run a handler on a script thread.
    async fn on_pool(
        &self,
        snapshot: &Arc<Snapshot>,
        socket: &Arc<Socket>,
        name: &str,
        script: &ScriptRef,
        input: Input,
    ) -> Option<EventOutput> {
        let (on_thread, script_ref) = (snapshot.clone(), script.clone());
        let running = self.pool.run(move || {
            let began = Instant::now();
            let out = on_thread.scripts.run(&script_ref, &input.view());
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
        let Some((out, took)) = result else {
            add(&self.metrics.script_calls, 1);
            self.script_failed(
                &script.name,
                0,
                "the script thread panicked",
                socket.nsp(),
                name,
            );
            return None;
        };
        self.done(script, socket, name, out, took)
    }

    /// Count a finished call; its output, or `None` (logged) when it failed.
    fn done(
        &self,
        _script: &ScriptRef,
        socket: &Socket,
        name: &str,
        out: Result<EventOutput, ScriptError>,
        took: std::time::Duration,
    ) -> Option<EventOutput> {
        add(&self.metrics.script_calls, 1);
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

/// What a script call reads, owned so that it can move to a script thread.
pub(super) struct Input {
    event: String,
    args: Vec<serde_json::Value>,
    attachments: Arc<[bytes::Bytes]>,
    socket_id: String,
    rooms: Vec<String>,
    data: serde_json::Value,
    handshake: serde_json::Value,
    jwt: serde_json::Value,
    namespace_rooms: Arc<dyn RoomLookup>,
}

impl Input {
    fn view(&self) -> EventInput<'_> {
        EventInput {
            event: &self.event,
            args: &self.args,
            attachments: &self.attachments,
            socket_id: &self.socket_id,
            rooms: &self.rooms,
            data: &self.data,
            handshake: &self.handshake,
            jwt: &self.jwt,
            namespace_rooms: &self.namespace_rooms,
        }
    }
}

/// A namespace's rooms as scripts read them: the adapter's view on this node, as
/// `{room.size}` and `{room.members}` read it.
#[derive(Debug)]
struct NamespaceRooms(Arc<dyn Adapter>);

impl RoomLookup for NamespaceRooms {
    fn size(&self, room: &str) -> usize {
        self.0.presence_size(room)
    }

    fn members(&self, room: &str, max: usize) -> Vec<String> {
        self.0.presence_members(room, max)
    }
}
