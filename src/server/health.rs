//! `/healthz` (liveness) and `/readyz` (readiness), with what an operator wants at a
//! glance — the version, the config in force and its reload history, uptime and
//! connection counts.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::app::{App, ReloadStatus};

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    sessions: usize,
    sessions_polling: usize,
    sessions_websocket: usize,
    sockets: std::collections::BTreeMap<String, usize>,
    #[serde(flatten)]
    reload: ReloadStatus,
}

/// What `last_error` says on a port that must not show the refused file's text.
const ERROR_HIDDEN: &str = "reload refused; the server log has the details";

/// The `/healthz` answer: 200 with JSON. `detailed` (the admin port) includes the text of
/// the last reload error, which may quote the routes file; otherwise only that there is one.
pub(crate) fn healthz(app: &App, detailed: bool) -> Response<Full<Bytes>> {
    json(StatusCode::OK, &health(app, "ok", detailed))
}

/// The `/readyz` answer: 200 when taking traffic, 503 once shutdown has begun.
pub(crate) fn readyz(app: &App, ready: bool, detailed: bool) -> Response<Full<Bytes>> {
    if ready {
        json(StatusCode::OK, &health(app, "ready", detailed))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &health(app, "shutting down", detailed),
        )
    }
}

fn health(app: &App, status: &'static str, detailed: bool) -> Health {
    let mut reload = app.reload_status();
    if !detailed && reload.last_error.is_some() {
        reload.last_error = Some(ERROR_HIDDEN.to_owned());
    }
    let snapshot = app.snapshot();
    let (polling, websocket) = app.engine().sessions_by_transport();
    Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: app.started().elapsed().as_secs(),
        sessions: polling + websocket,
        sessions_polling: polling,
        sessions_websocket: websocket,
        sockets: snapshot
            .adapters
            .iter()
            .map(|(ns, a)| (ns.clone(), a.socket_count()))
            .collect(),
        reload,
    }
}

fn json(status: StatusCode, health: &Health) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(health).expect("health serializes");
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
