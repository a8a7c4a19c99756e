//! Who may join a namespace: the static tokens, or an auth script — which runs on the
//! script pool, the CONNECT answered once it has decided.

use std::sync::Arc;

use serde_json::value::RawValue;
use subtle::ConstantTimeEq;

use super::Core;
use super::script::FIRST_ATTEMPT_OPERATIONS;
use crate::app::metrics::add;
use crate::app::snapshot::Snapshot;
use crate::auth::Refusal;
use crate::engineio::Handshake;
use crate::limits::Limit;
use crate::routing::jwt::{JwtRule, TokenSource};
use crate::scripting::AuthDecision;
use crate::socketio::{
    Admission, Authorization, ConnectRefusal, Decision, Identity, handshake_value,
};

fn token_matches(auth: Option<&RawValue>, tokens: &[String]) -> bool {
    #[derive(serde::Deserialize)]
    struct Auth {
        token: Option<String>,
    }
    let Some(token) = auth
        .and_then(|a| serde_json::from_str::<Auth>(a.get()).ok())
        .and_then(|a| a.token)
    else {
        return false;
    };
    // Every token is compared, in constant time for equal lengths, so timing does not tell
    // which one nearly matched.
    tokens.iter().fold(false, |found, t| {
        found | bool::from(t.as_bytes().ct_eq(token.as_bytes()))
    })
}

fn refusal(message: String) -> ConnectRefusal {
    ConnectRefusal {
        message,
        data: None,
    }
}

impl Core {
    /// Whether `auth` may join `nsp`, and with what `socket.data` and identity.
    pub(super) fn authorize(
        self: &Arc<Self>,
        nsp: &str,
        auth: Option<&RawValue>,
        handshake: &Handshake,
    ) -> Authorization {
        let snapshot = self.snapshot.load_full();
        let Some(ns) = snapshot.routes.namespace(nsp) else {
            add(&self.metrics.invalid_namespaces, 1);
            return Authorization::Ready(Err(ConnectRefusal::invalid_namespace()));
        };
        let Some(rule) = &ns.auth else {
            return Authorization::Ready(Ok(Admission::default()));
        };
        if let Some(jwt) = &rule.jwt {
            return Authorization::Ready(self.verify_jwt(&snapshot, nsp, jwt, auth, handshake));
        }
        let Some(script) = rule.script.clone() else {
            let decision = if token_matches(auth, &rule.tokens) {
                Ok(Admission::default())
            } else {
                self.refused(nsp, handshake, &rule.message);
                Err(refusal(rule.message.clone()))
            };
            return Authorization::Ready(decision);
        };
        let message = rule.message.clone();
        let value = handshake_value(auth, handshake);
        // As for event handlers: a first attempt here, the script threads when it needs more.
        if let Some(decision) =
            snapshot
                .scripts
                .try_authorize(&script, &value, FIRST_ATTEMPT_OPERATIONS)
        {
            return Authorization::Ready(self.decided(Some(decision), nsp, handshake, message));
        }
        let snapshot_for_script = snapshot.clone();
        let job = self
            .pool
            .run(move || snapshot_for_script.scripts.authorize(&script, &value));
        let (core, nsp, handshake) = (self.clone(), nsp.to_owned(), handshake.clone());
        Authorization::Pending(Box::pin(async move {
            let decision = match job {
                Ok(running) => running.await,
                Err(_) => {
                    core.hits.hit(
                        Limit::ScriptQueue,
                        &handshake.client_ip,
                        &"auth script not run: every script thread busy",
                    );
                    None
                }
            };
            core.decided(decision, &nsp, &handshake, message)
        }))
    }

    /// The namespace's JWT rule on the handshake's token.
    fn verify_jwt(
        &self,
        snapshot: &Snapshot,
        nsp: &str,
        rule: &JwtRule,
        auth: Option<&RawValue>,
        handshake: &Handshake,
    ) -> Decision {
        let verdict = match snapshot.verifiers.get(nsp) {
            None => Err(Refusal::Unavailable),
            Some(verifier) => match token_of(&rule.from, auth, handshake) {
                None => Err(Refusal::Missing),
                Some(token) => verifier.verify(&token),
            },
        };
        match verdict {
            Ok(verified) => Ok(Admission {
                data: None,
                identity: Some(Identity {
                    claims: verified.claims,
                    expires: verified.expires,
                }),
            }),
            Err(why) => {
                self.metrics.jwt_refused(why);
                self.refused(nsp, handshake, why.message());
                Err(refusal(why.message().to_owned()))
            }
        }
    }

    /// What an auth script's decision (`None`: it could not run) means for the socket.
    fn decided(
        &self,
        decision: Option<Result<AuthDecision, crate::scripting::ScriptError>>,
        nsp: &str,
        handshake: &Handshake,
        message: String,
    ) -> Decision {
        let text = match decision {
            Some(Ok(AuthDecision::Allow(data))) => {
                return Ok(Admission {
                    data,
                    identity: None,
                });
            }
            Some(Ok(AuthDecision::Deny(thrown))) => thrown.unwrap_or(message),
            Some(Err(e)) => {
                self.script_failed(&e.path, e.line, &e.message, nsp, "auth");
                message
            }
            None => message,
        };
        self.refused(nsp, handshake, &text);
        Err(refusal(text))
    }

    fn refused(&self, nsp: &str, handshake: &Handshake, message: &str) {
        add(&self.metrics.auth_refusals, 1);
        tracing::info!(ns = nsp, remote_addr = %handshake.remote_addr, message = %message.escape_debug(), "Connection refused");
    }
}

/// The token where `from` says: a string field of the auth payload, a query parameter, or
/// a header (without its `Bearer ` prefix).
pub(super) fn token_of(
    from: &TokenSource,
    auth: Option<&RawValue>,
    handshake: &Handshake,
) -> Option<String> {
    match from {
        TokenSource::Auth(key) => {
            let auth: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(auth?.get()).ok()?;
            auth.get(key)?.as_str().map(str::to_owned)
        }
        TokenSource::Query(key) => handshake.query_value(key).map(str::to_owned),
        TokenSource::Header(name) => {
            let value = handshake.headers.get(name.as_str())?.to_str().ok()?.trim();
            let token = match value.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                _ => value,
            };
            Some(token.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn tokens_match_exactly() {
        let tokens = vec!["123".to_owned(), "abc".to_owned()];
        assert!(token_matches(Some(&raw(r#"{"token":"123"}"#)), &tokens));
        assert!(token_matches(
            Some(&raw(r#"{"token":"abc","x":1}"#)),
            &tokens
        ));
        assert!(!token_matches(Some(&raw(r#"{"token":"12"}"#)), &tokens));
        assert!(!token_matches(Some(&raw(r#"{"token":123}"#)), &tokens));
        assert!(!token_matches(Some(&raw("{}")), &tokens));
        assert!(!token_matches(None, &tokens));
    }
}
