//! Verifying a namespace's JWTs: the signature with its key and allowed algorithms only
//! (`alg: none` and a token signed with another family's algorithm are refused), `exp`,
//! `nbf`, `iss` and `aud` with the configured leeway, and a bounded size.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::jwks::Jwks;
use crate::routing::jwt::{JwtAlgorithm, JwtKey, JwtRule, KeyFamily, MAX_TOKEN_BYTES};

/// Why a token was refused. The client sees [`Refusal::message`], never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token where the namespace reads it.
    Missing,
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLarge,
    /// Past `exp` (and the leeway).
    Expired,
    /// Before `nbf` (less the leeway).
    NotYetValid,
    /// Anything else: signature, algorithm, issuer, audience, format.
    Invalid,
    /// Its `kid` names no key of the namespace's JWK Set.
    UnknownKey,
    /// The keys are not at hand (a JWKS not fetched yet).
    Unavailable,
}

impl Refusal {
    /// Every refusal, for metrics.
    pub const ALL: [Refusal; 7] = [
        Refusal::Missing,
        Refusal::TooLarge,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::Invalid,
        Refusal::UnknownKey,
        Refusal::Unavailable,
    ];

    /// The `connect_error` message.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "token missing",
            Refusal::TooLarge | Refusal::Invalid | Refusal::UnknownKey => "invalid token",
            Refusal::Expired => "token expired",
            Refusal::NotYetValid => "token not yet valid",
            Refusal::Unavailable => "auth unavailable",
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::TooLarge => "too_large",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::Invalid => "invalid",
            Refusal::UnknownKey => "unknown_key",
            Refusal::Unavailable => "unavailable",
        }
    }
}

/// A token that passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// Its claims (a JSON object).
    pub claims: Arc<Value>,
    /// When it stops being accepted: `exp` plus the leeway.
    pub expires: SystemTime,
}

impl Verified {
    /// The `sub` claim, if it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }
}

/// Where a namespace's key is.
enum Keys {
    /// Its own (`secret_env`, `public_key`).
    Own(DecodingKey),
    /// A JWK Set, by the token's `kid`.
    Set(Arc<Jwks>),
}

/// Verifies the tokens of one namespace.
pub struct Verifier {
    keys: Keys,
    validation: Validation,
    leeway: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::HS384 => Algorithm::HS384,
        JwtAlgorithm::HS512 => Algorithm::HS512,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

impl Verifier {
    /// A verifier for `rule`; `set` is the kept JWK Set of a `jwks_url` rule. `None` when
    /// the key does not parse (the compiler has checked it) or a set is missing.
    pub fn new(rule: &JwtRule, set: Option<Arc<Jwks>>) -> Option<Verifier> {
        let family = rule.algorithms.first()?.family();
        let keys = match (&rule.key, family) {
            (JwtKey::Secret(secret), KeyFamily::Hmac) => {
                Keys::Own(DecodingKey::from_secret(secret).ok()?)
            }
            (JwtKey::PublicKey { pem, .. }, KeyFamily::Rsa) => {
                Keys::Own(DecodingKey::from_rsa_pem(pem).ok()?)
            }
            (JwtKey::PublicKey { pem, .. }, KeyFamily::Ec) => {
                Keys::Own(DecodingKey::from_ec_pem(pem).ok()?)
            }
            (JwtKey::PublicKey { pem, .. }, KeyFamily::Ed) => {
                Keys::Own(DecodingKey::from_ed_pem(pem).ok()?)
            }
            (JwtKey::Jwks(_), _) => Keys::Set(set?),
            _ => return None,
        };
        let mut validation = Validation::new(algorithm(rule.algorithms[0]));
        validation.algorithms = rule.algorithms.iter().map(|a| algorithm(*a)).collect();
        validation.leeway = rule.leeway.as_secs();
        validation.validate_nbf = true;
        validation.validate_aud = rule.audience.is_some();
        if let Some(iss) = &rule.issuer {
            validation.set_issuer(&[iss]);
        }
        if let Some(aud) = &rule.audience {
            validation.set_audience(&[aud]);
        }
        Some(Verifier {
            keys,
            validation,
            leeway: rule.leeway,
        })
    }

    /// The JWK Set the verifier reads, if it has one.
    pub fn jwks(&self) -> Option<&Arc<Jwks>> {
        match &self.keys {
            Keys::Set(set) => Some(set),
            Keys::Own(_) => None,
        }
    }

    /// Verify `token`.
    pub fn verify(&self, token: &str) -> Result<Verified, Refusal> {
        if token.is_empty() {
            return Err(Refusal::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::TooLarge);
        }
        let set_key;
        let key = match &self.keys {
            Keys::Own(key) => key,
            Keys::Set(set) => {
                let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Invalid)?;
                set_key = match set.key(header.kid.as_deref()) {
                    Some(key) => key,
                    None if set.has_keys() => return Err(Refusal::UnknownKey),
                    None => return Err(Refusal::Unavailable),
                };
                if set_key.alg.is_some_and(|alg| alg != header.alg) {
                    return Err(Refusal::Invalid);
                }
                &set_key.key
            }
        };
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Refusal::Expired,
                ErrorKind::ImmatureSignature => Refusal::NotYetValid,
                _ => Refusal::Invalid,
            })?;
        let exp = data
            .claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(Refusal::Invalid)?;
        let expires = UNIX_EPOCH + Duration::from_secs(exp) + self.leeway;
        Ok(Verified {
            claims: Arc::new(Value::Object(data.claims)),
            expires,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::jwt::{OnExpiry, TokenSource};
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn rule(algorithms: Vec<JwtAlgorithm>) -> JwtRule {
        JwtRule {
            key: JwtKey::Secret(SECRET.to_vec()),
            algorithms,
            issuer: Some("https://login.example".into()),
            audience: Some("chat".into()),
            leeway: Duration::from_secs(30),
            from: TokenSource::Auth("token".into()),
            on_expiry: OnExpiry::Disconnect,
            expired_event: "auth:expired".into(),
            refresh_event: None,
        }
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn sign(alg: Algorithm, claims: Value) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap()
    }

    fn good(extra: Value) -> Value {
        let mut claims = json!({
            "sub": "alice", "iss": "https://login.example", "aud": "chat", "exp": now() + 600
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    }

    #[test]
    fn a_good_token_gives_its_claims_and_expiry() {
        let v = Verifier::new(&rule(vec![JwtAlgorithm::HS256]), None).unwrap();
        let exp = now() + 600;
        let ok = v
            .verify(&sign(
                Algorithm::HS256,
                good(json!({"exp": exp, "org": {"id": 7}})),
            ))
            .unwrap();
        assert_eq!(ok.subject(), Some("alice"));
        assert_eq!(ok.claims["org"]["id"], 7);
        assert_eq!(ok.expires, UNIX_EPOCH + Duration::from_secs(exp + 30));
    }

    #[test]
    fn every_bad_token_is_refused_with_its_reason() {
        let v = Verifier::new(&rule(vec![JwtAlgorithm::HS256]), None).unwrap();
        let cases = [
            (
                sign(Algorithm::HS256, good(json!({"exp": now() - 31}))),
                Refusal::Expired,
            ),
            ("not.a.token".to_owned(), Refusal::Invalid),
            (
                sign(Algorithm::HS256, good(json!({"nbf": now() + 60}))),
                Refusal::NotYetValid,
            ),
            (
                sign(Algorithm::HS256, good(json!({"iss": "https://evil"}))),
                Refusal::Invalid,
            ),
            (
                sign(Algorithm::HS256, good(json!({"aud": "other"}))),
                Refusal::Invalid,
            ),
            (sign(Algorithm::HS512, good(json!({}))), Refusal::Invalid),
            (String::new(), Refusal::Missing),
            ("x".repeat(MAX_TOKEN_BYTES + 1), Refusal::TooLarge),
        ];
        for (token, reason) in cases {
            assert_eq!(v.verify(&token), Err(reason), "{token}");
        }
        // Within the leeway an expired token still passes.
        assert!(
            v.verify(&sign(Algorithm::HS256, good(json!({"exp": now() - 5}))))
                .is_ok()
        );
        // Without `exp` it does not.
        let mut no_exp = good(json!({}));
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            v.verify(&sign(Algorithm::HS256, no_exp)),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn alg_none_and_a_tampered_signature_are_refused() {
        let v = Verifier::new(&rule(vec![JwtAlgorithm::HS256]), None).unwrap();
        let token = sign(Algorithm::HS256, good(json!({})));
        let (head_payload, _) = token.rsplit_once('.').unwrap();
        let (_, payload) = head_payload.split_once('.').unwrap();
        // {"alg":"none","typ":"JWT"}
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(v.verify(&none), Err(Refusal::Invalid));
        let mut tampered = token.clone().into_bytes();
        let at = head_payload.len() + 3;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            v.verify(&String::from_utf8(tampered).unwrap()),
            Err(Refusal::Invalid)
        );
    }
}
