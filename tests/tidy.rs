//! The layering rules of `src/lib.rs` (and `../shared/design.md`), checked on the source:
//! which layer may `use` which, pure codec files free of tokio and hyper, and a `//!` doc
//! on every module.

use std::fs;
use std::path::{Path, PathBuf};

/// Every top-level module of `src/` and the modules it may use (`crate::<module>`).
/// `limits` is a leaf every layer may use (token buckets, per-address tables, limit hits),
/// like a library; `golden` is a tool over the whole server (`switchboard test`).
const ALLOWED: &[(&str, &[&str])] = &[
    ("limits", &[]),
    ("engineio", &["limits"]),
    ("socketio", &["engineio", "limits"]),
    ("adapter", &["socketio", "engineio", "limits"]),
    ("routing", &["limits"]),
    ("backend", &["routing", "limits"]),
    ("auth", &["routing", "limits", "backend"]),
    ("scripting", &["routing", "limits"]),
    (
        "app",
        &[
            "socketio",
            "adapter",
            "routing",
            "scripting",
            "engineio",
            "auth",
            "backend",
            "limits",
        ],
    ),
    ("server", &["app", "engineio", "routing", "limits"]),
    ("golden", &["server", "app", "routing"]),
];

/// Files that must stay pure: no runtime, no HTTP.
const PURE: &[&str] = &[
    "src/engineio/assemble.rs",
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

/// The modules of the crate a file names: `crate::x` paths, grouped imports
/// (`use crate::{x, y::z}`) included.
fn modules_used(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn every_module_of_src_has_its_arrows() {
    let mut listed: Vec<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    listed.sort_unstable();
    let mut found: Vec<String> = fs::read_dir(root().join("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_owned();
            (p.is_dir() || (stem != "lib" && stem != "main")).then_some(stem)
        })
        .collect();
    found.sort_unstable();
    assert_eq!(found, listed, "src/ and ALLOWED must name the same modules");
}

#[test]
fn layers_use_only_what_their_arrows_allow() {
    let mut problems = Vec::new();
    for (layer, allowed) in ALLOWED {
        let dir = root().join("src").join(layer);
        let mut files = Vec::new();
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(root().join("src").join(format!("{layer}.rs")));
        }
        for file in files {
            let text =
                fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for used in modules_used(&text) {
                if used != *layer && !allowed.contains(&used.as_str()) {
                    problems.push(format!("{} uses crate::{used}", file.display()));
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
fn grouped_imports_are_seen() {
    assert_eq!(
        modules_used("use crate::{app::App, routing};\nlet x = crate::server::Server;"),
        vec!["app", "routing", "server"]
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
