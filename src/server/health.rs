//! `/healthz` (liveness) and `/readyz` (readiness), with what an operator wants at a
//! glance — the version, the config in force and its reload history, uptime and
//! connection counts.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use super::body::json;
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
    /// The JWK Sets the routes name, when they name any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    jwks: Vec<JwksHealth>,
    /// The webhooks, when the routes have any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    webhooks: Vec<WebhookHealth>,
}

/// A webhook at a glance.
#[derive(Serialize)]
struct WebhookHealth {
    /// Its URL without the query (which may hold a token).
    url: String,
    up: bool,
    queued: u64,
    delivered: u64,
    dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

/// A JWK Set at a glance.
#[derive(Serialize)]
struct JwksHealth {
    url: String,
    up: bool,
    keys: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
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
        jwks: {
            let mut sets: Vec<JwksHealth> = snapshot
                .jwks
                .values()
                .map(|set| {
                    let status = set.status();
                    JwksHealth {
                        url: status.url,
                        up: status.up,
                        keys: status.keys,
                        // The admin port says why; the public one only that it failed.
                        last_error: status.last_error.map(|e| {
                            if detailed {
                                e
                            } else {
                                "fetch failed".to_owned()
                            }
                        }),
                    }
                })
                .collect();
            sets.sort_by(|a, b| a.url.cmp(&b.url));
            sets
        },
        webhooks: webhooks(app, detailed),
    }
}

fn webhooks(app: &App, detailed: bool) -> Vec<WebhookHealth> {
    use std::sync::atomic::Ordering::Relaxed;
    app.webhooks()
        .all()
        .iter()
        .map(|hook| {
            let stats = hook.stats();
            let url = hook.settings().url.clone();
            let up = stats.up.load(Relaxed);
            WebhookHealth {
                url: url.split('?').next().unwrap_or_default().to_owned(),
                up,
                queued: stats.queued.load(Relaxed),
                delivered: stats.delivered.load(Relaxed),
                dropped: stats.dropped.load(Relaxed),
                // The admin port says why; the public one only that it fails.
                last_error: (!up).then(|| {
                    let last = stats.last_error.lock().expect("last error lock").clone();
                    match last {
                        Some(e) if detailed => e,
                        _ => "delivery failing".to_owned(),
                    }
                }),
            }
        })
        .collect()
}
