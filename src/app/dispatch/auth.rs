//! Who may join a namespace: the static tokens, or an auth script — which runs on the
//! script pool, the CONNECT answered once it has decided.

use std::sync::Arc;

use serde_json::value::RawValue;
use subtle::ConstantTimeEq;

use super::Core;
use super::script::FIRST_ATTEMPT_OPERATIONS;
use crate::app::metrics::add;
use crate::app::snapshot::Snapshot;
use crate::auth::{Hook, HookVerdict, Refusal, hook_request};
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
        if rule.jwt.is_some() || rule.hook.is_some() {
            let verified = match &rule.jwt {
                Some(jwt) => self.verify_jwt(&snapshot, nsp, jwt, auth, handshake),
                None => Authorization::Ready(Ok(Admission::default())),
            };
            return match snapshot.hooks.get(nsp) {
                Some(hook) => self.ask_hook(hook.clone(), verified, nsp, auth, handshake),
                None => verified,
            };
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

    /// The namespace's JWT rule on the handshake's token. A token naming a key its JWK
    /// Set lacks (or arriving before the set was first fetched) waits for one re-fetch —
    /// at most one per interval — and is then verified again.
    fn verify_jwt(
        self: &Arc<Self>,
        snapshot: &Snapshot,
        nsp: &str,
        rule: &JwtRule,
        auth: Option<&RawValue>,
        handshake: &Handshake,
    ) -> Authorization {
        let Some(verifier) = snapshot.verifiers.get(nsp).cloned() else {
            return Authorization::Ready(self.verdict(nsp, handshake, Err(Refusal::Unavailable)));
        };
        let Some(token) = token_of(&rule.from, auth, handshake) else {
            return Authorization::Ready(self.verdict(nsp, handshake, Err(Refusal::Missing)));
        };
        let first = verifier.verify(&token);
        let refetch = match (&first, verifier.jwks()) {
            (Err(Refusal::UnknownKey | Refusal::Unavailable), Some(set)) => set.refetch(),
            _ => None,
        };
        let Some(refetched) = refetch else {
            return Authorization::Ready(self.verdict(nsp, handshake, first));
        };
        let (core, nsp, handshake) = (self.clone(), nsp.to_owned(), handshake.clone());
        Authorization::Pending(Box::pin(async move {
            refetched.await;
            core.verdict(&nsp, &handshake, verifier.verify(&token))
        }))
    }

    /// After the token (if any) passed, ask the namespace's hook; its answer decides.
    fn ask_hook(
        self: &Arc<Self>,
        hook: Arc<Hook>,
        verified: Authorization,
        nsp: &str,
        auth: Option<&RawValue>,
        handshake: &Handshake,
    ) -> Authorization {
        let auth = auth
            .and_then(|a| serde_json::from_str(a.get()).ok())
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        let query = handshake
            .query
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let headers = hook
            .headers()
            .iter()
            .filter_map(|name| {
                let value = handshake.headers.get_str(name)?;
                Some((name.clone(), serde_json::Value::String(value.to_owned())))
            })
            .collect();
        let address = handshake.client_ip.to_string();
        let (core, nsp, handshake) = (self.clone(), nsp.to_owned(), handshake.clone());
        Authorization::Pending(Box::pin(async move {
            let admission = match verified {
                Authorization::Ready(decision) => decision,
                Authorization::Pending(decision) => decision.await,
            }?;
            let claims = admission.identity.as_ref().map(|i| &*i.claims);
            let request = hook_request(&nsp, auth, query, headers, address, claims);
            let verdict = hook.ask(&request).await;
            core.metrics.hook_called(&verdict);
            match verdict {
                HookVerdict::Admit { data, rooms } => Ok(Admission {
                    data,
                    rooms,
                    ..admission
                }),
                HookVerdict::Refuse(message) => {
                    core.refused(&nsp, &handshake, &message);
                    Err(refusal(message))
                }
                HookVerdict::Unavailable(why) => {
                    tracing::warn!(ns = %nsp, why, "Auth hook gave no decision; connection refused");
                    core.refused(&nsp, &handshake, "auth unavailable");
                    Err(refusal("auth unavailable".to_owned()))
                }
            }
        }))
    }

    /// What a token's verification means for the socket.
    fn verdict(
        &self,
        nsp: &str,
        handshake: &Handshake,
        verified: Result<crate::auth::Verified, Refusal>,
    ) -> Decision {
        match verified {
            Ok(verified) => Ok(Admission {
                identity: Some(Identity {
                    claims: verified.claims,
                    expires: verified.expires,
                }),
                ..Admission::default()
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
                    ..Admission::default()
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
            let value = handshake.headers.get_str(name)?.trim();
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
