//! `[api]`: the server API a backend pushes through (emit, join, leave, disconnect, and
//! listing sockets and rooms). Plain data.

use crate::limits::Rate;

/// `[api]`, when the file has one.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSettings {
    /// Accepted Bearer keys (`keys_env`, comma-separated).
    pub keys: Vec<String>,
    /// Its own address; `None` serves it on the main port under `/api`.
    pub listen: Option<String>,
    /// Requests accepted, over every key; past it 429. Defaults to 100/s, burst 200;
    /// `None` (`"off"`): no limit.
    pub rate: Option<Rate>,
    /// Largest request body. Defaults to 1 MB.
    pub max_body: usize,
}
