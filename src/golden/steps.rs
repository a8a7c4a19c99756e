//! The steps of a golden case (`steps.txt`), one per line:
//!
//! ```text
//! # comment
//! c1 connect /                      CONNECT to "/" (the first step of a client opens its session,
//!                                   over WebSocket)
//! c1 connect / polling              … opening it over long-polling (`websocket` is the default;
//!                                   the transport is chosen by the first connect only)
//! c1 connect /chat {"token":"123"}  … with an auth payload
//! c2 connect / ?room=lobby          … with handshake query parameters (first connect only)
//! c1 upgrade                        move a polling session to WebSocket (probe, then upgrade)
//! c1 emit / ["chat message","hi"]   an EVENT; {"$binary":"<base64>"} becomes an attachment
//! c1 emit / ["echo",1] ack          … asking for an ack
//! c1 disconnect /chat               leave a namespace
//! c1 send 42{}                      a raw Engine.IO text frame, for malformed input
//! c1 close                          close the connection
//! ```

use std::fmt;

/// One step of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The client acting.
    pub client: String,
    /// What it does.
    pub action: StepAction,
    /// The line as written, echoed in the transcript.
    pub text: String,
}

/// What a client does in a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepAction {
    /// Join a namespace.
    Connect {
        /// The namespace.
        nsp: String,
        /// The auth payload (JSON), if any.
        auth: Option<String>,
        /// Handshake query string, if any.
        query: Option<String>,
        /// The transport chosen, if any: `true` for long-polling, `false` for WebSocket.
        polling: Option<bool>,
    },
    /// Move a polling session to WebSocket.
    Upgrade,
    /// Emit an event.
    Emit {
        /// The namespace.
        nsp: String,
        /// The data array as JSON, with `{"$binary":"…"}` for attachments.
        data: serde_json::Value,
        /// Whether an ack is requested.
        ack: bool,
    },
    /// Leave a namespace.
    Disconnect {
        /// The namespace.
        nsp: String,
    },
    /// Send a raw Engine.IO text frame.
    Send(String),
    /// Close the connection.
    Close,
    /// Apply another routes file of the case, as a hot reload does.
    Reload(String),
}

/// A step line that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "steps.txt:{}: {}", self.line, self.message)
    }
}

/// Parse a whole `steps.txt`.
pub fn parse(text: &str) -> Result<Vec<Step>, StepError> {
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |message: String| StepError {
            line: i + 1,
            message,
        };
        if let Some(file) = line.strip_prefix("reload ") {
            steps.push(Step {
                client: String::new(),
                action: StepAction::Reload(file.trim().to_owned()),
                text: line.to_owned(),
            });
            continue;
        }
        let (client, rest) = line
            .split_once(' ')
            .ok_or_else(|| error("expected `CLIENT ACTION …`".to_owned()))?;
        let (verb, rest) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
        let rest = rest.trim();
        let action = match verb {
            "connect" => parse_connect(rest).map_err(error)?,
            "emit" => parse_emit(rest).map_err(error)?,
            "disconnect" => StepAction::Disconnect {
                nsp: namespace(rest).map_err(error)?,
            },
            "send" if !rest.is_empty() => StepAction::Send(rest.to_owned()),
            "close" if rest.is_empty() => StepAction::Close,
            "upgrade" if rest.is_empty() => StepAction::Upgrade,
            other => {
                return Err(error(format!(
                    "unknown action `{other}`; expected connect, emit, disconnect, send, close or upgrade"
                )));
            }
        };
        steps.push(Step {
            client: client.to_owned(),
            action,
            text: line.to_owned(),
        });
    }
    Ok(steps)
}

fn namespace(word: &str) -> Result<String, String> {
    if word.starts_with('/') && !word.contains(' ') {
        Ok(word.to_owned())
    } else {
        Err(format!(
            "`{word}` is not a namespace; expected one like `/` or `/chat`"
        ))
    }
}

fn parse_connect(rest: &str) -> Result<StepAction, String> {
    let (nsp, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let nsp = namespace(nsp)?;
    let (word, after) = rest
        .trim_start()
        .split_once(' ')
        .unwrap_or((rest.trim_start(), ""));
    let polling = match word {
        "polling" => Some(true),
        "websocket" => Some(false),
        _ => None,
    };
    if polling.is_some() {
        rest = after;
    }
    let mut query = None;
    if let Some(pos) = rest
        .rfind(" ?")
        .map(|p| p + 1)
        .or_else(|| rest.starts_with('?').then_some(0))
    {
        query = Some(rest[pos + 1..].trim().to_owned());
        rest = rest[..pos].trim();
    }
    let auth = if rest.trim().is_empty() {
        None
    } else {
        let value: serde_json::Value =
            serde_json::from_str(rest.trim()).map_err(|e| format!("auth is not JSON: {e}"))?;
        if !value.is_object() {
            return Err("auth must be a JSON object".to_owned());
        }
        Some(value.to_string())
    };
    Ok(StepAction::Connect {
        nsp,
        auth,
        query,
        polling,
    })
}

fn parse_emit(rest: &str) -> Result<StepAction, String> {
    let (nsp, rest) = rest
        .split_once(' ')
        .ok_or("expected `emit NAMESPACE [\"event\", args…] [ack]`")?;
    let nsp = namespace(nsp)?;
    let (json, ack) = match rest.trim().strip_suffix(" ack") {
        Some(json) => (json, true),
        None => (rest.trim(), false),
    };
    let data: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("event data is not JSON: {e}"))?;
    if data.as_array().is_none_or(|a| a.is_empty()) {
        return Err("event data must be a JSON array starting with the event name".to_owned());
    }
    Ok(StepAction::Emit { nsp, data, ack })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_action() {
        let steps = parse(
            "# a comment\n\nc1 connect /\nc2 connect /chat {\"token\":\"1\"} ?room=a&b=c\nc1 emit / [\"x\",1] ack\nc1 disconnect /chat\nc1 send 42{}\nc2 close\nreload next.toml\nc3 connect / polling\nc4 connect /chat websocket {\"token\":\"1\"} ?a=b\nc3 upgrade\n",
        )
        .unwrap();
        assert_eq!(steps.len(), 10);
        assert_eq!(steps[6].action, StepAction::Reload("next.toml".into()));
        assert_eq!(
            steps[0].action,
            StepAction::Connect {
                nsp: "/".into(),
                auth: None,
                query: None,
                polling: None,
            }
        );
        assert_eq!(
            steps[1].action,
            StepAction::Connect {
                nsp: "/chat".into(),
                auth: Some(r#"{"token":"1"}"#.into()),
                query: Some("room=a&b=c".into()),
                polling: None,
            }
        );
        assert_eq!(
            steps[7].action,
            StepAction::Connect {
                nsp: "/".into(),
                auth: None,
                query: None,
                polling: Some(true),
            }
        );
        assert_eq!(
            steps[8].action,
            StepAction::Connect {
                nsp: "/chat".into(),
                auth: Some(r#"{"token":"1"}"#.into()),
                query: Some("a=b".into()),
                polling: Some(false),
            }
        );
        assert_eq!(steps[9].action, StepAction::Upgrade);
        assert_eq!(
            steps[2].action,
            StepAction::Emit {
                nsp: "/".into(),
                data: json!(["x", 1]),
                ack: true
            }
        );
        assert_eq!(
            steps[3].action,
            StepAction::Disconnect {
                nsp: "/chat".into()
            }
        );
        assert_eq!(steps[4].action, StepAction::Send("42{}".into()));
        assert_eq!(steps[5].action, StepAction::Close);
        assert_eq!(steps[2].text, "c1 emit / [\"x\",1] ack");
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("c1 dance\n").unwrap_err().line, 1);
        assert!(
            parse("\nc1 emit / {}\n")
                .unwrap_err()
                .to_string()
                .starts_with("steps.txt:2:")
        );
        assert!(
            parse("c1 connect chat\n")
                .unwrap_err()
                .message
                .contains("not a namespace")
        );
        assert!(
            parse("c1 connect / [1]\n")
                .unwrap_err()
                .message
                .contains("JSON object")
        );
    }
}
