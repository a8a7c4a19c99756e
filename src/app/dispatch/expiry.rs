//! A verified token's life on a socket: when it expires (`exp` plus the leeway), the socket
//! is told (`expired_event`) and disconnected from its namespace, unless a refresh
//! (`refresh_event`, a new token for the same `sub`) replaced it in time.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::Core;
use crate::app::metrics::add;
use crate::app::snapshot::Snapshot;
use crate::auth::Refusal;
use crate::engineio::Pending;
use crate::routing::jwt::{JwtRule, OnExpiry};
use crate::socketio::{DisconnectReason, Event, Identity, Socket};

/// Longest single wait: a token valid for years is looked at again daily.
const LONGEST_WAIT: Duration = Duration::from_secs(86_400);

impl Core {
    /// Disconnect `socket` when its token expires, if its namespace says so.
    pub(super) fn watch_expiry(self: &Arc<Self>, socket: &Arc<Socket>, rule: &JwtRule) {
        if rule.on_expiry != OnExpiry::Disconnect || socket.identity().is_none() {
            return;
        }
        let (core, socket, event) = (self.clone(), socket.clone(), rule.expired_event.clone());
        tokio::spawn(async move { core.expire(socket, event).await });
    }

    async fn expire(self: Arc<Self>, socket: Arc<Socket>, event: String) {
        // The deadline is taken on the runtime's clock when the identity is read, so that a
        // refresh moves it and a test can drive it.
        'identity: loop {
            let Some(identity) = socket.identity() else {
                return;
            };
            let deadline = tokio::time::Instant::now()
                + identity
                    .expires
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
            loop {
                if tokio::time::Instant::now() >= deadline {
                    break 'identity;
                }
                let wake = deadline.min(tokio::time::Instant::now() + LONGEST_WAIT);
                tokio::select! {
                    () = socket.left() => return,
                    () = socket.identity_changed() => continue 'identity,
                    () = tokio::time::sleep_until(wake) => {}
                }
            }
        }
        let told = json!({ "message": Refusal::Expired.message() }).to_string();
        let _ = socket.emit(&event, told.as_bytes(), Arc::from([]));
        if socket.disconnect() {
            add(&self.metrics.jwt_expired, 1);
            tracing::info!(ns = socket.nsp(), socket = %socket.id(), "Token expired; socket disconnected");
            if let Some(pending) =
                self.disconnected(&socket, DisconnectReason::ServerNamespaceDisconnect)
            {
                pending.await;
            }
        }
    }

    /// A `refresh_event`: a new token for the same identity. The ack says whether it was
    /// taken (`{"exp":…,"ok":true}`) or why not (`{"error":…,"ok":false}`); a refused
    /// refresh leaves the socket as it was.
    pub(super) fn refresh(
        &self,
        snapshot: &Snapshot,
        socket: &Arc<Socket>,
        event: &Event,
    ) -> Option<Pending> {
        let verdict = self.verify_refresh(snapshot, socket, event);
        let answer = match &verdict {
            Ok(identity) => {
                let exp = identity
                    .expires
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                socket.set_identity(identity.clone());
                add(&self.metrics.jwt_refreshes, 1);
                json!({ "ok": true, "exp": exp })
            }
            Err(why) => {
                self.metrics.jwt_refused(*why);
                json!({ "ok": false, "error": why.message() })
            }
        };
        if let Some(id) = event.id {
            let _ = socket.ack(id, answer.to_string().as_bytes(), Arc::from([]));
        }
        None
    }

    fn verify_refresh(
        &self,
        snapshot: &Snapshot,
        socket: &Socket,
        event: &Event,
    ) -> Result<Identity, Refusal> {
        let verifier = snapshot
            .verifiers
            .get(socket.nsp())
            .ok_or(Refusal::Unavailable)?;
        let token = refresh_token(&event.args).ok_or(Refusal::Missing)?;
        let verified = verifier.verify(&token)?;
        let before = socket.claims();
        let sub_before = before.as_ref().and_then(|c| c.get("sub"));
        if verified.claims.get("sub") != sub_before {
            // Another identity needs another connection.
            return Err(Refusal::Invalid);
        }
        Ok(Identity {
            claims: verified.claims,
            expires: verified.expires,
        })
    }
}

/// The new token: the first argument, a string or `{"token": "…"}`.
fn refresh_token(args: &[u8]) -> Option<String> {
    let mut text = Vec::with_capacity(args.len() + 2);
    text.push(b'[');
    text.extend_from_slice(args);
    text.push(b']');
    let values: Vec<serde_json::Value> = serde_json::from_slice(&text).ok()?;
    match values.first()? {
        serde_json::Value::String(token) => Some(token.clone()),
        serde_json::Value::Object(map) => map.get("token")?.as_str().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_token_is_the_first_argument_or_its_token_field() {
        assert_eq!(refresh_token(br#""abc""#).as_deref(), Some("abc"));
        assert_eq!(
            refresh_token(br#"{"token":"abc"},1"#).as_deref(),
            Some("abc")
        );
        assert_eq!(refresh_token(br#"1"#), None);
        assert_eq!(refresh_token(b""), None);
        assert_eq!(refresh_token(br#"{"token":1}"#), None);
    }
}
