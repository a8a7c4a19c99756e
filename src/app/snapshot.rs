//! The configuration in force: compiled routes plus the adapter of each namespace, swapped
//! as a whole. Every event loads it once.

use std::collections::HashMap;
use std::sync::Arc;

use crate::adapter::{
    Adapter, ClusterConfig, ClusterMetrics, LocalAdapter, RecoveryWindow, RedisCluster,
    RoomObserver, StreamConfig,
};
use crate::auth::{Hook, Jwks, Verifier};
use crate::backend::Caller;
use crate::routing::jwt::JwtKey;
use crate::routing::{ClusterSettings, RouteTable};
use crate::scripting::ScriptSet;

/// One consistent view of the routes and the namespaces they declare.
#[derive(Debug)]
pub struct Snapshot {
    /// The compiled routes.
    pub routes: RouteTable,
    /// The scripts they name, compiled.
    pub scripts: ScriptSet,
    /// Rooms of each declared namespace. An adapter outlives snapshots: a reload passes the
    /// adapters of namespaces that stay on to the next snapshot.
    pub adapters: HashMap<String, Arc<dyn Adapter>>,
    /// The token verifier of each namespace with a JWT rule.
    pub verifiers: HashMap<String, Arc<Verifier>>,
    /// What makes the HTTP route steps' calls (`[backend]`).
    pub caller: Arc<Caller>,
    /// The auth hook of each namespace with one.
    pub hooks: HashMap<String, Arc<Hook>>,
    /// The JWK Sets the rules name, by URL. Like the adapters they outlive snapshots: a
    /// reload keeps the keys of a URL that stays.
    pub jwks: HashMap<String, Arc<Jwks>>,
    /// The link to the other nodes under `[cluster]`. Like the adapters it outlives
    /// snapshots: a change of `[cluster]` applies at the next restart.
    pub cluster: Option<Arc<RedisCluster>>,
}

impl Snapshot {
    /// A snapshot of `routes`, reusing `previous`'s adapters for namespaces that remain.
    /// `metrics` counts the cluster link, when `routes` has one; new adapters tell
    /// `observer` of room changes.
    pub fn new(
        routes: RouteTable,
        scripts: ScriptSet,
        previous: Option<&Snapshot>,
        metrics: &Arc<ClusterMetrics>,
        observer: &Arc<dyn RoomObserver>,
    ) -> Snapshot {
        let cluster = match previous {
            Some(p) => {
                if routes.cluster != p.routes.cluster {
                    tracing::warn!("`[cluster]` changed; it applies at the next restart");
                }
                p.cluster.clone()
            }
            None => routes
                .cluster
                .as_ref()
                .and_then(|c| start_cluster(c, metrics)),
        };
        let adapters = routes
            .namespaces
            .keys()
            .map(|name| {
                let adapter = previous
                    .and_then(|p| p.adapters.get(name).cloned())
                    .unwrap_or_else(|| match &cluster {
                        Some(cluster) => cluster.adapter(name, observer.clone()),
                        None => Arc::new(LocalAdapter::observed(name, observer.clone()))
                            as Arc<dyn Adapter>,
                    });
                adapter.set_recovery(routes.server.recovery.map(|r| RecoveryWindow {
                    max_disconnection: r.max_disconnection,
                    buffer: r.buffer,
                }));
                (name.clone(), adapter)
            })
            .collect();
        let hooks = routes
            .namespaces
            .iter()
            .filter_map(|(name, ns)| {
                let rule = ns.auth.as_ref()?.hook.clone()?;
                Some((name.clone(), Arc::new(Hook::new(rule))))
            })
            .collect();
        let mut jwks: HashMap<String, Arc<Jwks>> = HashMap::new();
        let mut verifiers = HashMap::new();
        for (name, ns) in &routes.namespaces {
            let Some(rule) = ns.auth.as_ref().and_then(|a| a.jwt.as_ref()) else {
                continue;
            };
            let set = match &rule.key {
                JwtKey::Jwks(url) => Some(
                    jwks.entry(url.clone())
                        .or_insert_with(|| {
                            previous
                                .and_then(|p| p.jwks.get(url).cloned())
                                .unwrap_or_else(|| Jwks::start(url))
                        })
                        .clone(),
                ),
                _ => None,
            };
            if let Some(verifier) = Verifier::new(rule, set) {
                verifiers.insert(name.clone(), Arc::new(verifier));
            }
        }
        let caller = Arc::new(Caller::new(&routes.backend));
        Snapshot {
            caller,
            routes,
            scripts,
            adapters,
            verifiers,
            hooks,
            jwks,
            cluster,
        }
    }
}

fn start_cluster(
    settings: &ClusterSettings,
    metrics: &Arc<ClusterMetrics>,
) -> Option<Arc<RedisCluster>> {
    let config = ClusterConfig {
        url: settings.url.clone(),
        key: settings.key.clone(),
        request_timeout: settings.request_timeout,
        heartbeat: settings.heartbeat,
        stream: settings.streams.as_ref().map(|s| StreamConfig {
            name: s.name.clone(),
            max_len: s.max_len,
        }),
    };
    match RedisCluster::start(config, metrics.clone()) {
        Ok(cluster) => Some(Arc::new(cluster)),
        Err(e) => {
            // The routes compiled, so this is no configuration error: run alone, loudly.
            tracing::error!("Cluster link not started; this node runs alone: {e}");
            None
        }
    }
}
