//! `[namespaces."X".auth.jwt]` and `[namespaces."X".auth.hook]` as compiled: where the token
//! comes from, what verifies it, what a socket does when it expires, and which backend is
//! asked. Plain data; the `auth` layer verifies and asks.

use std::path::PathBuf;
use std::time::Duration;

/// Longest token accepted, in bytes; a longer one is refused before it is decoded.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A signing algorithm a namespace accepts (JWS `alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// A shared secret (HS*).
    Hmac,
    /// An RSA public key (RS*, PS*).
    Rsa,
    /// An elliptic-curve public key (ES*).
    Ec,
    /// An Ed25519 public key (EdDSA).
    Ed,
}

impl JwtAlgorithm {
    /// Every algorithm, by its JWS name.
    pub const ALL: [(&'static str, JwtAlgorithm); 12] = [
        ("HS256", JwtAlgorithm::HS256),
        ("HS384", JwtAlgorithm::HS384),
        ("HS512", JwtAlgorithm::HS512),
        ("RS256", JwtAlgorithm::RS256),
        ("RS384", JwtAlgorithm::RS384),
        ("RS512", JwtAlgorithm::RS512),
        ("PS256", JwtAlgorithm::PS256),
        ("PS384", JwtAlgorithm::PS384),
        ("PS512", JwtAlgorithm::PS512),
        ("ES256", JwtAlgorithm::ES256),
        ("ES384", JwtAlgorithm::ES384),
        ("EdDSA", JwtAlgorithm::EdDSA),
    ];

    /// The algorithm named `name` (case as in JWS).
    pub fn parse(name: &str) -> Option<JwtAlgorithm> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    /// The kind of key it verifies with.
    pub fn family(self) -> KeyFamily {
        use JwtAlgorithm::*;
        match self {
            HS256 | HS384 | HS512 => KeyFamily::Hmac,
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => KeyFamily::Rsa,
            ES256 | ES384 => KeyFamily::Ec,
            EdDSA => KeyFamily::Ed,
        }
    }
}

/// What verifies a namespace's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKey {
    /// A shared secret (`secret_env`), for HS*.
    Secret(Vec<u8>),
    /// A public key in PEM (`public_key`), for one asymmetric family.
    PublicKey {
        /// The PEM text.
        pem: Vec<u8>,
        /// The file it was read from (watched for reload).
        path: PathBuf,
    },
    /// A JWK Set fetched from `jwks_url`.
    Jwks(String),
}

/// Where a client's token is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `handshake.auth.KEY` (the default, `auth.token`).
    Auth(String),
    /// The handshake's query parameter.
    Query(String),
    /// A request header (lower case); `Bearer ` is taken off.
    Header(String),
}

/// What happens to a socket whose token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExpiry {
    /// Tell it (`expired_event`) and disconnect it from the namespace.
    Disconnect,
    /// Nothing: the token was only checked at connection.
    Ignore,
}

/// `[namespaces."X".auth.jwt]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRule {
    /// The key.
    pub key: JwtKey,
    /// Accepted algorithms; never inferred from the token.
    pub algorithms: Vec<JwtAlgorithm>,
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// Required `aud`, if any.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`. Defaults to 30 s.
    pub leeway: Duration,
    /// Where the token is read. Defaults to `auth.token`.
    pub from: TokenSource,
    /// Defaults to [`OnExpiry::Disconnect`].
    pub on_expiry: OnExpiry,
    /// The event a socket receives before its expiry disconnect. Defaults to `auth:expired`.
    pub expired_event: String,
    /// A client event carrying a new token for the same identity.
    pub refresh_event: Option<String>,
}

/// `[namespaces."X".auth.hook]`: the app's backend decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRule {
    /// Where the decision is asked (POST).
    pub url: String,
    /// Longest wait for the answer. Defaults to 2 s.
    pub timeout: std::time::Duration,
    /// The HMAC-SHA256 key signing each request, if any.
    pub secret: Option<Vec<u8>>,
    /// Request headers passed on (lower case). Defaults to cookie, origin, user-agent.
    pub headers: Vec<String>,
}
