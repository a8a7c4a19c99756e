//! Runs every case under `tests/golden/` (see `src/golden/`). `UPDATE_GOLDEN=1` rewrites the
//! expected transcripts instead of comparing them — for writing cases, never in CI: with `CI`
//! set, the suite refuses it.

use std::path::{Path, PathBuf};

use switchboard::golden::{Outcome, run_all};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_cases_match_their_transcripts() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0");
    assert!(
        !(update && std::env::var_os("CI").is_some()),
        "UPDATE_GOLDEN is set in CI: transcripts would be rewritten, not checked"
    );
    let results = run_all(&golden_dir(), None, update).await.unwrap();
    assert!(
        results.len() >= 10,
        "expected the golden suite, found {} cases",
        results.len()
    );
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Pass | Outcome::Updated => None,
            Outcome::Fail(diff) => Some(format!("FAIL {}\n{diff}", r.name)),
            Outcome::Error(e) => Some(format!("ERROR {}: {e}", r.name)),
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The main cases, run with some clients over long-polling, and the WebSocket cases they
/// mirror.
const TWINS: &[(&str, &str)] = &[
    ("polling-chat", "target-io"),
    ("polling-rooms", "target-room"),
    ("polling-join-leave", "join-leave"),
    ("polling-acks", "acks"),
    ("polling-binary", "binary"),
    ("polling-auth", "auth"),
    ("polling-lifecycle", "lifecycle"),
    ("polling-malformed", "malformed"),
];

/// A transcript or steps file with the transport choices left out.
fn without_transports(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            l.replacen(" / polling", " /", 1)
                .replacen(" polling {", " {", 1)
        })
        .collect()
}

#[test]
fn cases_over_long_polling_read_exactly_as_over_websocket() {
    let dir = golden_dir();
    for (polling, websocket) in TWINS {
        let (p, w) = (dir.join(polling), dir.join(websocket));
        assert_eq!(
            std::fs::read_to_string(p.join("routes.toml")).unwrap(),
            std::fs::read_to_string(w.join("routes.toml")).unwrap(),
            "{polling} runs the routes of {websocket}"
        );
        let steps = std::fs::read_to_string(p.join("steps.txt")).unwrap();
        assert!(
            steps.contains(" polling"),
            "{polling} has clients over long-polling"
        );
        for file in ["steps.txt", "expected.txt"] {
            assert_eq!(
                without_transports(&p.join(file)),
                without_transports(&w.join(file)),
                "{polling}/{file} differs from {websocket}/{file} beyond the transport"
            );
        }
    }
}

/// `switchboard test` as a user runs it on a case folder: stdout, stderr, exit code.
fn switchboard_test(dir: &Path, args: &[&str]) -> (String, String, i32) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("test")
        .arg(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("UPDATE_GOLDEN")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn the_test_command_is_quiet_updates_only_what_changed_and_writes_junit() {
    let dir = crate::support::TempDir::new("test-command");
    let case = dir.path().join("chat");
    std::fs::create_dir_all(&case).unwrap();
    std::fs::write(
        case.join("routes.toml"),
        "[namespaces.\"/\".events]\nhi = \"io\"\n",
    )
    .unwrap();
    std::fs::write(
        case.join("steps.txt"),
        "c1 connect /\nc1 emit / [\"hi\",1]\n",
    )
    .unwrap();

    let (out, _, code) = switchboard_test(dir.path(), &["--update"]);
    assert_eq!(
        (out.lines().next(), code),
        (Some("UPDATED chat"), 0),
        "{out}"
    );
    let (out, _, _) = switchboard_test(dir.path(), &["--update"]);
    assert!(
        out.starts_with("PASS chat"),
        "an unchanged case is no update: {out}"
    );

    let report = dir.path().join("report.xml");
    let (out, err, code) = switchboard_test(dir.path(), &["--junit", report.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("INFO"), "quiet by default: {err}");
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(
        xml.contains(r#"tests="1" failures="0" errors="0""#),
        "{xml}"
    );

    let (_, err, _) = switchboard_test(dir.path(), &["-v"]);
    assert!(err.contains("INFO"), "-v shows the server's logs: {err}");

    std::fs::write(case.join("expected.txt"), "> c1 connect /\n").unwrap();
    let (out, _, code) = switchboard_test(dir.path(), &["--junit", report.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.starts_with("FAIL chat"), "{out}");
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(
        xml.contains(r#"failures="1""#) && xml.contains("<failure "),
        "{xml}"
    );
}
