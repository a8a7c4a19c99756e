//! Runs every case under `tests/golden/` (see `src/golden/`). `UPDATE_GOLDEN=1` rewrites the
//! expected transcripts instead of comparing them.

use std::path::PathBuf;

use switchboard::golden::{Outcome, run_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_cases_match_their_transcripts() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0");
    let results = run_all(&dir, None, update).await.unwrap();
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
