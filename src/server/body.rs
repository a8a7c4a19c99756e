//! The response body of every answer: whole (`Full`) for what is built in memory, streamed
//! for files, so a large static file never sits whole in memory per download.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

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
