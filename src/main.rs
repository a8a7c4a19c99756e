//! The `switchboard` command: serve routes.toml, or check it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::app::{App, LoadError, load_routes};
use switchboard::golden::Outcome;
use switchboard::routing::RouteTable;
use switchboard::server::{ClientBundle, Server};
use tracing_appender::non_blocking::WorkerGuard;

/// A Socket.IO server whose event routing is configuration.
///
/// Serves the routes file (and reloads it when it changes, or on SIGHUP). Logs go to
/// stderr, filtered by RUST_LOG (e.g. `RUST_LOG=switchboard=debug`); SIGTERM or SIGINT
/// shut down gracefully, a second one at once.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// The routes file.
    #[arg(
        long,
        short,
        env = "SWITCHBOARD_CONFIG",
        default_value = "routes.toml",
        global = true
    )]
    config: PathBuf,

    /// Log format: `text` for people, `json` (one object per line) for machines.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"], global = true)]
    log_format: String,

    /// How long a graceful shutdown waits for connections to close (e.g. "10s", "500ms").
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    shutdown_timeout: std::time::Duration,

    /// Address to listen on, overriding `[server].listen`.
    #[arg(long, short, env = "SWITCHBOARD_LISTEN")]
    listen: Option<String>,

    /// Folder of the npm package `socket.io-client` (or its `dist`), served as the client
    /// bundle. Defaults to `node_modules/socket.io-client` beside the routes file, then in
    /// the working directory.
    #[arg(long, env = "SWITCHBOARD_CLIENT_DIR")]
    client_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a routes file: print every problem (exit 1) or a summary (exit 0).
    Check {
        /// The routes file; defaults to --config.
        path: Option<PathBuf>,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        strict: bool,
        /// `text` for people, `json` (one object: problems and warnings, located) for editors
        /// and CI.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// What a reload from the routes in force (--config) to NEW would do: events, routes and
    /// settings added, removed or changed, namespaces whose sockets would be disconnected,
    /// what needs a restart, the new config hash. Exit 2 when it disconnects anyone.
    Plan {
        /// The new routes file.
        new: PathBuf,
        /// Plan against a running server instead of --config: its admin port's URL
        /// (`[server] admin_listen`), like http://127.0.0.1:9090.
        #[arg(long)]
        server: Option<String>,
    },
    /// Explain what the routes (--config) do with one event: the route that matches, each
    /// step with its templates expanded or why it is skipped, who receives what, the ack.
    Explain {
        /// The namespace, like "/".
        namespace: String,
        /// The event's name.
        event: String,
        /// Its arguments, a JSON array like '["hi", {"room": "r1"}]'.
        #[arg(default_value = "[]")]
        args: String,
        /// The sender's socket.data, as JSON.
        #[arg(long, default_value = "null")]
        socket_data: String,
        /// The rooms the sender is in, comma-separated.
        #[arg(long, value_delimiter = ',')]
        rooms: Vec<String>,
        /// Explain against a running server's routes: its admin port's URL.
        #[arg(long)]
        server: Option<String>,
    },
    /// Trace one event on a running server: its next occurrences (at most 100, within at most
    /// 60 s) explained as they are routed, with their senders' data and rooms.
    Trace {
        /// The namespace, like "/".
        namespace: String,
        /// The event's name.
        event: String,
        /// The server's admin port URL, like http://127.0.0.1:9090.
        #[arg(long)]
        server: String,
        /// How many events to trace.
        #[arg(long, default_value_t = 10)]
        count: u64,
        /// How long to wait for them, in seconds.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// The events the routes (--config) know, typed: TypeScript `ClientToServerEvents` /
    /// `ServerToClientEvents` per namespace (from the events' schemas), or an AsyncAPI 3
    /// document.
    Types {
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// `typescript`, or `asyncapi` (JSON).
        #[arg(long, default_value = "typescript", value_parser = ["typescript", "asyncapi"])]
        format: String,
    },
    /// Run golden cases: each folder's steps against its routes.toml (or --config), compared
    /// with its expected.txt.
    Test {
        /// A case folder, or a folder of cases.
        #[arg(default_value = "tests/golden")]
        dir: PathBuf,
        /// Write expected.txt from what happens instead of comparing (also UPDATE_GOLDEN=1).
        #[arg(long)]
        update: bool,
        /// Show the server's logs (by default only warnings and errors).
        #[arg(long, short)]
        verbose: bool,
        /// Also write a JUnit XML report of the cases to FILE, for CI systems.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `test` is quiet unless asked: its servers' INFO lines are not what a test run reports.
    let level = match cli.command {
        Some(Command::Test { verbose: false, .. }) => "warn",
        _ => "info",
    };
    init_logs(&cli.log_format, level);
    let code = run(&cli);
    flush_logs();
    code
}

fn run(cli: &Cli) -> ExitCode {
    match cli.command {
        Some(Command::Check {
            ref path,
            strict,
            ref format,
        }) => check(
            path.as_deref().unwrap_or(&cli.config),
            strict,
            format == "json",
        ),
        Some(Command::Test {
            ref dir,
            update,
            junit: ref report,
            ..
        }) => {
            let update = update || std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0");
            golden(dir, &cli.config, update, report.as_deref())
        }
        Some(Command::Plan {
            ref new,
            server: Some(ref server),
        }) => remote_plan(server, new),
        Some(Command::Plan { ref new, .. }) => plan(&cli.config, new),
        Some(Command::Trace {
            ref namespace,
            ref event,
            ref server,
            count,
            seconds,
        }) => remote(
            server,
            "/trace",
            serde_json::json!({ "namespace": namespace, "event": event, "count": count, "seconds": seconds })
                .to_string(),
        )
        .map_or_else(failed, |text| {
            print!("{text}");
            ExitCode::SUCCESS
        }),
        Some(Command::Types {
            ref out,
            ref format,
        }) => types(&cli.config, out.as_deref(), format),
        Some(Command::Explain {
            ref namespace,
            ref event,
            ref args,
            ref socket_data,
            ref rooms,
            ref server,
        }) => match server {
            Some(server) => remote_explain(server, namespace, event, args, socket_data, rooms),
            None => explain(
            &cli.config,
            switchboard::routing::explain::Question {
                namespace: namespace.clone(),
                event: event.clone(),
                args: Vec::new(),
                socket_data: serde_json::Value::Null,
                rooms: rooms.clone(),
            },
                args,
                socket_data,
            ),
        },
        None => match serve(cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                if cli.log_format == "json" {
                    // Every line the server writes is JSON: the fatal one too.
                    tracing::error!("switchboard: {e:#}");
                } else {
                    // After the lines that led to it, which its own thread may still hold.
                    flush_logs();
                    eprintln!("switchboard: {e:#}");
                }
                ExitCode::from(match e.downcast_ref::<LoadError>() {
                    Some(_) => 2,
                    None => 1,
                })
            }
        },
    }
}

/// Logs to stderr, filtered by `RUST_LOG`. In text, every field and message has its control
/// characters escaped, so what a client sent (an event name, a script's `print` of it)
/// can never forge a log line; colours only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>). JSON escapes by itself.
///
/// Lines are written by a thread of their own, never by one serving sockets: when whatever
/// reads stderr stops (a stalled log collector, a full pipe), up to [`LOG_LINES_QUEUED`]
/// lines wait and later ones are dropped, counted in `/metrics`.
fn init_logs(format: &str, level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::field::MakeExt;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_LINES_QUEUED)
        .lossy(true)
        .thread_name("switchboard-log")
        .finish(std::io::stderr());
    switchboard::server::count_dropped_log_lines(writer.error_counter());
    *LOG_GUARD.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if format == "json" {
        logs.json().init();
        return;
    }
    let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let raw = format!("{value:?}");
        let text = escape_controls(&raw);
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{field}={text}")
        }
    })
    .delimited(" ");
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    logs.with_ansi(colour).fmt_fields(fields).init();
}

/// The log's writer thread, until [`flush_logs`].
static LOG_GUARD: std::sync::Mutex<Option<WorkerGuard>> = std::sync::Mutex::new(None);

/// Write out the log lines still queued (waiting at most a second for a slow reader); call
/// before the process exits.
fn flush_logs() {
    let guard = LOG_GUARD.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(guard);
}

/// Log lines that may wait for a slow reader of stderr (about 1.5 MB of text).
const LOG_LINES_QUEUED: usize = 10_000;

/// `text` with control characters (newlines, escapes) written as escapes.
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

fn check(path: &Path, strict: bool, json: bool) -> ExitCode {
    let loaded = load_routes(path);
    if json {
        return check_json(path, &loaded, strict);
    }
    match loaded {
        Ok(table) => {
            let warnings = table.warnings.as_ref().map_or(0, |w| w.diagnostics.len());
            if let Some(report) = &table.warnings {
                for d in &report.diagnostics {
                    eprintln!("warning: {}: {}", report.location(d), d.message);
                }
                eprintln!("{warnings} warning(s) in {}", path.display());
            }
            print!("{}", summary(path, &table));
            if strict && warnings > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(LoadError::Invalid(report)) => {
            eprint!("{report}");
            eprintln!(
                "{} problem(s) in {}",
                report.diagnostics.len(),
                path.display()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("switchboard: {e}");
            ExitCode::from(1)
        }
    }
}

/// `check --format json`: `{"file", "ok", "problems": [..], "warnings": [..]}`, each entry
/// `{"line", "column", "message"}`.
fn check_json(path: &Path, loaded: &Result<RouteTable, LoadError>, strict: bool) -> ExitCode {
    let entries = |report: Option<&switchboard::routing::Report>| -> Vec<serde_json::Value> {
        report.map_or_else(Vec::new, |r| {
            r.diagnostics
                .iter()
                .map(|d| {
                    let (line, column) = r.line_col(d.span.start);
                    serde_json::json!({ "line": line, "column": column, "message": d.message })
                })
                .collect()
        })
    };
    let (problems, warnings) = match loaded {
        Ok(table) => (Vec::new(), entries(table.warnings.as_ref())),
        Err(LoadError::Invalid(report)) => (entries(Some(report)), Vec::new()),
        Err(e) => (
            vec![serde_json::json!({ "line": null, "column": null, "message": e.to_string() })],
            Vec::new(),
        ),
    };
    let ok = problems.is_empty() && (warnings.is_empty() || !strict);
    println!(
        "{}",
        serde_json::json!({
            "file": path.display().to_string(),
            "ok": ok,
            "problems": problems,
            "warnings": warnings,
        })
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn plan(old: &Path, new: &Path) -> ExitCode {
    let plan = match switchboard::app::plan(old, new) {
        Ok(plan) => plan,
        Err(LoadError::Invalid(report)) => {
            eprint!("{report}");
            eprintln!(
                "{} problem(s): a reload would keep the routes in force",
                report.diagnostics.len()
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("switchboard: {e}");
            return ExitCode::from(1);
        }
    };
    print_plan(&old.display().to_string(), new, &plan)
}

/// A plan as `plan` prints it; exit 2 when it disconnects anyone (a gate for CI).
fn print_plan(from: &str, new: &Path, plan: &switchboard::app::Plan) -> ExitCode {
    println!("plan: {from} -> {}", new.display());
    if plan.changes.is_empty() {
        println!("no changes");
    }
    for change in &plan.changes {
        println!("  ~ {change}");
    }
    for namespace in &plan.disconnects {
        println!("  ! the sockets of {namespace} are disconnected (the namespace is gone)");
    }
    for line in &plan.restart {
        println!("  - {line}");
    }
    println!("config_hash {}", plan.hash);
    if plan.disconnects.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn explain(
    config: &Path,
    mut question: switchboard::routing::explain::Question,
    args: &str,
    socket_data: &str,
) -> ExitCode {
    match serde_json::from_str::<Vec<serde_json::Value>>(args) {
        Ok(args) => question.args = args,
        Err(e) => {
            eprintln!("switchboard: the arguments must be a JSON array, like '[\"hi\"]': {e}");
            return ExitCode::from(2);
        }
    }
    match serde_json::from_str(socket_data) {
        Ok(data) => question.socket_data = data,
        Err(e) => {
            eprintln!("switchboard: --socket-data must be JSON: {e}");
            return ExitCode::from(2);
        }
    }
    let table = match routes_of(config) {
        Ok(table) => table,
        Err(code) => return code,
    };
    match switchboard::routing::explain::explain(&table, &question) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchboard: {e}");
            ExitCode::from(1)
        }
    }
}

/// POST `body` to `path` of a running server's admin port; its answer, or why not.
#[tokio::main(flavor = "current_thread")]
async fn remote(server: &str, path: &str, body: String) -> Result<String, String> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let answer = reqwest::Client::new()
        .post(&url)
        .body(body)
        .timeout(std::time::Duration::from_secs(90))
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = answer.status();
    let text = answer.text().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(text)
    } else {
        Err(format!("{url} answered {status}: {}", text.trim_end()))
    }
}

/// The routes at `config`, or the exit of a command that needs them (why, on stderr).
fn routes_of(config: &Path) -> Result<switchboard::routing::RouteTable, ExitCode> {
    load_routes(config).map_err(|e| {
        eprintln!(
            "switchboard: {e} (switchboard check {} says more)",
            config.display()
        );
        ExitCode::from(1)
    })
}

fn failed(e: String) -> ExitCode {
    eprintln!("switchboard: {e}");
    ExitCode::from(1)
}

fn remote_plan(server: &str, new: &Path) -> ExitCode {
    let source = match std::fs::read_to_string(new) {
        Ok(s) => s,
        Err(e) => return failed(format!("cannot read {}: {e}", new.display())),
    };
    match remote(server, "/plan", source).and_then(|text| {
        serde_json::from_str(&text)
            .map_err(|e| format!("{server} answered a plan that is not one: {e}"))
    }) {
        Ok(plan) => print_plan(server, new, &plan),
        Err(e) => failed(e),
    }
}

fn remote_explain(
    server: &str,
    namespace: &str,
    event: &str,
    args: &str,
    socket_data: &str,
    rooms: &[String],
) -> ExitCode {
    let (Ok(args), Ok(data)) = (
        serde_json::from_str::<serde_json::Value>(args),
        serde_json::from_str::<serde_json::Value>(socket_data),
    ) else {
        return failed("the arguments and --socket-data must be JSON".to_owned());
    };
    let body = serde_json::json!({
        "namespace": namespace, "event": event, "args": args, "socket_data": data, "rooms": rooms,
    });
    match remote(server, "/explain", body.to_string()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

fn types(config: &Path, out: Option<&Path>, format: &str) -> ExitCode {
    let table = match routes_of(config) {
        Ok(table) => table,
        Err(code) => return code,
    };
    let text = if format == "asyncapi" {
        let hash = std::fs::read(config).map(|b| switchboard::app::content_hash(&b));
        let doc = switchboard::routing::types::asyncapi(&table, &hash.unwrap_or_default());
        serde_json::to_string_pretty(&doc).expect("JSON values serialize") + "\n"
    } else {
        switchboard::routing::types::typescript(&table)
    };
    match out {
        None => print!("{text}"),
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("switchboard: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

#[tokio::main]
async fn golden(dir: &Path, config: &Path, update: bool, junit: Option<&Path>) -> ExitCode {
    let fallback = config.is_file().then_some(config);
    let results = match switchboard::golden::run_all(dir, fallback, update).await {
        Ok(results) => results,
        Err(e) => {
            eprintln!("switchboard: cannot read {}: {e}", dir.display());
            return ExitCode::from(1);
        }
    };
    let mut failed = 0;
    for result in &results {
        match &result.outcome {
            Outcome::Pass => println!("PASS {}", result.name),
            Outcome::Updated => println!("UPDATED {}", result.name),
            Outcome::Fail(diff) => {
                failed += 1;
                println!("FAIL {}\n{diff}", result.name);
            }
            Outcome::Error(e) => {
                failed += 1;
                println!("ERROR {}: {e}", result.name);
            }
        }
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed > 0 {
        println!("(`switchboard test -v` shows the server's logs)");
    }
    if let Some(path) = junit
        && let Err(e) = std::fs::write(path, switchboard::golden::junit(&results))
    {
        eprintln!("switchboard: cannot write {}: {e}", path.display());
        return ExitCode::from(1);
    }
    if failed == 0 && !results.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn summary(path: &Path, table: &RouteTable) -> String {
    let mut out = format!("{}: OK\n", path.display());
    let s = &table.server;
    out += &format!(
        "server: listen {} · path {} · ping {:?}/{:?}\n",
        s.listen, s.path, s.ping_interval, s.ping_timeout
    );
    for m in &table.statics {
        out += &format!("static: {} -> {}\n", m.mount, m.dir.display());
    }
    for (name, ns) in &table.namespaces {
        let auth = if ns.auth.is_some() { " (auth)" } else { "" };
        out += &format!("namespace {name}{auth}\n");
        let mut events: Vec<_> = ns.events.keys().collect();
        events.sort();
        for e in events {
            out += &format!("  {e}: {} step(s)\n", ns.events[e].steps.len());
        }
        for (label, route) in [
            ("connect", &ns.on_connect),
            ("disconnect", &ns.on_disconnect),
            ("*", &ns.catch_all),
        ] {
            if let Some(r) = route {
                out += &format!("  {label}: {} step(s)\n", r.steps.len());
            }
        }
    }
    out
}

#[tokio::main]
async fn serve(cli: &Cli) -> anyhow::Result<()> {
    // Connections need descriptors: take what the system allows; the connection cap is
    // what is left after a reserve.
    let files = switchboard::limits::raise_file_limit();
    tracing::debug!(
        open_files = files,
        max_connections = switchboard::limits::auto_connection_cap(),
        "File limit"
    );
    let app = Arc::new(App::load(&cli.config, cli.listen.clone())?);
    let settings = app.snapshot().routes.server.clone();
    let client = if settings.serve_client {
        let base = switchboard::app::routes_dir(&cli.config);
        let candidates = match &cli.client_dir {
            Some(dir) => vec![dir.clone()],
            None => vec![
                base.join("node_modules/socket.io-client"),
                PathBuf::from("node_modules/socket.io-client"),
            ],
        };
        match ClientBundle::find(&candidates) {
            Ok(bundle) => Some(bundle),
            Err(e) => {
                tracing::warn!(error = %e, "Client bundle not served");
                None
            }
        }
    } else {
        None
    };
    let listener = listen(&settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let _watcher = match switchboard::app::watch(app.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "Routes file changes will not be picked up");
            None
        }
    };
    let admin = match &settings.admin_listen {
        Some(admin) => Some(
            tokio::net::TcpListener::bind(admin)
                .await
                .with_context(|| format!("cannot listen on {admin} (admin_listen)"))?,
        ),
        None => None,
    };
    let api_listen = app
        .snapshot()
        .routes
        .api
        .as_ref()
        .and_then(|a| a.listen.clone());
    let api = match &api_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} ([api] listen)"))?,
        ),
        None => None,
    };
    let app_tls = app.snapshot().routes.server.tls.is_some();
    let server = Server::with_shutdown_timeout(app, client, cli.shutdown_timeout);
    if server
        .app()
        .snapshot()
        .routes
        .admin_ui
        .as_ref()
        .is_some_and(|ui| ui.mount.is_some())
    {
        let base = switchboard::app::routes_dir(&cli.config);
        let node_modules = [base.join("node_modules"), PathBuf::from("node_modules")];
        if !server.find_admin_ui(&node_modules) {
            tracing::warn!(
                "Admin UI files not found (run `npm ci`: it installs @socket.io/admin-ui); its mount answers 404"
            );
        }
    }
    if let Some(api) = api {
        tracing::info!(addr = %api.local_addr()?, "Serving the server API");
        server.serve_api(api);
    }
    if let Some(admin) = admin {
        tracing::info!(addr = %admin.local_addr()?, "Serving /metrics, /healthz and /readyz");
        server.serve_admin(admin);
    }
    // The handlers are in place before anyone is told the server listens: a signal sent
    // right after is a graceful shutdown, never the default exit.
    let shutdown = shutdown_signal();
    tracing::info!(addr = %addr, config = %cli.config.display(), "Listening");
    let scheme = if app_tls { "https" } else { "http" };
    if cli.log_format == "json" {
        let url = format!("{scheme}://{addr}");
        let message = format!("switchboard listening on {url}");
        println!(
            "{}",
            serde_json::json!({ "message": message, "listening": url })
        );
    } else {
        println!("switchboard listening on {scheme}://{addr}");
    }
    server.serve(listener, shutdown).await;
    Ok(())
}

/// Install the SIGTERM and SIGINT handlers now; the future resolves at the first signal, and
/// a second one exits the process at once.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("Signal received: shutting down gracefully (again to exit at once)");
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("Second signal: exiting now");
            flush_logs();
            std::process::exit(130);
        });
    }
}

/// Resolves at Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A listener with a backlog of 1024 (tokio's default, 128, drops SYNs under a burst of
/// connections, each then waiting a 1 s retransmit).
fn listen(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let addr: std::net::SocketAddr = addr.parse().context("expected IP:PORT")?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(1024)?)
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    switchboard::routing::parse_duration(text)
}
