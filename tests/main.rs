//! The integration suite, one binary: a real switchboard server runs in-process on
//! 127.0.0.1:0 and raw Engine.IO / Socket.IO clients check what goes over the wire, byte for
//! byte.

mod api;
mod edge;
mod engine_http;
mod engineio;
mod errors;
mod golden;
mod hook;
mod hostile;
mod http_route;
mod jwks;
mod jwt;
mod ops;
mod ordering;
mod presence;
mod recovery;
mod reload;
mod routing;
mod socketio;
mod support;
mod tidy;
mod webhooks;
