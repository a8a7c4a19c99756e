//! The auth hook: a CONNECT asks the app's backend. The request is a POST of JSON —
//! `{namespace, auth, query, headers, address, jwt}` — signed when a secret is set
//! (`X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`). A 2xx
//! JSON object admits the client and becomes `socket.data` (its `rooms`, a list of names,
//! are joined at once); 401 or 403 refuses it with the body's `message`; anything else — a
//! timeout, another status, a body that is not an object — refuses it with "auth
//! unavailable" (fail closed). At most [`MAX_IN_FLIGHT`] calls of a hook wait at once.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::backend::{SIGNATURE_HEADER, signature_now};
use crate::routing::jwt::HookRule;

/// Calls of one hook waiting at once; past it a CONNECT is refused as unavailable.
pub const MAX_IN_FLIGHT: usize = 256;
/// Largest answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest refusal message passed on to the client.
const MAX_MESSAGE_CHARS: usize = 200;

/// What the backend decided.
#[derive(Debug, Clone, PartialEq)]
pub enum HookVerdict {
    /// Admitted, with `socket.data` and rooms to join.
    Admit {
        /// The answer without `rooms`; `None` when that leaves nothing.
        data: Option<Value>,
        /// Rooms to join at once.
        rooms: Vec<String>,
    },
    /// Refused with this message.
    Refuse(String),
    /// No decision: why, for logs and metrics (`timeout`, `error`, `status`, `invalid`,
    /// `busy`).
    Unavailable(&'static str),
}

/// One namespace's hook.
#[derive(Debug)]
pub struct Hook {
    rule: HookRule,
    in_flight: Arc<Semaphore>,
}

impl Hook {
    /// A hook for `rule`.
    pub fn new(rule: HookRule) -> Hook {
        Hook {
            rule,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// The request headers it passes on (lower case).
    pub fn headers(&self) -> &[String] {
        &self.rule.headers
    }

    /// Ask the backend about `request` (the JSON body).
    pub async fn ask(&self, request: &Value) -> HookVerdict {
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            return HookVerdict::Unavailable("busy");
        };
        let body = serde_json::to_vec(request).expect("JSON values serialize");
        let mut call = crate::backend::client()
            .post(&self.rule.url)
            .timeout(self.rule.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.rule.secret {
            call = call.header(SIGNATURE_HEADER, signature_now(secret, &body));
        }
        let mut response = match call.body(body).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return HookVerdict::Unavailable("timeout"),
            Err(_) => return HookVerdict::Unavailable("error"),
        };
        let status = response.status();
        let answer = match tokio::time::timeout(
            self.rule.timeout,
            crate::backend::body(&mut response, MAX_ANSWER_BYTES),
        )
        .await
        {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => return HookVerdict::Unavailable("invalid"),
            Err(_) => return HookVerdict::Unavailable("timeout"),
        };
        verdict(status.as_u16(), &answer)
    }
}

/// The verdict of an answer with `status` and `body`.
fn verdict(status: u16, body: &[u8]) -> HookVerdict {
    match status {
        200..=299 => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(mut data)) => {
                let rooms = match data.remove("rooms") {
                    None => Vec::new(),
                    Some(Value::Array(items)) => {
                        let names: Option<Vec<String>> = items
                            .into_iter()
                            .map(|i| i.as_str().map(str::to_owned))
                            .collect();
                        match names {
                            Some(names) => names,
                            None => return HookVerdict::Unavailable("invalid"),
                        }
                    }
                    Some(_) => return HookVerdict::Unavailable("invalid"),
                };
                let data = (!data.is_empty()).then_some(Value::Object(data));
                HookVerdict::Admit { data, rooms }
            }
            _ => HookVerdict::Unavailable("invalid"),
        },
        401 | 403 => {
            let message = serde_json::from_slice::<Map<String, Value>>(body)
                .ok()
                .and_then(|m| m.get("message")?.as_str().map(str::to_owned))
                .map(|m| {
                    m.chars()
                        .filter(|c| !c.is_control())
                        .take(MAX_MESSAGE_CHARS)
                        .collect::<String>()
                })
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "unauthorized".to_owned());
            HookVerdict::Refuse(message)
        }
        _ => HookVerdict::Unavailable("status"),
    }
}

/// The request body for a CONNECT.
pub fn request(
    namespace: &str,
    auth: Value,
    query: Map<String, Value>,
    headers: Map<String, Value>,
    address: String,
    jwt: Option<&Value>,
) -> Value {
    json!({
        "namespace": namespace,
        "auth": auth,
        "query": query,
        "headers": headers,
        "address": address,
        "jwt": jwt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_verdicts() {
        assert_eq!(
            verdict(200, br#"{"name":"ann","rooms":["a","b"]}"#),
            HookVerdict::Admit {
                data: Some(json!({"name": "ann"})),
                rooms: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(
            verdict(204, b"{}"),
            HookVerdict::Admit {
                data: None,
                rooms: vec![]
            }
        );
        assert_eq!(verdict(200, b"[1]"), HookVerdict::Unavailable("invalid"));
        assert_eq!(
            verdict(200, br#"{"rooms":[1]}"#),
            HookVerdict::Unavailable("invalid")
        );
        assert_eq!(verdict(200, b""), HookVerdict::Unavailable("invalid"));
        assert_eq!(
            verdict(403, br#"{"message":"banned\nuntil tomorrow"}"#),
            HookVerdict::Refuse("banneduntil tomorrow".into())
        );
        assert_eq!(
            verdict(401, b"nope"),
            HookVerdict::Refuse("unauthorized".into())
        );
        assert_eq!(verdict(500, b"{}"), HookVerdict::Unavailable("status"));
        assert_eq!(verdict(302, b""), HookVerdict::Unavailable("status"));
    }
}
