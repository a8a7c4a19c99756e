//! The configuration in force: compiled routes plus the adapter of each namespace, swapped
//! as a whole. Every event loads it once.

use std::collections::HashMap;
use std::sync::Arc;

use crate::adapter::{Adapter, LocalAdapter};
use crate::routing::RouteTable;
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
}

impl Snapshot {
    /// A snapshot of `routes`, reusing `previous`'s adapters for namespaces that remain.
    pub fn new(routes: RouteTable, scripts: ScriptSet, previous: Option<&Snapshot>) -> Snapshot {
        let adapters = routes
            .namespaces
            .keys()
            .map(|name| {
                let adapter = previous
                    .and_then(|p| p.adapters.get(name).cloned())
                    .unwrap_or_else(|| Arc::new(LocalAdapter::new()) as Arc<dyn Adapter>);
                (name.clone(), adapter)
            })
            .collect();
        Snapshot {
            routes,
            scripts,
            adapters,
        }
    }
}
