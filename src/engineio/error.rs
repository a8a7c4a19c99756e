//! Engine.IO request errors and the one place they become HTTP responses.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

/// A request the Engine.IO endpoint refuses. The codes and messages are the reference
/// server's, so clients and tools that read them see the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A handshake over a cap or rate (`[limits]`): 503 with code 4 and the reason, as
    /// engine.io's `allowRequest` answers a refusal with its message.
    #[error("{0}")]
    Busy(&'static str),
    /// A POST body that did not arrive within `body_timeout`.
    #[error("Request timeout")]
    BodyTimeout,
    /// Code 0: the `transport` parameter is missing, unknown or disabled.
    #[error("Transport unknown")]
    UnknownTransport,
    /// Code 1: no session has this `sid`.
    #[error("Session ID unknown")]
    UnknownSid,
    /// Code 2: a handshake that is not a GET.
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    /// Code 3: anything else malformed (transport mismatch, bad upgrade, bad payload…).
    #[error("Bad request")]
    BadRequest,
    /// Code 4: the request was refused by the server's policy.
    #[error("Forbidden")]
    Forbidden,
    /// Code 5: an `EIO` version other than 4.
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
    /// A POST body larger than `max_payload`.
    #[error("Payload too large")]
    PayloadTooLarge,
    /// A second long-poll GET while one is pending; closes the session.
    #[error("Bad request")]
    PollOverlap,
    /// A second POST while one is being read; closes the session (engine.io answers a bare
    /// 400).
    #[error("data request overlap from client")]
    PostOverlap,
}

impl Error {
    /// The protocol's error code, for errors that carry one.
    pub fn code(self) -> Option<u8> {
        Some(match self {
            Error::UnknownTransport => 0,
            Error::UnknownSid => 1,
            Error::BadHandshakeMethod => 2,
            Error::BadRequest => 3,
            Error::Forbidden | Error::Busy(_) => 4,
            Error::UnsupportedProtocolVersion => 5,
            Error::PayloadTooLarge
            | Error::PollOverlap
            | Error::PostOverlap
            | Error::BodyTimeout => return None,
        })
    }

    /// The HTTP status the reference server answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Error::Forbidden => StatusCode::FORBIDDEN,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The response: JSON `{"code":N,"message":"…"}` where the error has a code, else empty.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut builder = Response::builder().status(self.status());
        if let Error::Busy(_) = self {
            builder = builder.header(header::RETRY_AFTER, "1");
        }
        let response = match self.code() {
            Some(code) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(format!(
                    r#"{{"code":{code},"message":"{self}"}}"#
                )))),
            None => builder.body(Full::new(Bytes::new())),
        };
        response.expect("static status and headers are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(e: Error) -> (u16, String) {
        let resp = e.into_response();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn errors_match_the_reference_server() {
        assert_eq!(
            body(Error::UnknownTransport).await,
            (400, r#"{"code":0,"message":"Transport unknown"}"#.into())
        );
        assert_eq!(
            body(Error::UnknownSid).await,
            (400, r#"{"code":1,"message":"Session ID unknown"}"#.into())
        );
        assert_eq!(
            body(Error::BadHandshakeMethod).await,
            (400, r#"{"code":2,"message":"Bad handshake method"}"#.into())
        );
        assert_eq!(
            body(Error::BadRequest).await,
            (400, r#"{"code":3,"message":"Bad request"}"#.into())
        );
        assert_eq!(
            body(Error::Forbidden).await,
            (403, r#"{"code":4,"message":"Forbidden"}"#.into())
        );
        assert_eq!(
            body(Error::UnsupportedProtocolVersion).await,
            (
                400,
                r#"{"code":5,"message":"Unsupported protocol version"}"#.into()
            )
        );
        assert_eq!(body(Error::PayloadTooLarge).await, (413, String::new()));
        assert_eq!(body(Error::PostOverlap).await, (400, String::new()));
        assert_eq!(
            body(Error::Busy("Too many connections")).await,
            (503, r#"{"code":4,"message":"Too many connections"}"#.into())
        );
        assert_eq!(
            Error::Busy("x").into_response().headers()["retry-after"],
            "1"
        );
    }
}
