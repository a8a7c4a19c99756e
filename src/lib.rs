//! switchboard: a Socket.IO server whose routing is configuration.
//!
//! # Layout
//! Data flows one way: bytes in → Engine.IO session → Socket.IO packet → route lookup →
//! actions → encoded once → each recipient's bounded queue → bytes out.
//!
//! - [`engineio`] — TRANSPORT: Engine.IO v4 sessions over long-polling and WebSocket.
//! - `socketio` — PROTOCOL: Socket.IO v5 packets, namespaces, sockets, acks.
//! - `adapter` — FAN-OUT: rooms and broadcasts.
//! - `routing` — CONFIG → COMPILED ROUTES: plain data.
//! - `app` — COMPOSITION: the only layer that sees all others.
//! - `server` — HTTP EDGE: hyper service, static files, accept loop.
//! - `auth` — IDENTITY: JWT verification, pure given its keys; JWK Sets; the auth hook.
//! - `backend` — THE APP'S BACKEND: the HTTP client, signatures, HTTP route steps.
//! - `limits` — PROTECTION: token buckets, per-address tables, limit hits; a leaf every
//!   layer may use.

pub mod adapter;
pub mod app;
pub mod auth;
pub mod backend;
pub mod engineio;
pub mod golden;
pub mod limits;
pub mod routing;
pub mod scripting;
pub mod server;
pub mod socketio;
