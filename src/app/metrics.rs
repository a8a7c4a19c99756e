//! Counters of what the application does, read by `/metrics`. Plain atomics on the message
//! path; the per-event counters live in a sharded map keyed without allocating.

use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use dashmap::DashMap;

use crate::adapter::ClusterMetrics;

/// The label under which events without a route of their own are counted: the number of
/// label values stays bounded by the routes file, whatever clients send.
pub const OTHER_EVENT: &str = "_other";

/// Outcomes of HTTP route step calls, as metric labels.
pub const HTTP_OUTCOMES: [&str; 6] = ["ok", "busy", "timeout", "unreachable", "status", "invalid"];

/// Application counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events received, by namespace and event.
    events: DashMap<String, DashMap<String, AtomicU64>>,
    /// HTTP route step calls, by namespace, event and outcome ([`HTTP_OUTCOMES`]).
    http_calls: DashMap<String, DashMap<String, [AtomicU64; HTTP_OUTCOMES.len()]>>,
    /// Server API requests (`[api]`), by endpoint path (or `other`) and status.
    api_requests: DashMap<(&'static str, u16), AtomicU64>,
    /// Packets queued for a recipient.
    pub deliveries: AtomicU64,
    /// Packets not queued because the recipient was gone.
    pub drops_closed: AtomicU64,
    /// Packets not queued because the recipient's queue was full (it is disconnected).
    pub drops_queue_full: AtomicU64,
    /// Volatile packets not queued because the recipient was behind.
    pub drops_volatile: AtomicU64,
    /// Script calls running now (a gauge).
    pub scripts_running: AtomicU64,
    /// Acks the server sent.
    pub acks: AtomicU64,
    /// CONNECTs refused by auth (not counting unknown namespaces).
    pub auth_refusals: AtomicU64,
    /// CONNECTs refused by a namespace's JWT rule, by reason (`Refusal::ALL`'s order).
    pub jwt_refusals: [AtomicU64; crate::auth::Refusal::ALL.len()],
    /// Auth hook calls, by outcome: admitted, refused, unavailable.
    pub hook_calls: [AtomicU64; 3],
    /// Sockets disconnected because their token expired.
    pub jwt_expired: AtomicU64,
    /// Tokens replaced by a refresh event.
    pub jwt_refreshes: AtomicU64,
    /// CONNECTs to namespaces that do not exist.
    pub invalid_namespaces: AtomicU64,
    /// Events whose arguments did not satisfy their route's `schema` (not routed).
    pub invalid_events: AtomicU64,
    /// Script calls.
    pub script_calls: AtomicU64,
    /// Script calls that failed.
    pub script_errors: AtomicU64,
    /// Time spent in scripts, in nanoseconds.
    pub script_nanos: AtomicU64,
    /// Sockets that joined a namespace.
    pub connections: AtomicU64,
    /// Sockets that left a namespace.
    pub disconnections: AtomicU64,
    /// The cluster link (`[cluster]`): Redis outages, published and received messages.
    pub cluster: Arc<ClusterMetrics>,
}

impl Metrics {
    /// Count an HTTP route step call of event `event` of `ns`; `error` is its failure's
    /// label, `None` when it succeeded.
    pub fn http_call(&self, ns: &str, event: &str, error: Option<&str>) {
        let outcome = error.unwrap_or("ok");
        let i = HTTP_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.http_calls
            .entry(ns.to_owned())
            .or_default()
            .entry(event.to_owned())
            .or_default()[i]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// HTTP route step calls: (namespace, event, outcome, count), sorted.
    pub fn http_calls(&self) -> Vec<(String, String, &'static str, u64)> {
        let mut out = Vec::new();
        for ns in self.http_calls.iter() {
            for ev in ns.value().iter() {
                for (i, n) in ev.value().iter().enumerate() {
                    let n = n.load(Ordering::Relaxed);
                    if n > 0 {
                        out.push((ns.key().clone(), ev.key().clone(), HTTP_OUTCOMES[i], n));
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// Count a server API request to `endpoint` (a fixed path, or `other`) answered `status`.
    pub fn api_request(&self, endpoint: &'static str, status: u16) {
        self.api_requests
            .entry((endpoint, status))
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Server API requests: (endpoint, status, count), sorted.
    pub fn api_requests(&self) -> Vec<(&'static str, u16, u64)> {
        let mut out: Vec<_> = self
            .api_requests
            .iter()
            .map(|e| (e.key().0, e.key().1, e.value().load(Ordering::Relaxed)))
            .collect();
        out.sort();
        out
    }

    /// Count a token refused for `why`.
    pub fn jwt_refused(&self, why: crate::auth::Refusal) {
        if let Some(i) = crate::auth::Refusal::ALL.iter().position(|r| *r == why) {
            self.jwt_refusals[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Count an auth hook's answer.
    pub fn hook_called(&self, verdict: &crate::auth::HookVerdict) {
        let i = match verdict {
            crate::auth::HookVerdict::Admit { .. } => 0,
            crate::auth::HookVerdict::Refuse(_) => 1,
            crate::auth::HookVerdict::Unavailable(_) => 2,
        };
        self.hook_calls[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Auth hook calls, by outcome label.
    pub fn hook_calls(&self) -> [(&'static str, u64); 3] {
        let n = |i: usize| self.hook_calls[i].load(Ordering::Relaxed);
        [("admitted", n(0)), ("refused", n(1)), ("unavailable", n(2))]
    }

    /// Tokens refused, by reason label.
    pub fn jwt_refusals(&self) -> Vec<(&'static str, u64)> {
        crate::auth::Refusal::ALL
            .iter()
            .zip(&self.jwt_refusals)
            .map(|(r, n)| (r.label(), n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Count an event of `ns`; `routed` says whether it has a route of its own.
    pub fn event(&self, ns: &str, event: &str, routed: bool) {
        let name = if routed { event } else { OTHER_EVENT };
        if let Some(events) = self.events.get(ns)
            && let Some(counter) = events.get(name)
        {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.events
            .entry(ns.to_owned())
            .or_default()
            .entry(name.to_owned())
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Events received so far: (namespace, event, count), sorted.
    pub fn events(&self) -> Vec<(String, String, u64)> {
        let mut out: Vec<_> = self
            .events
            .iter()
            .flat_map(|ns| {
                ns.value()
                    .iter()
                    .map(|e| {
                        (
                            ns.key().clone(),
                            e.key().clone(),
                            e.value().load(Ordering::Relaxed),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }
}

impl Metrics {
    /// Count what a delivery did: (queued, full, closed, behind).
    pub fn delivered(&self, (queued, full, closed, behind): (usize, usize, usize, usize)) {
        add(&self.deliveries, queued as u64);
        add(&self.drops_queue_full, full as u64);
        add(&self.drops_closed, closed as u64);
        add(&self.drops_volatile, behind as u64);
    }
}

/// Add `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}
