//! An HTTP route step's call: the event, as JSON, POSTed to the step's URL (signed when
//! `[backend] secret_env` is set), and the answer read as a route. At most
//! `max_in_flight` calls wait at once, over every route.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::reply::{Reply, parse};
use super::sign::{SIGNATURE_HEADER, signature_now};
use crate::routing::HttpCall;
use crate::routing::backend::BackendSettings;

/// Largest answer read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why a call gave no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// `max_in_flight` calls were already waiting.
    Busy,
    /// No answer within the step's timeout.
    Timeout,
    /// The backend could not be reached.
    Unreachable(String),
    /// It answered with a status other than 2xx.
    Status(u16),
    /// Its answer is not a route.
    Invalid(String),
}

impl CallError {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            CallError::Busy => "busy",
            CallError::Timeout => "timeout",
            CallError::Unreachable(_) => "unreachable",
            CallError::Status(_) => "status",
            CallError::Invalid(_) => "invalid",
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Busy => write!(f, "too many backend calls waiting"),
            CallError::Timeout => write!(f, "no answer in time"),
            CallError::Unreachable(e) => write!(f, "unreachable: {e}"),
            CallError::Status(s) => write!(f, "answered {s}"),
            CallError::Invalid(e) => write!(f, "the answer is not a route: {e}"),
        }
    }
}

/// Makes HTTP route calls under one `[backend]`.
#[derive(Debug)]
pub struct Caller {
    secret: Option<Vec<u8>>,
    in_flight: Arc<Semaphore>,
}

impl Caller {
    /// A caller for `settings`.
    pub fn new(settings: &BackendSettings) -> Caller {
        Caller {
            secret: settings.secret.clone(),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
        }
    }

    /// POST `body` (the event as JSON) for `call`, and read the route that comes back for
    /// `event`.
    pub async fn call(
        &self,
        call: &HttpCall,
        event: &str,
        body: Vec<u8>,
    ) -> Result<Reply, CallError> {
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            return Err(CallError::Busy);
        };
        let exchange = async {
            let mut request = super::client()
                .post(&call.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            if let Some(secret) = &self.secret {
                request = request.header(SIGNATURE_HEADER, signature_now(secret, &body));
            }
            let mut response = request
                .body(body)
                .send()
                .await
                .map_err(|e| CallError::Unreachable(without_url(&e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(CallError::Status(status.as_u16()));
            }
            let answer = super::body(&mut response, MAX_ANSWER_BYTES)
                .await
                .map_err(CallError::Invalid)?;
            parse(&answer, event).map_err(CallError::Invalid)
        };
        tokio::time::timeout(call.timeout, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout))
    }
}

/// A reqwest error's text without the URL (the log line names it once).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "").replace(" ()", "");
    }
    text.trim().to_owned()
}
