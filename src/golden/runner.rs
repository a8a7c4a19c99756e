//! Runs golden cases against a real server over sockets and compares transcripts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::client::Client;
use super::steps::{self, StepAction};
use crate::app::App;
use crate::routing::{self, RouteTable};
use crate::server::Server;

/// The files of a case.
pub const ROUTES: &str = "routes.toml";
/// The client steps.
pub const STEPS: &str = "steps.txt";
/// The expected transcript.
pub const EXPECTED: &str = "expected.txt";

/// How one case went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The transcript matched.
    Pass,
    /// The expected file was written: it was missing or its transcript changed.
    Updated,
    /// The transcript differed; a unified diff, expected → actual.
    Fail(String),
    /// The case could not run.
    Error(String),
}

/// A case's name and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case folder's name.
    pub name: String,
    /// What happened.
    pub outcome: Outcome,
}

/// The cases under `dir`: `dir` itself if it holds `steps.txt`, else each subfolder that
/// holds `steps.txt` or `routes.toml` (a routes file without steps pins its errors), sorted.
pub fn find_cases(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if dir.join(STEPS).is_file() {
        return Ok(vec![dir.to_owned()]);
    }
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(STEPS).is_file() || p.join(ROUTES).is_file())
        .collect();
    cases.sort();
    Ok(cases)
}

/// Run every case under `dir`. A case without its own routes.toml uses `default_routes`.
/// With `update`, expected files are written instead of compared.
pub async fn run_all(
    dir: &Path,
    default_routes: Option<&Path>,
    update: bool,
) -> std::io::Result<Vec<CaseResult>> {
    let mut results = Vec::new();
    for case in find_cases(dir)? {
        let name = case.file_name().map_or_else(
            || case.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let outcome = run_case(&case, default_routes, update).await;
        results.push(CaseResult { name, outcome });
    }
    Ok(results)
}

/// Run one case folder.
pub async fn run_case(case: &Path, default_routes: Option<&Path>, update: bool) -> Outcome {
    let actual = match transcript(case, default_routes).await {
        Ok(t) => t,
        Err(e) => return Outcome::Error(e),
    };
    let expected_path = case.join(EXPECTED);
    if update {
        // Unchanged is a pass: UPDATED names only the cases whose transcript moved.
        if std::fs::read_to_string(&expected_path).is_ok_and(|old| old == actual) {
            return Outcome::Pass;
        }
        return match std::fs::write(&expected_path, &actual) {
            Ok(()) => Outcome::Updated,
            Err(e) => Outcome::Error(format!("cannot write {}: {e}", expected_path.display())),
        };
    }
    let expected = match std::fs::read_to_string(&expected_path) {
        Ok(e) => e,
        Err(e) => {
            return Outcome::Error(format!(
                "cannot read {}: {e} (run with --update to create it)",
                expected_path.display()
            ));
        }
    };
    if expected == actual {
        Outcome::Pass
    } else {
        let diff = similar::TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .header("expected", "actual")
            .to_string();
        Outcome::Fail(diff)
    }
}

/// The transcript of a case: its compile errors, or what every client received step by step.
async fn transcript(case: &Path, default_routes: Option<&Path>) -> Result<String, String> {
    let own = case.join(ROUTES);
    let routes_path = if own.is_file() {
        own
    } else {
        default_routes
            .map(Path::to_owned)
            .ok_or_else(|| format!("{} has no {ROUTES}", case.display()))?
    };
    let source = std::fs::read_to_string(&routes_path)
        .map_err(|e| format!("cannot read {}: {e}", routes_path.display()))?;
    let base_dir = routes_path.parent().unwrap_or(Path::new("."));
    let env = routing::Env {
        base_dir,
        var: &|name| std::env::var(name).ok(),
    };
    let table = match routing::compile(&source, ROUTES, &env) {
        Ok(table) => table,
        Err(report) => return Ok(report.to_string()),
    };
    if let Err(e) = crate::app::compile_scripts(&table) {
        // Transcripts name the case's files from the case's folder, wherever it is.
        let prefix = format!("{}/", base_dir.display());
        return Ok(e.to_string().replace(&prefix, ""));
    }
    let steps_text = std::fs::read_to_string(case.join(STEPS))
        .map_err(|e| format!("cannot read {STEPS}: {e}"))?;
    let steps = steps::parse(&steps_text).map_err(|e| e.to_string())?;
    run_steps(table, &steps, case).await
}

/// Compile another routes file of the case, for a `reload` step.
fn compile_file(path: &Path) -> Result<(RouteTable, String), String> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let env = routing::Env {
        base_dir,
        var: &|name| std::env::var(name).ok(),
    };
    let name = path
        .file_name()
        .map_or_else(|| ROUTES.to_owned(), |n| n.to_string_lossy().into_owned());
    let table = routing::compile(&source, &name, &env).map_err(|report| report.to_string())?;
    Ok((table, crate::app::content_hash(source.as_bytes())))
}

async fn run_steps(
    mut table: RouteTable,
    steps: &[steps::Step],
    case: &Path,
) -> Result<String, String> {
    // Transcripts are text: the cases run with the default parser, whatever `parser` says
    // (msgpack is converted at the edge; what routes do is the same).
    table.server.msgpack = false;
    let path = table.server.path.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = Server::new(App::new(table), None);
    let stop = CancellationToken::new();
    let serving = tokio::spawn(
        server
            .clone()
            .serve(listener, stop.clone().cancelled_owned()),
    );

    let mut clients: BTreeMap<String, Client> = BTreeMap::new();
    let mut names: Vec<(String, String)> = Vec::new();
    let mut out = String::new();
    let result = async {
        for step in steps {
            out.push_str(&format!("> {}\n", step.text));
            if let StepAction::Reload(file) = &step.action {
                let (table, hash) =
                    compile_file(&case.join(file)).map_err(|e| format!("{}: {e}", step.text))?;
                if let crate::app::ReloadOutcome::Rejected(why) = server.app().apply(table, hash) {
                    out.push_str("(reload refused; the routes in force stay)\n");
                    out.push_str(&why);
                }
                for client in clients.values_mut() {
                    client
                        .barrier()
                        .await
                        .map_err(|e| format!("{}: {e}", step.text))?;
                }
                record(&mut clients, &mut names, &mut out);
                continue;
            }
            let client = clients.entry(step.client.clone()).or_default();
            match &step.action {
                StepAction::Connect {
                    nsp,
                    auth,
                    query,
                    polling,
                } => {
                    if !client.is_open() {
                        client
                            .open(addr, &path, query.as_deref(), polling.unwrap_or(false))
                            .await
                            .map_err(|e| format!("{}: {e}", step.text))?;
                    } else if polling.is_some() {
                        return Err(format!(
                            "{}: the transport is chosen by a client's first connect",
                            step.text
                        ));
                    }
                    let mut packet = "40".to_owned();
                    if nsp != "/" {
                        packet.push_str(nsp);
                        packet.push(',');
                    }
                    packet.push_str(auth.as_deref().unwrap_or(""));
                    client.send_text(&packet).await
                }
                StepAction::Emit { nsp, data, ack } => client.emit(nsp, data, *ack).await,
                StepAction::Disconnect { nsp } => {
                    let packet = if nsp == "/" {
                        "41".to_owned()
                    } else {
                        format!("41{nsp},")
                    };
                    client.send_text(&packet).await
                }
                StepAction::Send(raw) => client.send_text(raw).await,
                StepAction::Close => client.close().await,
                StepAction::Upgrade => client.upgrade(addr, &path).await,
                StepAction::Reload(_) => unreachable!("handled above"),
            }
            .map_err(|e| format!("{}: {e}", step.text))?;
            // The acting client first, then everyone else: see `Client::barrier`.
            let acting = step.client.clone();
            clients
                .get_mut(&acting)
                .expect("inserted above")
                .barrier()
                .await
                .map_err(|e| format!("{}: {e}", step.text))?;
            for (name, client) in clients.iter_mut().filter(|(n, _)| **n != acting) {
                client
                    .barrier()
                    .await
                    .map_err(|e| format!("{}: {name}: {e}", step.text))?;
            }
            record(&mut clients, &mut names, &mut out);
        }
        Ok::<(), String>(())
    }
    .await;
    stop.cancel();
    let _ = serving.await;
    result?;
    for (sid, name) in names {
        out = out.replace(&sid, &name);
    }
    Ok(out)
}

/// Append what every client received, client by client.
fn record(
    clients: &mut BTreeMap<String, Client>,
    names: &mut Vec<(String, String)>,
    out: &mut String,
) {
    for (name, client) in clients.iter_mut() {
        for line in client.take() {
            learn_sid(name, &line, names);
            out.push_str(&format!("{name} < {line}\n"));
        }
    }
}

/// From a CONNECT answer (`40{"sid":"…"}` or `40/chat,{"sid":"…"}`), remember the socket id
/// under a stable name: `<c1>` in `/`, `<c1/chat>` elsewhere.
fn learn_sid(client: &str, line: &str, names: &mut Vec<(String, String)>) {
    let Some(rest) = line.strip_prefix("40") else {
        return;
    };
    let (nsp, json) = match rest.strip_prefix('/') {
        Some(_) => rest.split_once(',').unwrap_or((rest, "")),
        None => ("/", rest),
    };
    #[derive(serde::Deserialize)]
    struct Connected {
        sid: String,
    }
    if let Ok(c) = serde_json::from_str::<Connected>(json) {
        let name = if nsp == "/" {
            format!("<{client}>")
        } else {
            format!("<{client}{nsp}>")
        };
        names.push((c.sid, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_ids_get_stable_names() {
        let mut names = Vec::new();
        learn_sid("c1", r#"40{"sid":"AAAAAAAAAAAAAAAAAAAA"}"#, &mut names);
        learn_sid(
            "c2",
            r#"40/chat,{"sid":"BBBBBBBBBBBBBBBBBBBB"}"#,
            &mut names,
        );
        learn_sid("c2", r#"44{"message":"x"}"#, &mut names);
        assert_eq!(
            names,
            vec![
                ("AAAAAAAAAAAAAAAAAAAA".to_owned(), "<c1>".to_owned()),
                ("BBBBBBBBBBBBBBBBBBBB".to_owned(), "<c2/chat>".to_owned()),
            ]
        );
    }
}
