//! An HTTP backend on 127.0.0.1 for tests of what switchboard asks of one (a JWK Set, an auth
//! hook): its answer, status and delay can change while it runs, and it keeps every request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request the backend received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers.
    pub headers: http::HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Received {
    /// Check that it carries `X-Switchboard-Signature: t=<t>,v1=<HMAC-SHA256 of "<t>.<body>">`
    /// made with `secret`; its timestamp `t`.
    pub fn assert_signed(&self, secret: &str) -> u64 {
        let signature = self.headers["x-switchboard-signature"].to_str().unwrap();
        let t: u64 = signature[2..signature.find(',').unwrap()].parse().unwrap();
        assert_eq!(
            signature,
            switchboard::backend::signature(secret.as_bytes(), t, &self.body)
        );
        t
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    delay: Duration,
}

#[derive(Debug)]
struct State {
    answer: Mutex<Answer>,
    received: Mutex<Vec<Received>>,
    /// While true, answers wait.
    held: tokio::sync::watch::Sender<bool>,
}

/// The running backend.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Backend {
    /// Answer every request with 200 and `body`.
    pub async fn start(body: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(State {
            answer: Mutex::new(Answer {
                status: 200,
                body: body.to_owned(),
                delay: Duration::ZERO,
            }),
            received: Mutex::new(Vec::new()),
            held: tokio::sync::watch::Sender::new(false),
        });
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            state.received.lock().expect("received").push(Received {
                                headers: parts.headers,
                                body,
                            });
                            let (status, body, delay) = {
                                let a = state.answer.lock().expect("answer");
                                (a.status, a.body.clone(), a.delay)
                            };
                            tokio::time::sleep(delay).await;
                            let _ = state.held.subscribe().wait_for(|held| !held).await;
                            let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() =
                                http::StatusCode::from_u16(status).expect("status");
                            response.headers_mut().insert(
                                http::header::CACHE_CONTROL,
                                http::HeaderValue::from_static("max-age=3600"),
                            );
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Backend { addr, state }
    }

    /// Its URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answer `status` with `body` from now on.
    pub fn answer(&self, status: u16, body: &str) {
        let mut a = self.state.answer.lock().expect("answer");
        a.status = status;
        a.body = body.to_owned();
    }

    /// Answer with `status` from now on, the body unchanged (503: an outage).
    pub fn set_status(&self, status: u16) {
        self.state.answer.lock().expect("answer").status = status;
    }

    /// Answer `body` from now on, the status unchanged.
    pub fn set_body(&self, body: &str) {
        self.state.answer.lock().expect("answer").body = body.to_owned();
    }

    /// Wait this long before answering, from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.state.answer.lock().expect("answer").delay = delay;
    }

    /// Hold every answer (received requests wait) until [`Backend::release`].
    pub fn hold(&self) {
        self.state.held.send_replace(true);
    }

    /// Let held answers go.
    pub fn release(&self) {
        self.state.held.send_replace(false);
    }

    /// Requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("received").clone()
    }

    /// How many requests were received.
    pub fn fetches(&self) -> usize {
        self.state.received.lock().expect("received").len()
    }
}
