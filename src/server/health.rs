//! `/healthz`: liveness, with what an operator wants at a glance — the version, the config
//! in force and its reload history, uptime and connection counts.

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::Full;
use serde::Serialize;

use crate::app::{App, ReloadStatus};

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    sessions: usize,
    #[serde(flatten)]
    reload: ReloadStatus,
}

/// The `/healthz` answer: 200 with JSON.
pub(crate) fn healthz(app: &App) -> Response<Full<Bytes>> {
    let health = Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: app.started().elapsed().as_secs(),
        sessions: app.engine().session_count(),
        reload: app.reload_status(),
    };
    let body = serde_json::to_vec(&health).expect("health serializes");
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
