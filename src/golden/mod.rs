//! GOLDEN TESTS — routing behaviour pinned as transcripts. A case is a folder with
//! `routes.toml`, `steps.txt` (what named clients do) and `expected.txt` (what each client
//! received after each step); a case with no steps pins the errors of an invalid
//! routes.toml. The project's own suite and `switchboard test` use the same runner.

mod client;
mod junit;
mod link;
mod runner;
pub mod steps;

pub use junit::junit;
pub use runner::{CaseResult, EXPECTED, Outcome, ROUTES, STEPS, find_cases, run_all, run_case};
