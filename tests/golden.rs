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
