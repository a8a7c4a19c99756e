//! The tools' side of the admin port (`[server] admin_listen`): `switchboard plan`, `explain`
//! and `trace` against the running server instead of files.
//!
//! - `POST /plan`, a routes file as body (compiled from the running routes file's folder):
//!   what a reload to it would do, as JSON `{changes, disconnects, restart, hash}`.
//! - `POST /explain`, JSON `{namespace, event, args, socket_data, rooms}`: the explanation
//!   against the routes in force.
//! - `POST /trace`, JSON `{namespace, event, count, seconds}`: the next `count` (≤ 100) such
//!   events, explained as they are routed, within `seconds` (≤ 60). One trace at a time (409).
//!
//! Only on the admin port: they show configuration.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::Value;

use super::body::{BodyError, json, read_limited};
use crate::app::App;
use crate::routing::explain::Question;

/// Largest body: a routes file, or a question.
const MAX_BODY: usize = 1024 * 1024;
/// Longest wait for a body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest trace.
const MAX_TRACE: Duration = Duration::from_secs(60);

/// The answer to `req` when its path is one of the tools'; `None` otherwise.
pub async fn handle(
    app: &Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Request<Incoming>> {
    let path = req.uri().path().to_owned();
    if !matches!(path.as_str(), "/plan" | "/explain" | "/trace") {
        return Err(req);
    }
    if req.method() != Method::POST {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST only\n".to_owned(),
        ));
    }
    let body = match read_limited(req.into_body(), MAX_BODY, BODY_TIMEOUT).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return Ok(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is over 1 MiB\n".to_owned(),
            ));
        }
        Err(BodyError::TooSlow) => {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                "the body did not arrive in time\n".to_owned(),
            ));
        }
        Err(BodyError::Unreadable) => {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                "the body could not be read\n".to_owned(),
            ));
        }
    };
    Ok(match path.as_str() {
        "/plan" => plan(app, &body),
        "/explain" => explain(app, &body),
        _ => trace(app, &body).await,
    })
}

fn plan(app: &App, body: &[u8]) -> Response<Full<Bytes>> {
    let Ok(source) = std::str::from_utf8(body) else {
        return text(
            StatusCode::BAD_REQUEST,
            "the routes file is not UTF-8\n".to_owned(),
        );
    };
    match app.plan_text(source) {
        Ok(plan) => json(StatusCode::OK, &plan),
        Err(e) => text(StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n")),
    }
}

fn question(body: &[u8]) -> Result<Question, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let string = |key: &str| {
        v[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("`{key}` is required"))
    };
    Ok(Question {
        namespace: string("namespace")?,
        event: string("event")?,
        args: v["args"].as_array().cloned().unwrap_or_default(),
        socket_data: v["socket_data"].clone(),
        rooms: v["rooms"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn explain(app: &App, body: &[u8]) -> Response<Full<Bytes>> {
    let q = match question(body) {
        Ok(q) => q,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    match crate::routing::explain::explain(&app.snapshot().routes, &q) {
        Ok(out) => text(StatusCode::OK, out),
        Err(e) => text(StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n")),
    }
}

async fn trace(app: &App, body: &[u8]) -> Response<Full<Bytes>> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (Some(namespace), Some(event)) = (v["namespace"].as_str(), v["event"].as_str()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "`namespace` and `event` are required\n".to_owned(),
        );
    };
    let count = v["count"].as_u64().unwrap_or(10) as usize;
    let seconds = Duration::from_secs(v["seconds"].as_u64().unwrap_or(30)).min(MAX_TRACE);
    let Some(mut rx) = app.tracer().start(namespace, event, count) else {
        return text(
            StatusCode::CONFLICT,
            "a trace is already running\n".to_owned(),
        );
    };
    let mut out = String::new();
    let deadline = tokio::time::Instant::now() + seconds;
    while let Ok(Some(one)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push_str(&one);
        out.push('\n');
    }
    if out.is_empty() {
        out = format!(
            "no `{event}` in {namespace} within {}s\n",
            seconds.as_secs()
        );
    }
    text(StatusCode::OK, out)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
