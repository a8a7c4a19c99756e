//! THE APP'S BACKEND — what switchboard asks and tells it over HTTP: the one pooled client,
//! signatures, HTTP route steps (the event goes out, a route comes back). It knows the
//! action vocabulary of routes, never sockets: the app layer performs what comes back.

mod call;
mod http;
mod reply;
mod sign;
mod webhook;

pub use call::{CallError, Caller};
pub use http::{body, client};
pub use reply::{Reply, args as args_from_json, parse as parse_reply, with_binary};
pub use sign::{SIGNATURE_HEADER, signature, signature_now};
pub use webhook::{Webhook, WebhookStats, now_ms};
