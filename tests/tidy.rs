//! The layering rules of `src/lib.rs`, checked on the source: which layer may `use` which,
//! pure codec files free of tokio and hyper, and a `//!` doc on every module.

use std::fs;
use std::path::{Path, PathBuf};

/// Layers and the layers each may use (`crate::<layer>`).
/// `limits` is a leaf every layer may use (token buckets, per-address tables, limit hits),
/// like a library; it uses no layer.
const ALLOWED: &[(&str, &[&str])] = &[
    ("limits", &[]),
    ("engineio", &["limits"]),
    ("socketio", &["engineio", "limits"]),
    ("adapter", &["socketio", "engineio", "limits"]),
    ("routing", &["limits"]),
    ("scripting", &["routing", "limits"]),
    (
        "app",
        &[
            "socketio",
            "adapter",
            "routing",
            "scripting",
            "engineio",
            "limits",
        ],
    ),
    ("server", &["app", "engineio", "routing", "limits"]),
];

/// Files that must stay pure: no runtime, no HTTP.
const PURE: &[&str] = &[
    "src/engineio/frame.rs",
    "src/engineio/packet.rs",
    "src/engineio/payload.rs",
    "src/engineio/sid.rs",
    "src/socketio/packet.rs",
    "src/limits/bucket.rs",
    "src/limits/per_ip.rs",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn layers_use_only_what_their_arrows_allow() {
    let mut problems = Vec::new();
    for (layer, allowed) in ALLOWED {
        let dir = root().join("src").join(layer);
        if !dir.exists() {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            for (other, _) in ALLOWED {
                if other == layer || allowed.contains(other) {
                    continue;
                }
                let needle = format!("crate::{other}");
                if text.contains(&needle) {
                    problems.push(format!("{} uses {needle}", file.display()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering violations:\n{}",
        problems.join("\n")
    );
}

#[test]
fn codec_files_know_no_runtime() {
    for file in PURE {
        let text = fs::read_to_string(root().join(file)).unwrap();
        for banned in ["tokio", "hyper", "fastwebsockets"] {
            assert!(!text.contains(banned), "{file} mentions {banned}");
        }
    }
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            !fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "modules without a //! doc: {missing:?}");
}
