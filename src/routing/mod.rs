//! CONFIG → COMPILED ROUTES — routes.toml read, validated and compiled into a
//! [`RouteTable`]; routes resolve events into [`Action`]s. Plain data: no sockets, no tokio.

pub mod action;
pub mod admin_ui;
pub mod api;
pub mod backend;
mod compile;
pub mod diag;
pub mod explain;
mod file;
pub mod jwt;
mod limits;
pub mod schema;
mod table;
pub mod template;
pub mod tls;
pub mod types;
mod units;
pub mod webhooks;
pub mod when;

pub use action::{Action, Actions, Args, HistorySpec, HttpCall, Recipients, Route, ScriptRef};
pub use compile::{Env, compile};
pub use diag::{Diagnostic, Report};
pub use limits::LimitSettings;
pub use table::{
    AuthRule, ClusterSettings, CookieSettings, CorsSettings, NamespaceRoutes, PresenceSettings,
    RecoverySettings, Resolved, RouteTable, ServerSettings, StaticMount, StepOutcome,
};
pub use template::Scope;
pub use units::{parse_duration, parse_size};
