//! The socket.io client bundle, served as socket.io's `serveClient` does: the files of the
//! npm package `socket.io-client` (installed at set-up time, never committed), with the
//! package version as ETag and 304 for a matching `If-None-Match`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// The files socket.io serves under its path.
pub const FILES: [&str; 8] = [
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
];

/// The bundle, read into memory once.
#[derive(Debug, Clone)]
pub struct ClientBundle {
    version: String,
    etag: HeaderValue,
    files: HashMap<&'static str, Bytes>,
}

/// Why the bundle could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// No candidate folder holds the package.
    #[error("socket.io-client not found (looked in: {0}); run `npm ci` or pass --client-dir")]
    NotFound(String),
    /// The folder is there but a file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl ClientBundle {
    /// Load from the first of `candidates` that holds the package (a `socket.io-client`
    /// package folder or its `dist` folder).
    pub fn find(candidates: &[PathBuf]) -> Result<ClientBundle, BundleError> {
        for dir in candidates {
            let package = if dir.join("package.json").is_file() {
                dir.clone()
            } else if dir.join("../package.json").is_file() && dir.join("socket.io.js").is_file() {
                dir.join("..")
            } else {
                continue;
            };
            return ClientBundle::load(&package);
        }
        Err(BundleError::NotFound(
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ))
    }

    fn load(package: &Path) -> Result<ClientBundle, BundleError> {
        let read =
            |path: PathBuf| std::fs::read(&path).map_err(|source| BundleError::Io { path, source });
        let manifest: serde_json::Value =
            serde_json::from_slice(&read(package.join("package.json"))?).unwrap_or_default();
        let version = manifest["version"].as_str().unwrap_or("unknown").to_owned();
        let mut files = HashMap::new();
        for name in FILES {
            files.insert(name, Bytes::from(read(package.join("dist").join(name))?));
        }
        let etag = HeaderValue::from_str(&format!("\"{version}\""))
            .unwrap_or(HeaderValue::from_static("\"0\""));
        Ok(ClientBundle {
            version,
            etag,
            files,
        })
    }

    /// The package version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The response for `name`, or `None` if it is not a bundle file.
    pub fn respond(&self, name: &str, request: &HeaderMap) -> Option<Response<Full<Bytes>>> {
        let body = self.files.get(name)?;
        let weak = format!("W/{}", self.etag.to_str().unwrap_or_default());
        let not_modified = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .map(str::trim)
                    .any(|t| t.as_bytes() == self.etag.as_bytes() || t == weak)
            });
        let mut resp = if not_modified {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        } else {
            let mut r = Response::new(Full::new(body.clone()));
            let kind = if name.ends_with(".map") {
                "application/json"
            } else {
                "application/javascript"
            };
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(&format!("{kind}; charset=utf-8")).expect("static header"),
            );
            r
        };
        resp.headers_mut().insert(header::ETAG, self.etag.clone());
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=0"),
        );
        Some(resp)
    }
}
