//! The server API over HTTP (`[api]`): Bearer keys compared in constant time, a rate over
//! every key, bodies bounded by `max_body` and read within a deadline, JSON in and out,
//! errors as `{"error": "…"}` with 400, 401, 404, 405, 413 or 429. Each request is logged
//! without its body. What the calls do is `app::api`; the endpoints are documented in
//! `api/openapi.json`, served at `/api/openapi.json`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use super::body::json;
use crate::app::{ApiError, App, Selector};
use crate::limits::TokenBucket;
use crate::routing::api::ApiSettings;

/// The OpenAPI document of these endpoints, kept in the repository.
pub(crate) const OPENAPI: &str = include_str!("../../api/openapi.json");

/// Every endpoint: method and path.
pub(crate) const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/api/emit"),
    ("POST", "/api/join"),
    ("POST", "/api/leave"),
    ("POST", "/api/disconnect"),
    ("GET", "/api/sockets"),
    ("GET", "/api/rooms"),
    ("GET", "/api/openapi.json"),
];

/// Longest a request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most sockets or rooms in one page.
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// The API's rate, over every key.
#[derive(Debug, Default)]
pub(crate) struct ApiRate(Mutex<Option<TokenBucket>>);

impl ApiRate {
    fn allow(&self, settings: &ApiSettings) -> bool {
        let Some(rate) = settings.rate else {
            return true;
        };
        let now = Instant::now();
        self.0
            .lock()
            .expect("api rate lock")
            .get_or_insert_with(|| TokenBucket::new(rate, now))
            .try_take(rate, now)
    }
}

type Answer = Response<Full<Bytes>>;

fn error(status: StatusCode, message: &str) -> Answer {
    let mut r = json(status, &json!({ "error": message }));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// Whether the request carries one of the keys; every key is compared, in constant time.
fn authorized(req: &Request<Incoming>, keys: &[String]) -> bool {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    keys.iter().fold(false, |found, key| {
        found | bool::from(key.as_bytes().ct_eq(given.trim().as_bytes()))
    })
}

/// Serve one API request.
pub(crate) async fn handle(app: &Arc<App>, rate: &ApiRate, req: Request<Incoming>) -> Answer {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = Instant::now();
    let response = route(app, rate, req).await;
    let endpoint = ENDPOINTS
        .iter()
        .find(|(_, p)| *p == path)
        .map_or("other", |(_, p)| *p);
    app.metrics()
        .api_request(endpoint, response.status().as_u16());
    tracing::info!(
        method = %method,
        path = %path.escape_debug(),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "API request"
    );
    response
}

async fn route(app: &Arc<App>, rate: &ApiRate, req: Request<Incoming>) -> Answer {
    let snapshot = app.snapshot();
    let Some(settings) = &snapshot.routes.api else {
        return error(
            StatusCode::NOT_FOUND,
            "no server API: routes.toml has no [api]",
        );
    };
    let path = req.uri().path().to_owned();
    let known: Vec<&str> = ENDPOINTS
        .iter()
        .filter(|(_, p)| *p == path)
        .map(|(m, _)| *m)
        .collect();
    if known.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "no such endpoint (see /api/openapi.json)",
        );
    }
    if !known.contains(&req.method().as_str()) {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("use {}", known.join(", ")),
        );
    }
    if path == "/api/openapi.json" {
        let mut r = Response::new(Full::new(Bytes::from_static(OPENAPI.as_bytes())));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return r;
    }
    if !authorized(&req, &settings.keys) {
        return error(StatusCode::UNAUTHORIZED, "missing or unknown API key");
    }
    if !rate.allow(settings) {
        return error(StatusCode::TOO_MANY_REQUESTS, "too many API requests");
    }
    if req.method() == Method::GET {
        let query = req.uri().query().unwrap_or("").to_owned();
        return list(app, &path, &query).await;
    }
    let body = match read_body(req, settings.max_body).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    // A call may walk every socket of a namespace: not on a reactor thread.
    let app = Arc::clone(app);
    let outcome = tokio::task::spawn_blocking(move || match path.as_str() {
        "/api/emit" => emit(&app, &body),
        "/api/join" => rooms_change(&app, &body, true),
        "/api/leave" => rooms_change(&app, &body, false),
        _ => disconnect(&app, &body),
    })
    .await;
    match outcome {
        Ok(Ok(value)) => json(StatusCode::OK, &value),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "A server API call failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn read_body(req: Request<Incoming>, max: usize) -> Result<Bytes, Answer> {
    use super::body::BodyError;
    super::body::read_limited(req.into_body(), max, BODY_TIMEOUT)
        .await
        .map_err(|e| match e {
            BodyError::TooSlow => error(StatusCode::BAD_REQUEST, "the body did not arrive in time"),
            BodyError::TooLarge => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is over {max} bytes"),
            ),
            BodyError::Unreadable => error(StatusCode::BAD_REQUEST, "the body could not be read"),
        })
}

fn invalid(e: serde_json::Error) -> ApiError {
    ApiError::Invalid(format!("invalid JSON body: {e}"))
}

/// A call's body: who it is about (the [`Selector`]'s keys) and the endpoint's own keys, `T`;
/// any other key is refused.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<(Selector, T), ApiError> {
    let mut own: Map<String, Value> = serde_json::from_slice(body).map_err(invalid)?;
    let who: Map<String, Value> = ["namespace", "rooms", "except", "socket_id"]
        .into_iter()
        .filter_map(|key| Some((key.to_owned(), own.remove(key)?)))
        .collect();
    Ok((
        serde_json::from_value(Value::Object(who)).map_err(invalid)?,
        serde_json::from_value(Value::Object(own)).map_err(invalid)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Emit {
    event: String,
    #[serde(default)]
    args: Vec<Value>,
}

fn emit(app: &App, body: &[u8]) -> Result<Value, ApiError> {
    let (to, e): (Selector, Emit) = parse(body)?;
    let delivered = app.api_emit(&to, &e.event, e.args)?;
    Ok(json!({ "delivered": delivered }))
}

/// One room or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Rooms {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomsChange {
    room: Rooms,
}

fn rooms_change(app: &App, body: &[u8], join: bool) -> Result<Value, ApiError> {
    let (who, c): (Selector, RoomsChange) = parse(body)?;
    let rooms = match c.room {
        Rooms::One(r) => vec![r],
        Rooms::Many(rs) => rs,
    };
    let sockets = app.api_rooms_change(&who, &rooms, join)?;
    Ok(json!({ "sockets": sockets }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Disconnect {
    #[serde(default)]
    close: bool,
}

fn disconnect(app: &App, body: &[u8]) -> Result<Value, ApiError> {
    let (who, d): (Selector, Disconnect) = parse(body)?;
    let sockets = app.api_disconnect(&who, d.close)?;
    Ok(json!({ "sockets": sockets }))
}

/// `GET /api/sockets` and `GET /api/rooms`.
async fn list(app: &App, path: &str, query: &str) -> Answer {
    let mut namespace = None;
    let mut room = None;
    let (mut offset, mut limit) = (0usize, DEFAULT_PAGE);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "namespace" => namespace = Some(v.into_owned()),
            "room" => room = Some(v.into_owned()),
            "offset" => match v.parse() {
                Ok(n) => offset = n,
                Err(_) => return error(StatusCode::BAD_REQUEST, "`offset` is not a number"),
            },
            "limit" => match v.parse() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => limit = n,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("`limit` must be from 1 to {MAX_PAGE}"),
                    );
                }
            },
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown parameter `{other}`"),
                );
            }
        }
    }
    let Some(namespace) = namespace else {
        return error(StatusCode::BAD_REQUEST, "`namespace` is required");
    };
    let outcome = if path == "/api/sockets" {
        let who = Selector {
            namespace,
            rooms: room.into_iter().collect(),
            except: Vec::new(),
            socket_id: None,
        };
        app.api_sockets(&who, offset, limit)
            .await
            .map(|(sockets, total)| json!({ "sockets": sockets, "total": total, "offset": offset, "limit": limit }))
    } else {
        if room.is_some() {
            return error(StatusCode::BAD_REQUEST, "unknown parameter `room`");
        }
        app.api_rooms(&namespace, offset, limit)
            .await
            .map(|(rooms, total)| json!({ "rooms": rooms, "total": total, "offset": offset, "limit": limit }))
    };
    match outcome {
        Ok(value) => json(StatusCode::OK, &value),
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_exactly_the_endpoints() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.to_uppercase(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut served: Vec<(String, String)> = ENDPOINTS
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        served.sort();
        assert_eq!(documented, served);
    }
}
