//! Compiled scripts: each file compiled once per (re)load into its own sandboxed engine;
//! handlers called per event, returning actions.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rhai::{AST, Array, CallFnOptions, Dynamic, Engine, EvalAltResult, Position, Scope};
use serde_json::Value;

use super::api::{self, Ctx, RoomLookup, Shared};
use super::convert::{Budget, from_dynamic, to_dynamic};
use super::engine::sandboxed;
use crate::routing::{Action, ScriptRef};

/// A script that does not compile, or lacks the function a route names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: usize,
    /// 1-based column, when known.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// A handler that failed at run time: an error it threw, an endless loop, a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct ScriptError {
    /// The file.
    pub path: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// What happened.
    pub message: String,
}

struct Compiled {
    engine: Engine,
    ast: AST,
    /// Line of each function's definition: where a limit error without a position of its
    /// own (too many operations, too deep, too large) is reported.
    fn_lines: HashMap<String, usize>,
}

/// What one script call may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Operations per call. Defaults to 500,000.
    pub operations: u64,
    /// Bytes one call may send (its deliveries and acks) and keep (`socket.data`).
    /// Defaults to 2,000,000.
    pub output_bytes: usize,
    /// Longest one call may run. Defaults to 250 ms.
    pub time: std::time::Duration,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            operations: super::engine::MAX_OPERATIONS,
            output_bytes: 2_000_000,
            time: std::time::Duration::from_millis(250),
        }
    }
}

/// Every script of a routes file, compiled.
#[derive(Clone, Default)]
pub struct ScriptSet {
    scripts: HashMap<PathBuf, Arc<Compiled>>,
    limits: ScriptLimits,
}

impl fmt::Debug for ScriptSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptSet")
            .field("scripts", &self.scripts.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What a handler sees of the event.
#[derive(Debug, Clone)]
pub struct EventInput<'a> {
    /// The event name (`connect` / `disconnect` for lifecycle routes).
    pub event: &'a str,
    /// The arguments, binary ones as placeholders into `attachments`.
    pub args: &'a [Value],
    /// Binary attachments of the event.
    pub attachments: &'a [Bytes],
    /// The socket id.
    pub socket_id: &'a str,
    /// The socket's rooms.
    pub rooms: &'a [String],
    /// `socket.data` before the call.
    pub data: &'a Value,
    /// `{auth, query, headers, address}`.
    pub handshake: &'a Value,
    /// The claims of the socket's verified token; `null` when it has none.
    pub jwt: &'a Value,
    /// The rooms of the socket's namespace (`ctx.room_size`, `ctx.room_members`).
    pub namespace_rooms: &'a Arc<dyn RoomLookup>,
}

/// What a handler decided.
#[derive(Debug, Clone, PartialEq)]
pub struct EventOutput {
    /// Actions, in the order the script called them.
    pub actions: Vec<Action>,
    /// `socket.data` after the call.
    pub data: Value,
}

/// What an `authorize(handshake)` decided.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthDecision {
    /// Let in, with this `socket.data` if the script returned a map.
    Allow(Option<Value>),
    /// Refused; `Some(message)` when the script threw one.
    Deny(Option<String>),
}

fn location(pos: Position) -> (usize, usize) {
    (pos.line().unwrap_or(0), pos.position().unwrap_or(0))
}

impl ScriptSet {
    /// Compile every script `refs` names; check each named function exists with the right
    /// number of parameters (`on_event(ctx, args)`-style handlers take 2, `authorize` 1).
    pub fn compile(
        refs: &[&ScriptRef],
        limits: ScriptLimits,
    ) -> Result<ScriptSet, Vec<CompileError>> {
        let mut set = ScriptSet {
            limits,
            ..ScriptSet::default()
        };
        let mut errors = Vec::new();
        for script in refs {
            if !set.scripts.contains_key(&script.path) {
                match compile_file(&script.path, limits) {
                    Ok(compiled) => {
                        set.scripts.insert(script.path.clone(), Arc::new(compiled));
                    }
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                }
            }
            let compiled = &set.scripts[&script.path];
            let arity = if script.function == "authorize" { 1 } else { 2 };
            let found = compiled
                .ast
                .iter_functions()
                .any(|f| f.name == script.function && f.params.len() == arity);
            if !found {
                errors.push(CompileError {
                    path: script.path.clone(),
                    line: 1,
                    column: 1,
                    message: format!(
                        "no function `{}` with {arity} parameter{} (`fn {}({})`)",
                        script.function,
                        if arity == 1 { "" } else { "s" },
                        script.function,
                        if arity == 1 { "handshake" } else { "ctx, args" }
                    ),
                });
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// Run `script`'s handler for one event.
    pub fn run(
        &self,
        script: &ScriptRef,
        input: &EventInput<'_>,
    ) -> Result<EventOutput, ScriptError> {
        self.call(script, input, None)
            .expect("a call without a first-attempt budget runs to the end")
    }

    /// A first attempt at [`ScriptSet::run`], stopped past `operations`: `None` then, and
    /// nothing it did counts (a handler has no effect until it returns; what it printed is
    /// dropped), so the call can be made again with [`ScriptSet::run`] elsewhere.
    pub fn try_run(
        &self,
        script: &ScriptRef,
        input: &EventInput<'_>,
        operations: u64,
    ) -> Option<Result<EventOutput, ScriptError>> {
        self.call(script, input, Some(operations))
    }

    fn call(
        &self,
        script: &ScriptRef,
        input: &EventInput<'_>,
        attempt: Option<u64>,
    ) -> Option<Result<EventOutput, ScriptError>> {
        let compiled = match self.get(script) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let shared = Arc::new(Shared {
            actions: Mutex::new(Vec::new()),
            data: Mutex::new(to_dynamic(input.data, &[])),
            socket_id: input.socket_id.into(),
            rooms: input.rooms.iter().cloned().map(Dynamic::from).collect(),
            handshake: to_dynamic(input.handshake, &[]),
            jwt: to_dynamic(input.jwt, &[]),
            event: input.event.into(),
            budget: Mutex::new(Budget {
                bytes: self.limits.output_bytes,
            }),
            namespace_rooms: input.namespace_rooms.clone(),
            room_lookups: AtomicUsize::new(0),
        });
        let args: Array = input
            .args
            .iter()
            .map(|v| to_dynamic(v, input.attachments))
            .collect();
        let ctx = Ctx(shared.clone());
        let result = invoke(compiled, script, (ctx, args), attempt)?;
        if let Err(e) = result {
            return Some(Err(runtime_error(script, compiled, &e)));
        }
        let actions = std::mem::take(&mut *shared.actions.lock().expect("actions lock"));
        let mut budget = *shared.budget.lock().expect("budget lock");
        let data = from_dynamic(
            &shared.data.lock().expect("data lock"),
            &mut Vec::new(),
            &mut budget,
        )
        .map_err(|e| compiled.error_at_function(script, format!("socket.data not kept: {e}")));
        Some(data.map(|data| EventOutput { actions, data }))
    }

    /// Run an auth script's `authorize(handshake)`.
    pub fn authorize(
        &self,
        script: &ScriptRef,
        handshake: &Value,
    ) -> Result<AuthDecision, ScriptError> {
        self.decide(script, handshake, None)
            .expect("a call without a first-attempt budget runs to the end")
    }

    /// A first attempt at [`ScriptSet::authorize`], as [`ScriptSet::try_run`].
    pub fn try_authorize(
        &self,
        script: &ScriptRef,
        handshake: &Value,
        operations: u64,
    ) -> Option<Result<AuthDecision, ScriptError>> {
        self.decide(script, handshake, Some(operations))
    }

    fn decide(
        &self,
        script: &ScriptRef,
        handshake: &Value,
        attempt: Option<u64>,
    ) -> Option<Result<AuthDecision, ScriptError>> {
        let compiled = match self.get(script) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let result = invoke(compiled, script, (to_dynamic(handshake, &[]),), attempt)?;
        let mut budget = Budget {
            bytes: self.limits.output_bytes,
        };
        Some(match result {
            Ok(v) if v.is_map() => match from_dynamic(&v, &mut Vec::new(), &mut budget) {
                Ok(data) => Ok(AuthDecision::Allow(Some(data))),
                Err(e) => {
                    Err(compiled.error_at_function(script, format!("socket.data not kept: {e}")))
                }
            },
            Ok(v) if v.as_bool() == Ok(true) => Ok(AuthDecision::Allow(None)),
            Ok(_) => Ok(AuthDecision::Deny(None)),
            Err(e) => match *e {
                EvalAltResult::ErrorRuntime(ref thrown, _) if thrown.is_string() => {
                    Ok(AuthDecision::Deny(Some(thrown.to_string())))
                }
                _ => Err(runtime_error(script, compiled, &e)),
            },
        })
    }

    fn get(&self, script: &ScriptRef) -> Result<&Compiled, ScriptError> {
        self.scripts
            .get(&script.path)
            .map(|c| c.as_ref())
            .ok_or_else(|| ScriptError {
                path: shown(script),
                line: 0,
                message: "script not compiled".to_owned(),
            })
    }
}

/// A script's file as messages show it: found from the routes file's folder, so relative to
/// the current directory when the routes file was named relatively.
fn shown(script: &ScriptRef) -> String {
    script.path.display().to_string()
}

/// Compile the script at `path` (errors name it as found from the routes file's folder).
fn compile_file(path: &Path, limits: ScriptLimits) -> Result<Compiled, CompileError> {
    let path_shown = path.to_path_buf();
    let source = std::fs::read_to_string(path).map_err(|e| CompileError {
        path: path_shown.clone(),
        line: 1,
        column: 1,
        message: format!("cannot read: {e}"),
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut engine = sandboxed(&name, limits.operations, Some(limits.time));
    api::register(&mut engine);
    let mut ast = engine.compile(&source).map_err(|e| {
        let (line, column) = location(e.position());
        CompileError {
            path: path_shown.clone(),
            line,
            column,
            message: e.err_type().to_string(),
        }
    })?;
    ast.set_source(name);
    let fn_lines = source
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let rest = line
                .trim_start()
                .strip_prefix("private ")
                .unwrap_or(line.trim_start());
            let name = rest.strip_prefix("fn ")?.split('(').next()?.trim();
            Some((name.to_owned(), i + 1))
        })
        .collect();
    Ok(Compiled {
        engine,
        ast,
        fn_lines,
    })
}

/// Call `script`'s function, timed, within a first attempt's budget if given: `None` when
/// stopped at that budget (what it printed dropped), else its result (what it printed
/// logged).
fn invoke(
    compiled: &Compiled,
    script: &ScriptRef,
    args: impl rhai::FuncArgs,
    attempt: Option<u64>,
) -> Option<Result<Dynamic, Box<EvalAltResult>>> {
    let _clock = super::engine::Clock::start();
    let attempt = attempt.map(super::engine::Attempt::start);
    let result = compiled.engine.call_fn_with_options::<Dynamic>(
        CallFnOptions::new().eval_ast(false),
        &mut Scope::new(),
        &compiled.ast,
        &script.function,
        args,
    );
    if let Err(e) = &result
        && is_over_budget(e)
    {
        return None;
    }
    if let Some(attempt) = attempt {
        attempt.keep();
    }
    Some(result)
}

/// Whether a call was stopped at its first attempt's budget (and is to be made again).
fn is_over_budget(e: &EvalAltResult) -> bool {
    matches!(e, EvalAltResult::ErrorTerminated(token, _)
        if token.clone().into_immutable_string().is_ok_and(|t| t == super::engine::OVER_BUDGET))
}

impl Compiled {
    /// An error of `script` located at its handler's `fn` line.
    fn error_at_function(&self, script: &ScriptRef, message: String) -> ScriptError {
        ScriptError {
            path: shown(script),
            line: self.fn_lines.get(&script.function).copied().unwrap_or(0),
            message,
        }
    }
}

fn runtime_error(script: &ScriptRef, compiled: &Compiled, e: &EvalAltResult) -> ScriptError {
    let mut message = match e {
        // Stopped by the time limit: the reason is the token.
        EvalAltResult::ErrorTerminated(why, _) => why.to_string(),
        other => other.to_string(),
    };
    if let Some(cut) = message.find(" (line ") {
        message.truncate(cut);
    }
    let line = match e.position().line() {
        Some(line) => line,
        None => {
            message.push_str(&format!(" (in fn {})", script.function));
            compiled
                .fn_lines
                .get(&script.function)
                .copied()
                .unwrap_or(0)
        }
    };
    ScriptError {
        path: shown(script),
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::template::MAX_MEMBERS;
    use crate::routing::{Args, Recipients};
    use crate::scripting::MAX_ROOM_LOOKUPS;
    use serde_json::json;
    use std::sync::atomic::Ordering;

    /// A folder of its own for each script of each test, even when tests run in parallel.
    fn unique_dir(tag: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        std::env::temp_dir().join(format!(
            "switchboard-script-{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    }

    fn script(source: &str, function: &str) -> (ScriptSet, ScriptRef) {
        let dir = unique_dir(function);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.rhai");
        std::fs::write(&path, source).unwrap();
        let r = ScriptRef {
            path,
            name: "s.rhai".to_owned(),
            function: function.to_owned(),
        };
        (
            ScriptSet::compile(&[&r], ScriptLimits::default()).unwrap(),
            r,
        )
    }

    /// A namespace's rooms, counting the lookups made.
    #[derive(Debug)]
    struct Rooms {
        rooms: HashMap<String, Vec<String>>,
        lookups: AtomicUsize,
    }

    impl Rooms {
        fn with(rooms: &[(&str, &[&str])]) -> Arc<Rooms> {
            let rooms = rooms
                .iter()
                .map(|(room, ids)| {
                    (
                        room.to_string(),
                        ids.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect();
            Arc::new(Rooms {
                rooms,
                lookups: AtomicUsize::new(0),
            })
        }

        fn lookups(&self) -> usize {
            self.lookups.load(Ordering::Relaxed)
        }
    }

    impl RoomLookup for Rooms {
        fn size(&self, room: &str) -> usize {
            self.lookups.fetch_add(1, Ordering::Relaxed);
            self.rooms.get(room).map_or(0, Vec::len)
        }

        fn members(&self, room: &str, max: usize) -> Vec<String> {
            self.lookups.fetch_add(1, Ordering::Relaxed);
            let mut ids = self.rooms.get(room).cloned().unwrap_or_default();
            ids.sort();
            ids.truncate(max);
            ids
        }
    }

    /// Run `script`'s handler on `args`, with a socket S1 in room S1 and empty data.
    fn run(set: &ScriptSet, r: &ScriptRef, args: Vec<Value>) -> Result<EventOutput, ScriptError> {
        run_among(set, r, args, Rooms::with(&[("S1", &["S1"])]))
    }

    /// [`run`] in a namespace of `rooms`.
    fn run_among(
        set: &ScriptSet,
        r: &ScriptRef,
        args: Vec<Value>,
        rooms: Arc<Rooms>,
    ) -> Result<EventOutput, ScriptError> {
        let namespace_rooms: Arc<dyn RoomLookup> = rooms;
        set.run(
            r,
            &EventInput {
                event: "e",
                args: &args,
                attachments: &[],
                socket_id: "S1",
                rooms: &["S1".to_owned()],
                data: &json!({}),
                handshake: &json!({"auth": {}}),
                jwt: &Value::Null,
                namespace_rooms: &namespace_rooms,
            },
        )
    }

    #[test]
    fn a_handler_returns_actions_and_data_without_doing_anything() {
        let (set, r) = script(
            "fn on_event(ctx, args) { ctx.io(\"x\", args[0], 2); ctx.socket.data.seen = true; ctx.ack(); }",
            "on_event",
        );
        let out = run(&set, &r, vec![json!("a")]).unwrap();
        assert_eq!(
            out.actions,
            vec![
                Action::Deliver {
                    to: Recipients::Namespace {
                        include_sender: true
                    },
                    event: "x".into(),
                    args: Args::Values(vec![json!("a"), json!(2)]),
                    volatile: false,
                },
                Action::Ack(Args::Values(vec![])),
            ]
        );
        assert_eq!(out.data, json!({"seen": true}));
    }

    #[test]
    fn room_lookups_read_sizes_and_sorted_members() {
        let (set, r) = script(
            "fn on_event(ctx, args) { for room in args { ctx.emit(room, ctx.room_size(room), ctx.room_members(room)); } }",
            "on_event",
        );
        let rooms = Rooms::with(&[("lobby", &["S3", "S1", "S2"]), ("S1", &["S1"])]);
        let args = vec![json!("lobby"), json!("S1"), json!("nowhere")];
        let out = run_among(&set, &r, args, rooms.clone()).unwrap();
        let told = |room: &str, size: usize, members: Value| Action::Deliver {
            to: Recipients::Sender,
            event: room.into(),
            args: Args::Values(vec![json!(size), members]),
            volatile: false,
        };
        assert_eq!(
            out.actions,
            vec![
                told("lobby", 3, json!(["S1", "S2", "S3"])),
                told("S1", 1, json!(["S1"])),
                told("nowhere", 0, json!([])),
            ]
        );
        assert_eq!(rooms.lookups(), 6, "every call reads the rooms");
    }

    #[test]
    fn room_members_lists_at_most_max_members() {
        let (set, r) = script(
            "fn on_event(ctx, args) { let m = ctx.room_members(\"big\"); ctx.ack(ctx.room_size(\"big\"), m.len(), m[0]); }",
            "on_event",
        );
        let ids: Vec<String> = (0..MAX_MEMBERS + 500).map(|n| format!("S{n:05}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).rev().collect();
        let out = run_among(&set, &r, vec![], Rooms::with(&[("big", &ids)])).unwrap();
        assert_eq!(
            out.actions,
            vec![Action::Ack(Args::Values(vec![
                json!(MAX_MEMBERS + 500),
                json!(MAX_MEMBERS),
                json!("S00000"),
            ]))]
        );
    }

    #[test]
    fn room_lookups_past_the_cap_fail_the_call() {
        let source = "fn on_event(ctx, args) {\n  for i in 0..args[0] { ctx.room_size(\"lobby\"); }\n  ctx.room_members(\"lobby\");\n  ctx.ack();\n}";
        let (set, r) = script(source, "on_event");
        let rooms = Rooms::with(&[("lobby", &["S1"])]);
        let within = run_among(&set, &r, vec![json!(MAX_ROOM_LOOKUPS - 1)], rooms.clone());
        assert_eq!(
            within.unwrap().actions,
            vec![Action::Ack(Args::Values(vec![]))]
        );
        assert_eq!(rooms.lookups(), MAX_ROOM_LOOKUPS);

        let rooms = Rooms::with(&[("lobby", &["S1"])]);
        let e = run_among(&set, &r, vec![json!(MAX_ROOM_LOOKUPS)], rooms.clone()).unwrap_err();
        let why = format!("too many room lookups (at most {MAX_ROOM_LOOKUPS} per call)");
        assert!(e.message.contains(&why), "{}", e.message);
        assert_eq!(e.line, 3, "at the lookup one too many");
        assert_eq!(
            rooms.lookups(),
            MAX_ROOM_LOOKUPS,
            "the one too many reads nothing"
        );
    }

    #[test]
    fn room_names_kept_for_actions_count_against_the_output_budget() {
        let (set, r) = script(
            "fn on_event(ctx, args) {\n  for i in 0..args[1] { ctx.join(args[0]); ctx.to(args[0]); }\n  ctx.ack();\n}",
            "on_event",
        );
        let big = "r".repeat(100_000);
        let within = run(&set, &r, vec![json!(big), json!(5)]).unwrap();
        assert_eq!(within.actions.len(), 6, "5 joins and the ack");
        let e = run(&set, &r, vec![json!(big), json!(1_000)]).unwrap_err();
        assert!(
            e.message.contains("more than script_output_bytes"),
            "{}",
            e.message
        );
        assert_eq!(e.line, 2);
    }

    #[test]
    fn runtime_errors_name_the_file_and_line() {
        let (set, r) = script("fn on_event(ctx, args) {\n  throw \"no\";\n}", "on_event");
        let e = run(&set, &r, vec![]).unwrap_err();
        // Its path as found from the routes file's folder (here, an absolute one).
        assert_eq!((e.path.as_str(), e.line), (r.path.to_str().unwrap(), 2));
        let (set, r) = script("\nfn on_event(ctx, args) { loop {} }", "on_event");
        let e = run(&set, &r, vec![]).unwrap_err();
        assert_eq!(e.line, 2, "a limit is reported at the handler's line");
        assert!(e.message.contains("Too many operations"), "{}", e.message);
    }

    #[test]
    fn authorize_allows_refuses_and_sets_data() {
        let (set, r) = script(
            "fn authorize(h) { if h.auth.t == 1 { #{ n: 1 } } else if h.auth.t == 2 { true } else if h.auth.t == 3 { throw \"go away\" } else { false } }",
            "authorize",
        );
        let hs = |t: i64| json!({"auth": {"t": t}});
        assert_eq!(
            set.authorize(&r, &hs(1)).unwrap(),
            AuthDecision::Allow(Some(json!({"n": 1})))
        );
        assert_eq!(
            set.authorize(&r, &hs(2)).unwrap(),
            AuthDecision::Allow(None)
        );
        assert_eq!(
            set.authorize(&r, &hs(3)).unwrap(),
            AuthDecision::Deny(Some("go away".into()))
        );
        assert_eq!(set.authorize(&r, &hs(4)).unwrap(), AuthDecision::Deny(None));
    }

    #[test]
    fn compile_errors_have_file_line_and_column() {
        let dir = unique_dir("bad");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.rhai");
        std::fs::write(&path, "fn on_event(ctx, args) {\n  let = 1;\n}").unwrap();
        let r = ScriptRef {
            path,
            name: "bad.rhai".into(),
            function: "on_event".into(),
        };
        let errors = ScriptSet::compile(&[&r], ScriptLimits::default()).unwrap_err();
        assert_eq!((errors[0].line, errors[0].column), (2, 7));
        let shown = format!("{}:2:7: ", r.path.display());
        assert!(errors[0].to_string().starts_with(&shown), "{}", errors[0]);
    }
}
