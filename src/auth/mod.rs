//! IDENTITY — who a client is: signed tokens (JWT) verified against the keys a namespace
//! names. Pure given its keys: no sockets; the app layer reads the token from the handshake
//! and acts on the verdict.

mod jwt;

pub use jwt::{Refusal, Verified, Verifier};
