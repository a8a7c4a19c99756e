//! Any text as routes.toml: compiled or reported (every diagnostic rendered), never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use switchboard::routing::{Env, compile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = Env {
        base_dir: Path::new("."),
        var: &|name| (name == "TOKENS").then(|| "a,b".to_owned()),
    };
    match compile(text, "routes.toml", &env) {
        Ok(table) => {
            let _ = table.scripts();
        }
        Err(report) => {
            assert!(!report.diagnostics.is_empty());
            let _ = report.to_string();
        }
    }
});
