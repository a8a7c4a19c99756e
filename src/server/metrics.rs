//! `/metrics` in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::Full;

use crate::app::App;

/// Escape a label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn value(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    fn counter(&mut self, name: &str, help: &str, value: &AtomicU64) {
        self.head(name, "counter", help);
        self.value(name, "", value.load(Ordering::Relaxed));
    }
}

/// The log's count of lines dropped for a slow reader, once the binary's logging started.
static LOG_LINES_DROPPED: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

/// Report the log lines `counter` counts as dropped (lines a slow reader of the log did not
/// take in time) as `switchboard_log_lines_dropped_total`. The first call wins: the process
/// has one log.
pub fn count_dropped_log_lines(counter: tracing_appender::non_blocking::ErrorCounter) {
    let _ = LOG_LINES_DROPPED.set(counter);
}

/// `url="…"`.
fn url_label(url: &str) -> String {
    format!("url=\"{}\"", label(url))
}

/// Render every metric of `app`.
pub(crate) fn render(app: &App) -> Response<Full<Bytes>> {
    let m = app.metrics();
    let snapshot = app.snapshot();
    let mut out = Out(String::with_capacity(4096));

    out.head(
        "switchboard_sockets",
        "gauge",
        "Sockets connected, by namespace.",
    );
    let mut namespaces: Vec<_> = snapshot.adapters.iter().collect();
    namespaces.sort_by(|a, b| a.0.cmp(b.0));
    for (ns, adapter) in namespaces {
        out.value(
            "switchboard_sockets",
            &format!("namespace=\"{}\"", label(ns)),
            adapter.socket_count(),
        );
    }
    let (polling, websocket) = app.engine().sessions_by_transport();
    out.head(
        "switchboard_sessions",
        "gauge",
        "Engine.IO sessions, by transport.",
    );
    out.value("switchboard_sessions", "transport=\"polling\"", polling);
    out.value("switchboard_sessions", "transport=\"websocket\"", websocket);

    out.head(
        "switchboard_events_received_total",
        "counter",
        "Events received, by namespace and event (events without a route of their own count as _other).",
    );
    for (ns, event, n) in m.events() {
        out.value(
            "switchboard_events_received_total",
            &format!("namespace=\"{}\",event=\"{}\"", label(&ns), label(&event)),
            n,
        );
    }
    if let Some(dropped) = LOG_LINES_DROPPED.get() {
        out.head(
            "switchboard_log_lines_dropped_total",
            "counter",
            "Log lines dropped because the reader of stderr fell behind.",
        );
        out.value(
            "switchboard_log_lines_dropped_total",
            "",
            dropped.dropped_lines(),
        );
    }
    out.counter(
        "switchboard_deliveries_total",
        "Packets queued for a recipient.",
        &m.deliveries,
    );
    out.head(
        "switchboard_drops_total",
        "counter",
        "Packets not queued, by reason.",
    );
    out.value(
        "switchboard_drops_total",
        "reason=\"closed\"",
        m.drops_closed.load(Ordering::Relaxed),
    );
    out.value(
        "switchboard_drops_total",
        "reason=\"queue_full\"",
        m.drops_queue_full.load(Ordering::Relaxed),
    );
    out.value(
        "switchboard_drops_total",
        "reason=\"volatile\"",
        m.drops_volatile.load(Ordering::Relaxed),
    );
    out.head(
        "switchboard_session_closes_total",
        "counter",
        "Engine.IO sessions ended, by reason (slow: queue over queue_bytes, or a write stalled past write_timeout).",
    );
    for (reason, n) in app.engine().stats().closes() {
        out.value(
            "switchboard_session_closes_total",
            &format!("reason=\"{reason}\""),
            n,
        );
    }
    out.head(
        "switchboard_limit_hits_total",
        "counter",
        "Times a client ran into a limit, by the key that sets it.",
    );
    for limit in crate::limits::Limit::ALL {
        out.value(
            "switchboard_limit_hits_total",
            &format!("limit=\"{limit}\""),
            app.hits().count(limit),
        );
    }
    out.counter("switchboard_acks_total", "Acks sent to clients.", &m.acks);
    out.counter(
        "switchboard_connections_total",
        "Sockets that joined a namespace.",
        &m.connections,
    );
    out.counter(
        "switchboard_disconnections_total",
        "Sockets that left a namespace.",
        &m.disconnections,
    );
    out.counter(
        "switchboard_auth_refusals_total",
        "CONNECTs refused by auth.",
        &m.auth_refusals,
    );
    out.head(
        "switchboard_jwt_refusals_total",
        "counter",
        "Tokens refused by a namespace's JWT rule (at CONNECT or in a refresh), by reason.",
    );
    for (reason, n) in m.jwt_refusals() {
        out.value(
            "switchboard_jwt_refusals_total",
            &format!("reason=\"{reason}\""),
            n,
        );
    }
    out.head(
        "switchboard_auth_hook_calls_total",
        "counter",
        "Calls of namespaces' auth hooks, by outcome (unavailable: timeout, error, bad answer, too many at once).",
    );
    for (outcome, n) in m.hook_calls() {
        out.value(
            "switchboard_auth_hook_calls_total",
            &format!("outcome=\"{outcome}\""),
            n,
        );
    }
    out.head(
        "switchboard_http_route_calls_total",
        "counter",
        "HTTP route step calls to the backend, by namespace, event and outcome (ok, busy, timeout, unreachable, status, invalid).",
    );
    for (ns, event, outcome, n) in m.http_calls() {
        out.value(
            "switchboard_http_route_calls_total",
            &format!(
                "namespace=\"{}\",event=\"{}\",outcome=\"{outcome}\"",
                label(&ns),
                label(&event)
            ),
            n,
        );
    }
    out.head(
        "switchboard_api_requests_total",
        "counter",
        "Server API requests, by endpoint and HTTP status.",
    );
    for (endpoint, status, n) in m.api_requests() {
        out.value(
            "switchboard_api_requests_total",
            &format!("endpoint=\"{endpoint}\",status=\"{status}\""),
            n,
        );
    }
    out.counter(
        "switchboard_jwt_expired_total",
        "Sockets disconnected from a namespace because their token expired.",
        &m.jwt_expired,
    );
    out.counter(
        "switchboard_jwt_refreshes_total",
        "Tokens replaced through a namespace's refresh_event.",
        &m.jwt_refreshes,
    );
    let mut sets: Vec<_> = snapshot.jwks.values().map(|s| s.status()).collect();
    sets.sort_by(|a, b| a.url.cmp(&b.url));
    if !sets.is_empty() {
        out.head(
            "switchboard_jwks_up",
            "gauge",
            "Whether the last fetch of a JWK Set succeeded (its keys are kept either way).",
        );
        for set in &sets {
            out.value(
                "switchboard_jwks_up",
                &url_label(&set.url),
                u8::from(set.up),
            );
        }
        out.head("switchboard_jwks_keys", "gauge", "Keys held of a JWK Set.");
        for set in &sets {
            out.value("switchboard_jwks_keys", &url_label(&set.url), set.keys);
        }
        out.head(
            "switchboard_jwks_fetches_total",
            "counter",
            "Fetches of a JWK Set, by outcome.",
        );
        for set in &sets {
            let url = url_label(&set.url);
            out.value(
                "switchboard_jwks_fetches_total",
                &format!("{url},outcome=\"ok\""),
                set.fetches,
            );
            out.value(
                "switchboard_jwks_fetches_total",
                &format!("{url},outcome=\"failed\""),
                set.failures,
            );
        }
    }
    webhooks(&mut out, app);
    out.counter(
        "switchboard_invalid_namespace_total",
        "CONNECTs to a namespace that does not exist.",
        &m.invalid_namespaces,
    );
    out.counter(
        "switchboard_invalid_events_total",
        "Events refused because their arguments did not satisfy their route's schema.",
        &m.invalid_events,
    );
    out.counter(
        "switchboard_script_calls_total",
        "Script handler calls.",
        &m.script_calls,
    );
    out.counter(
        "switchboard_script_errors_total",
        "Script handler calls that failed.",
        &m.script_errors,
    );
    out.head(
        "switchboard_scripts_running",
        "gauge",
        "Script handler calls running now (on the script threads).",
    );
    out.value(
        "switchboard_scripts_running",
        "",
        m.scripts_running.load(Ordering::Relaxed),
    );
    out.head(
        "switchboard_script_seconds_total",
        "counter",
        "Time spent in script handlers.",
    );
    out.value(
        "switchboard_script_seconds_total",
        "",
        m.script_nanos.load(Ordering::Relaxed) as f64 / 1e9,
    );
    let reload = app.reload_status();
    out.head(
        "switchboard_reloads_total",
        "counter",
        "Reloads of the routes file, by outcome.",
    );
    out.value(
        "switchboard_reloads_total",
        "outcome=\"applied\"",
        reload.reloads,
    );
    out.value(
        "switchboard_reloads_total",
        "outcome=\"refused\"",
        reload.reload_failures,
    );
    if snapshot.cluster.is_some() {
        let c = &m.cluster;
        out.head(
            "switchboard_cluster_connected",
            "gauge",
            "1 while subscribed to the cluster's Redis, else 0.",
        );
        out.value(
            "switchboard_cluster_connected",
            "",
            c.connected.load(Ordering::Relaxed),
        );
        out.counter(
            "switchboard_cluster_redis_outages_total",
            "Times the Redis link was lost or could not be made (local delivery continued).",
            &c.outages,
        );
        out.counter(
            "switchboard_cluster_published_total",
            "Broadcasts and responses published to the other nodes.",
            &c.published,
        );
        out.counter(
            "switchboard_cluster_publish_dropped_total",
            "Messages for the other nodes dropped: Redis unreachable or the queue full.",
            &c.publish_dropped,
        );
        out.counter(
            "switchboard_cluster_received_total",
            "Broadcasts received from other nodes and emitters.",
            &c.received,
        );
        out.counter(
            "switchboard_cluster_deliveries_total",
            "Packets queued for this node's sockets by other nodes' broadcasts.",
            &c.remote_deliveries,
        );
        out.counter(
            "switchboard_cluster_offset_deliveries_total",
            "Packets of this node's own broadcasts queued once Redis gave their offset (redis-streams with recovery).",
            &c.offset_deliveries,
        );
        out.head(
            "switchboard_cluster_remote_nodes",
            "gauge",
            "Other switchboard nodes heard from within three heartbeats, whose rooms this node knows.",
        );
        out.value(
            "switchboard_cluster_remote_nodes",
            "",
            c.remote_nodes.load(Ordering::Relaxed),
        );
        out.head(
            "switchboard_cluster_remote_members",
            "gauge",
            "Room memberships of other switchboard nodes' sockets, as last heard.",
        );
        out.value(
            "switchboard_cluster_remote_members",
            "",
            c.remote_members.load(Ordering::Relaxed),
        );
        out.counter(
            "switchboard_cluster_remote_members_refused_total",
            "Other nodes' room joins not kept: the bound on memberships held was reached.",
            &c.remote_members_refused,
        );
        out.counter(
            "switchboard_cluster_history_heard_total",
            "Messages other nodes kept for rooms (history), added here as they were published.",
            &c.history_heard,
        );
        out.counter(
            "switchboard_cluster_history_read_total",
            "Kept messages read from Redis, at start and after an outage.",
            &c.history_read,
        );
        out.counter(
            "switchboard_cluster_requests_total",
            "Requests of other nodes (fetchSockets, socketsJoin, …) served.",
            &c.requests,
        );
        out.counter(
            "switchboard_cluster_requests_dropped_total",
            "Requests of other nodes dropped because enough were being served.",
            &c.requests_dropped,
        );
    }
    let stats = app.engine().stats();
    out.counter(
        "switchboard_received_bytes_total",
        "Bytes received from clients.",
        &stats.bytes_in,
    );
    out.counter(
        "switchboard_sent_bytes_total",
        "Bytes sent to clients.",
        &stats.bytes_out,
    );
    out.head(
        "switchboard_polls_waiting",
        "gauge",
        "Long-poll requests waiting for packets.",
    );
    out.value(
        "switchboard_polls_waiting",
        "",
        stats
            .polls_waiting
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    out.head(
        "switchboard_uptime_seconds",
        "gauge",
        "Seconds since start.",
    );
    out.value(
        "switchboard_uptime_seconds",
        "",
        app.started().elapsed().as_secs(),
    );

    let mut resp = Response::new(Full::new(Bytes::from(out.0)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// The `[[webhooks]]` metrics, labelled by URL.
fn webhooks(out: &mut Out, app: &App) {
    let hooks = app.webhooks().all();
    if hooks.is_empty() {
        return;
    }
    let rows: Vec<_> = hooks
        .iter()
        .map(|h| (url_label(&h.settings().url), h.stats()))
        .collect();
    out.head(
        "switchboard_webhook_up",
        "gauge",
        "Whether the last batch sent to a webhook was taken.",
    );
    for (url, s) in &rows {
        out.value(
            "switchboard_webhook_up",
            url,
            u8::from(s.up.load(Ordering::Relaxed)),
        );
    }
    out.head(
        "switchboard_webhook_queued",
        "gauge",
        "Events waiting for a webhook, the batch being sent included.",
    );
    for (url, s) in &rows {
        out.value(
            "switchboard_webhook_queued",
            url,
            s.queued.load(Ordering::Relaxed),
        );
    }
    out.head(
        "switchboard_webhook_events_total",
        "counter",
        "Webhook events, by outcome: delivered (taken by the backend) or dropped (queue full).",
    );
    for (url, s) in &rows {
        for (outcome, n) in [("delivered", &s.delivered), ("dropped", &s.dropped)] {
            out.value(
                "switchboard_webhook_events_total",
                &format!("{url},outcome=\"{outcome}\""),
                n.load(Ordering::Relaxed),
            );
        }
    }
    out.head(
        "switchboard_webhook_failures_total",
        "counter",
        "Webhook batches that failed (each try counts); they are retried.",
    );
    for (url, s) in &rows {
        out.value(
            "switchboard_webhook_failures_total",
            url,
            s.failures.load(Ordering::Relaxed),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
