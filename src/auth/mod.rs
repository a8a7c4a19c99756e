//! IDENTITY — who a client is: signed tokens (JWT) verified against the keys a namespace
//! names, its own or a JWK Set kept fresh in the background, and the auth hook that asks
//! the app's backend. No sockets: the app layer reads the handshake and acts on the verdict.

mod hook;
mod jwks;
mod jwt;

pub use hook::{Hook, HookVerdict, MAX_IN_FLIGHT, request as hook_request};
pub use jwks::{Jwks, JwksStatus, KID_REFETCH_INTERVAL};
pub use jwt::{Refusal, Verified, Verifier};
