//! The routes files the project ships compile, and `switchboard check` reports problems with
//! their location.

use std::path::{Path, PathBuf};
use std::process::Command;

use switchboard::app::load_routes;

use crate::support::TempDir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped_routes() -> Vec<PathBuf> {
    let mut files = vec![root().join("routes.toml")];
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let candidate = entry.unwrap().path().join("routes.toml");
        if candidate.is_file() {
            files.push(candidate);
        }
    }
    files
}

/// The secrets the shipped examples read from the environment, as a user would export them.
fn example_env(name: &str) -> Option<String> {
    match name {
        "NOTIFY_JWT_SECRET" => Some("a-secret-of-at-least-thirty-two-bytes".to_owned()),
        "BACKEND_SECRET" => Some("a-backend-secret-of-16-bytes-or-more".to_owned()),
        "SWITCHBOARD_API_KEYS" => Some("an-api-key-of-16-bytes-or-more".to_owned()),
        // bcrypt("admin-password", cost 4)
        "ADMIN_UI_PASSWORD_HASH" => {
            Some("$2a$04$wADPsjHI0gxZG1U3j6rVe.Zwdj6C9VLb/Bu7tEB.Xm1Hi8X35te0m".to_owned())
        }
        _ => std::env::var(name).ok(),
    }
}

#[test]
fn every_shipped_routes_file_compiles() {
    for file in shipped_routes() {
        // `load` compiles the scripts the file names as well.
        if let Err(e) = switchboard::app::load_with_env(&file, &example_env) {
            panic!("{} does not compile:\n{e}", file.display());
        }
    }
}

#[test]
fn the_demo_routes_relay_chat_in_two_namespaces() {
    let table = load_routes(&root().join("routes.toml")).unwrap();
    assert!(
        table
            .namespace("/")
            .unwrap()
            .events
            .contains_key("chat message")
    );
    assert!(
        table
            .namespace("/chat")
            .unwrap()
            .events
            .contains_key("message")
    );
    assert_eq!(table.statics.len(), 1);
}

fn check(path: &Path) -> (i32, String, String) {
    check_with(path, &[])
}

fn check_with(path: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec![std::ffi::OsStr::new("check"), path.as_os_str()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    cli(&all)
}

/// The binary run with `args` to its end: exit code, stdout, stderr.
fn cli(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_warns_of_a_file_that_refuses_everyone_and_strict_fails_on_it() {
    let dir = TempDir::new("check-warn");
    let file = dir.write("routes.toml", "[server]\nserve_client = false\n");
    let (code, _, stderr) = check(&file);
    assert_eq!(code, 0, "a warning alone passes");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("routes.toml:1:1: no namespace is declared"),
        "{stderr}"
    );
    let (code, _, _) = check_with(&file, &["--strict"]);
    assert_eq!(code, 1);
    let (code, stdout, _) = check_with(&file, &["--format", "json"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["warnings"][0]["line"], 1);
    assert!(report["problems"].as_array().unwrap().is_empty());
}

#[test]
fn check_as_json_locates_every_problem() {
    let dir = TempDir::new("check-json");
    let file = dir.write(
        "routes.toml",
        "[namespaces.\"/\".events]\nhello = \"everyone\"\nbye = { to = \"rooom\" }\n",
    );
    let (code, stdout, _) = check_with(&file, &["--format", "json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{report}");
    assert_eq!(
        (problems[1]["line"].as_u64(), problems[1]["column"].as_u64()),
        (Some(3), Some(14))
    );
    assert!(
        problems[1]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `room`?")
    );
}

#[test]
fn check_summarises_a_valid_file() {
    let (code, stdout, _) = check(&root().join("routes.toml"));
    assert_eq!(code, 0);
    assert!(stdout.contains("namespace /chat"), "{stdout}");
    assert!(stdout.contains("chat message: 1 step(s)"), "{stdout}");
}

#[test]
fn check_reports_every_problem_with_its_location() {
    let dir = TempDir::new("check");
    let file = dir.write(
        "routes.toml",
        "[server]\nping_interval = \"soon\"\n\n[namespaces.\"/\".events]\nhello = \"everyone\"\nbye = { to = \"room\" }\n",
    );
    let (code, _, stderr) = check(&file);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("routes.toml:2:17: `soon` is not a duration"),
        "{stderr}"
    );
    assert!(
        stderr.contains("routes.toml:5:9: route of `hello`: unknown target `everyone`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("routes.toml:6:14: route of `bye`: `to = \"room\"` needs `room`"),
        "{stderr}"
    );
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
}

/// Start the binary on `config` with `args` and `env`; returns the address it reports, or
/// its stderr if it exits first.
fn first_line(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("SWITCHBOARD_LISTEN")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    if line.is_empty() {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        Err(err)
    } else {
        Ok(line)
    }
}

#[test]
fn with_json_logs_every_line_the_server_writes_is_json() {
    let dir = TempDir::new("json-logs");
    let file = dir.write(
        "routes.toml",
        "[server]\nlisten = \"192.0.2.1:9\"\nserve_client = false\n",
    );
    let json = |line: &str| -> serde_json::Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let up = first_line(
        &file,
        &["--log-format", "json", "--listen", "127.0.0.1:0"],
        &[],
    )
    .unwrap();
    let up = json(&up);
    assert!(
        up["listening"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{up}"
    );
    let failed = first_line(&file, &["--log-format", "json"], &[]).unwrap_err();
    assert!(failed.contains("cannot listen on 192.0.2.1:9"), "{failed}");
    for line in failed.lines() {
        json(line);
    }
}

#[test]
fn listen_flag_and_env_override_the_file() {
    let dir = TempDir::new("listen");
    // An address of no interface here: binding it fails unless overridden.
    let file = dir.write(
        "routes.toml",
        "[server]\nlisten = \"192.0.2.1:9\"\nserve_client = false\n",
    );

    let err = first_line(&file, &[], &[]).unwrap_err();
    assert!(err.contains("cannot listen on 192.0.2.1:9"), "{err}");

    let env = first_line(&file, &[], &[("SWITCHBOARD_LISTEN", "127.0.0.1:0")]).unwrap();
    assert!(
        env.starts_with("switchboard listening on http://127.0.0.1:"),
        "{env}"
    );

    let flag = first_line(
        &file,
        &["--listen", "127.0.0.1:0"],
        &[("SWITCHBOARD_LISTEN", "192.0.2.1:9")],
    )
    .unwrap();
    assert!(
        flag.starts_with("switchboard listening on http://127.0.0.1:"),
        "{flag}"
    );
}

#[test]
fn explain_says_what_the_routes_do_with_one_event() {
    let dir = TempDir::new("explain");
    let file = dir.write(
        "routes.toml",
        "[namespaces.\"/\".events]\nsay = [ { to = \"room\", room = \"{0.room}\", data = [\"{0.text}\"] }, { ack = \"ok\", when = { in_room = \"{0.room}\" } } ]\n",
    );
    let run = |args: &[&str]| {
        let mut all = vec!["--config".as_ref(), file.as_os_str(), "explain".as_ref()];
        all.extend(args.iter().map(std::ffi::OsStr::new));
        cli(&all)
    };
    let (code, out, _) = run(&[
        "/",
        "say",
        r#"[{"room":"r1","text":"hi"}]"#,
        "--rooms",
        "r1",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("step 1: `say` with [\"hi\"] to room `r1` of / but the sender\nstep 2: ack with [\"ok\"]"),
        "{out}"
    );
    let (_, out, _) = run(&["/", "say", r#"[{"room":"r1","text":"hi"}]"#]);
    assert!(
        out.contains("step 2: skipped, its `when` does not hold"),
        "{out}"
    );
    let (code, _, err) = run(&["/", "say", "not json"]);
    assert_eq!(code, 2);
    assert!(err.contains("JSON array"), "{err}");
}

#[test]
fn plan_shows_a_reload_before_it_happens_and_exits_2_when_it_disconnects() {
    let dir = TempDir::new("plan");
    let old = dir.write(
        "routes.toml",
        "[namespaces.\"/\".events]\nhi = \"io\"\n[namespaces.\"/admin\".events]\nx = \"emit\"\n",
    );
    let run = |new: &Path| {
        cli(&[
            "--config".as_ref(),
            old.as_os_str(),
            "plan".as_ref(),
            new.as_os_str(),
        ])
    };
    let added = dir.write(
        "added.toml",
        "[namespaces.\"/\".events]\nhi = \"io\"\nbye = \"io\"\n[namespaces.\"/admin\".events]\nx = \"emit\"\n",
    );
    let (code, out, _) = run(&added);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("  ~ / event `bye` added"), "{out}");
    assert!(out.contains("config_hash "), "{out}");

    let dropped = dir.write("dropped.toml", "[namespaces.\"/\".events]\nhi = \"io\"\n");
    let (code, out, _) = run(&dropped);
    assert_eq!(code, 2, "a plan that disconnects anyone fails a CI gate");
    assert!(
        out.contains("the sockets of /admin are disconnected"),
        "{out}"
    );

    let broken = dir.write(
        "broken.toml",
        "[namespaces.\"/\".events]\nhi = \"everyone\"\n",
    );
    let (code, _, err) = run(&broken);
    assert_eq!(code, 1);
    assert!(err.contains("unknown target `everyone`"), "{err}");
}
