//! `[[static]]` mounts: files under a folder, never anything outside it (no `..`, no encoded
//! dots, no symlink leading out), with Content-Type, index files, HEAD and conditional GET.

use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use futures_util::TryStreamExt;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio_util::io::ReaderStream;

use super::body::{Body, status};
use crate::routing::StaticMount;

/// Bytes read from a file per chunk of a response.
const CHUNK: usize = 64 * 1024;

/// Answer `path` from the first mount that has it; `None` when no mount does.
pub async fn serve(
    mounts: &[StaticMount],
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    for mount in mounts {
        let Some(rest) = strip_mount(path, &mount.mount) else {
            continue;
        };
        let Some(file) = resolve(&mount.dir, rest, mount.index.as_deref()).await else {
            continue;
        };
        return Some(respond(&file, method, headers).await);
    }
    None
}

fn strip_mount<'a>(path: &'a str, mount: &str) -> Option<&'a str> {
    if mount == "/" {
        return Some(path);
    }
    let rest = path.strip_prefix(mount)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The file `rest` names under `dir`, if it exists inside `dir`.
async fn resolve(dir: &Path, rest: &str, index: Option<&str>) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .ok()?;
    let mut relative = PathBuf::new();
    for part in decoded.split('/') {
        if part.is_empty() || part == "." {
            continue;
        }
        if part == ".." || part.contains(['\\', '\0']) {
            return None;
        }
        relative.push(part);
    }
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let root = tokio::fs::canonicalize(dir).await.ok()?;
    let mut candidate = tokio::fs::canonicalize(root.join(&relative)).await.ok()?;
    if !candidate.starts_with(&root) {
        return None;
    }
    if tokio::fs::metadata(&candidate).await.ok()?.is_dir() {
        candidate = tokio::fs::canonicalize(candidate.join(index?)).await.ok()?;
        if !candidate.starts_with(&root) {
            return None;
        }
    }
    tokio::fs::metadata(&candidate)
        .await
        .ok()?
        .is_file()
        .then_some(candidate)
}

async fn respond(file: &Path, method: &Method, request: &HeaderMap) -> Response<Body> {
    let Ok(meta) = tokio::fs::metadata(file).await else {
        return status(StatusCode::NOT_FOUND);
    };
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let stamp = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{:x}-{:x}\"", meta.len(), stamp);
    let last_modified = httpdate::fmt_http_date(modified);

    let fresh = match request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        Some(tags) => tags
            .split(',')
            .map(str::trim)
            .any(|t| t == etag || t == "*" || t.strip_prefix("W/") == Some(&etag)),
        None => request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .zip(httpdate::parse_http_date(&last_modified).ok())
            .is_some_and(|(since, ours)| ours <= since),
    };
    let mut resp = if fresh {
        status(StatusCode::NOT_MODIFIED)
    } else if method == Method::HEAD {
        let mut r = status(StatusCode::OK);
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
        r
    } else {
        // Streamed, a chunk at a time: a download costs one chunk of memory, however large
        // the file, and a client that stops reading holds no more than that.
        match tokio::fs::File::open(file).await {
            Ok(f) => {
                let chunks = ReaderStream::with_capacity(f, CHUNK).map_ok(Frame::data);
                let mut r = Response::new(StreamBody::new(chunks).boxed());
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
                r
            }
            Err(_) => return status(StatusCode::NOT_FOUND),
        }
    };
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file)),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    resp
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_match_whole_segments() {
        assert_eq!(strip_mount("/a/b", "/"), Some("/a/b"));
        assert_eq!(strip_mount("/app/x.js", "/app"), Some("/x.js"));
        assert_eq!(strip_mount("/app", "/app"), Some(""));
        assert_eq!(strip_mount("/apple", "/app"), None);
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type(Path::new("a/index.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("x.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
