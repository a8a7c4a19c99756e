//! CORS headers for the Engine.IO endpoint, as the `cors` package does for socket.io.

use http::header::{self, HeaderMap, HeaderValue};

use super::config::Cors;

/// Add the CORS response headers for a request from `origin`.
pub(crate) fn apply(cors: &Cors, origin: Option<&HeaderValue>, out: &mut HeaderMap) {
    let any = cors.origins.iter().any(|o| o == "*");
    let allowed = if any && !cors.credentials {
        Some(HeaderValue::from_static("*"))
    } else {
        origin
            .filter(|o| {
                any || cors
                    .origins
                    .iter()
                    .any(|allowed| o.as_bytes() == allowed.as_bytes())
            })
            .cloned()
    };
    if let Some(value) = allowed {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    if !any || cors.credentials {
        out.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if cors.credentials {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// Add the headers of a preflight (OPTIONS) answer.
pub(crate) fn apply_preflight(cors: &Cors, request: &HeaderMap, out: &mut HeaderMap) {
    apply(cors, request.get(header::ORIGIN), out);
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"),
    );
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        out.append(
            header::VARY,
            HeaderValue::from_static("Access-Control-Request-Headers"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        Cors {
            origins: origins.iter().map(|s| s.to_string()).collect(),
            credentials,
        }
    }

    #[test]
    fn listed_origin_is_echoed_and_others_get_nothing() {
        let c = cors(&["http://localhost:5173"], false);
        let mut out = HeaderMap::new();
        apply(
            &c,
            Some(&HeaderValue::from_static("http://localhost:5173")),
            &mut out,
        );
        assert_eq!(
            out[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://localhost:5173"
        );
        assert_eq!(out[header::VARY], "Origin");

        let mut out = HeaderMap::new();
        apply(
            &c,
            Some(&HeaderValue::from_static("http://evil.example")),
            &mut out,
        );
        assert!(out.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[test]
    fn star_without_credentials_is_a_wildcard() {
        let mut out = HeaderMap::new();
        apply(&cors(&["*"], false), None, &mut out);
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[test]
    fn credentials_reflect_the_origin_and_preflight_lists_methods() {
        let c = cors(&["*"], true);
        let mut req = HeaderMap::new();
        req.insert(header::ORIGIN, HeaderValue::from_static("http://a.test"));
        req.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        let mut out = HeaderMap::new();
        apply_preflight(&c, &req, &mut out);
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://a.test");
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_HEADERS], "content-type");
        assert!(out.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS));
    }
}
