//! Bodies: the response body of every answer — whole (`Full`) for what is built in memory,
//! streamed for files, so a large static file never sits whole in memory per download — JSON
//! answers, and request bodies read within a size and a deadline.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;

/// A response body.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A response built in memory, as a [`Body`].
pub(crate) fn whole(response: Response<Full<Bytes>>) -> Response<Body> {
    response.map(|body| body.map_err(|never| match never {}).boxed())
}

/// An empty response with `code`.
pub(crate) fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = code;
    r
}

/// An empty body.
pub(crate) fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// `value` as a JSON answer with `status`, never cached.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).expect("answers serialize");
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Why a request body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over the size allowed.
    TooLarge,
    /// Not all there by the deadline.
    TooSlow,
    /// The connection failed while it came.
    Unreadable,
}

/// A request body of at most `max` bytes, all arrived within `deadline`: a client that
/// sends slowly or too much costs a bounded buffer and wait.
pub(crate) async fn read_limited(
    body: Incoming,
    max: usize,
    deadline: Duration,
) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(deadline, Limited::new(body, max).collect()).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyError::TooLarge)
        }
        Ok(Err(_)) => Err(BodyError::Unreadable),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}
