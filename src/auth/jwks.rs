//! A JWK Set fetched over HTTPS and kept: fetched at once in the background (a start never
//! waits for it), refreshed as its `Cache-Control: max-age` says (between a minute and a
//! day), re-fetched at most once per [`KID_REFETCH_INTERVAL`] when a token names a key it
//! does not hold, and kept as it was when a fetch fails — an outage shows in the status,
//! never in the keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Shortest and longest time a fetched set is kept before the next fetch.
const MIN_REFRESH: Duration = Duration::from_secs(60);
const MAX_REFRESH: Duration = Duration::from_secs(86_400);
/// Kept this long when the response says nothing.
const DEFAULT_REFRESH: Duration = Duration::from_secs(900);
/// A fetch that failed is tried again after this, doubling up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// At most one fetch for an unknown `kid` per interval.
pub const KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Longest a fetch may take, and the largest set accepted.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_SET_BYTES: usize = 1024 * 1024;

/// One key of the set.
pub(super) struct Key {
    pub(super) key: DecodingKey,
    /// The key's own `alg`, when it names one: a token must then use it.
    pub(super) alg: Option<Algorithm>,
}

/// The keys, by `kid`; keys without a `kid` under "".
type Keys = HashMap<String, Arc<Key>>;

/// What `/healthz` and `/metrics` show of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksStatus {
    /// The set's URL.
    pub url: String,
    /// Keys held.
    pub keys: usize,
    /// Whether the last fetch succeeded.
    pub up: bool,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<String>,
    /// Fetches that succeeded.
    pub fetches: u64,
    /// Fetches that failed.
    pub failures: u64,
}

#[derive(Debug, Default)]
struct State {
    up: bool,
    last_error: Option<String>,
    fetches: u64,
    failures: u64,
    /// When an unknown `kid` last asked for a fetch, and how many attempts had finished then.
    kid_refetch: Option<(Instant, u64)>,
    /// Whether a fetch is under way (one asked for meanwhile waits for it).
    fetching: bool,
}

/// A JWK Set and the task that keeps it.
pub struct Jwks {
    url: String,
    keys: ArcSwap<Keys>,
    state: Mutex<State>,
    /// Fetch attempts finished so far.
    attempts: watch::Sender<u64>,
    wake: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url)
            .field("keys", &self.keys.load().len())
            .finish_non_exhaustive()
    }
}

impl Drop for Jwks {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Jwks {
    /// Start keeping the set at `url` (on the current runtime).
    pub fn start(url: &str) -> Arc<Jwks> {
        let jwks = Arc::new(Jwks {
            url: url.to_owned(),
            keys: ArcSwap::from_pointee(HashMap::new()),
            state: Mutex::new(State::default()),
            attempts: watch::Sender::new(0),
            wake: Arc::new(tokio::sync::Notify::new()),
            stop: CancellationToken::new(),
        });
        // The task holds the set weakly: it ends when the last snapshot naming it is gone.
        let weak = Arc::downgrade(&jwks);
        let (stop, wake) = (jwks.stop.clone(), jwks.wake.clone());
        tokio::spawn(async move {
            let mut retry = FIRST_RETRY;
            loop {
                let Some(jwks) = weak.upgrade() else { return };
                let wait = match jwks.fetch().await {
                    Ok(keep) => {
                        retry = FIRST_RETRY;
                        keep
                    }
                    Err(()) => {
                        let wait = retry;
                        retry = (retry * 2).min(MAX_RETRY);
                        wait
                    }
                };
                let woken = wake.notified();
                jwks.attempts.send_modify(|n| *n += 1);
                drop(jwks);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                    () = woken => {}
                }
            }
        });
        jwks
    }

    /// The set's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key for a token's `kid` (a token without one may use a set's only key).
    pub(super) fn key(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        let keys = self.keys.load();
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    /// Whether any key is held.
    pub fn has_keys(&self) -> bool {
        !self.keys.load().is_empty()
    }

    /// Ask for a fetch because a token names a key the set lacks (or the set is empty).
    /// `None` when one was asked for less than [`KID_REFETCH_INTERVAL`] ago and is over;
    /// otherwise a future that resolves once the next fetch attempt has finished.
    pub fn refetch(&self) -> Option<impl Future<Output = ()> + use<>> {
        let mut attempts = self.attempts.subscribe();
        let seen = *attempts.borrow_and_update();
        {
            let mut state = self.state.lock().expect("jwks state");
            let now = Instant::now();
            match state.kid_refetch {
                // Asked for recently and already done: its answer stands until the interval ends.
                Some((at, base))
                    if now.duration_since(at) < KID_REFETCH_INTERVAL && seen > base =>
                {
                    return None;
                }
                // Asked for recently and not done yet: wait for the same fetch.
                Some((at, _)) if now.duration_since(at) < KID_REFETCH_INTERVAL => {}
                _ => {
                    state.kid_refetch = Some((now, seen));
                    if !state.fetching {
                        self.wake.notify_one();
                    }
                }
            }
        }
        Some(async move {
            let _ = tokio::time::timeout(FETCH_TIMEOUT, attempts.wait_for(|n| *n > seen)).await;
        })
    }

    /// What the set looks like now.
    pub fn status(&self) -> JwksStatus {
        let state = self.state.lock().expect("jwks state");
        JwksStatus {
            url: self.url.clone(),
            keys: self.keys.load().len(),
            up: state.up,
            last_error: state.last_error.clone(),
            fetches: state.fetches,
            failures: state.failures,
        }
    }

    /// Fetch once; on success, how long to keep the set.
    async fn fetch(&self) -> Result<Duration, ()> {
        self.state.lock().expect("jwks state").fetching = true;
        let fetched = fetch(&self.url).await;
        self.state.lock().expect("jwks state").fetching = false;
        match fetched {
            Ok((keys, keep)) => {
                tracing::debug!(url = %self.url, keys = keys.len(), "JWKS fetched");
                self.keys.store(Arc::new(keys));
                let mut state = self.state.lock().expect("jwks state");
                state.up = true;
                state.last_error = None;
                state.fetches += 1;
                Ok(keep)
            }
            Err(why) => {
                tracing::warn!(url = %self.url, error = %why, "JWKS fetch failed; keeping the last keys");
                let mut state = self.state.lock().expect("jwks state");
                state.up = false;
                state.last_error = Some(why);
                state.failures += 1;
                Err(())
            }
        }
    }
}

async fn fetch(url: &str) -> Result<(Keys, Duration), String> {
    let mut response = crate::backend::client()
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let keep = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age)
        .unwrap_or(DEFAULT_REFRESH)
        .clamp(MIN_REFRESH, MAX_REFRESH);
    let body = crate::backend::body(&mut response, MAX_SET_BYTES).await?;
    Ok((parse(&body)?, keep))
}

/// `max-age=N` of a `Cache-Control` value.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|d| {
        let (name, n) = d.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age").then(|| {
            n.trim()
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs)
        })?
    })
}

/// The signing keys of a JWK Set document; keys it cannot use are skipped.
fn parse(body: &[u8]) -> Result<Keys, String> {
    let set: JwkSet = serde_json::from_slice(body).map_err(|e| format!("not a JWK Set: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        // Public signing keys only: a shared secret has no place in a published set.
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature)
            || matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
        {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok());
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        keys.insert(kid, Arc::new(Key { key, alg }));
    }
    if keys.is_empty() {
        return Err("no usable signing key".to_owned());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(
            max_age("max-age=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn unusable_keys_are_skipped_and_an_empty_set_is_an_error() {
        let set = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
            {"kty":"RSA","use":"enc","kid":"enc","n":"AQAB","e":"AQAB"},
            {"kty":"OKP","crv":"Ed25519","kid":"ed","alg":"EdDSA","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]}"#;
        let keys = parse(set).unwrap();
        assert!(keys.contains_key("ed"));
        assert!(!keys.contains_key("enc"));
        assert!(!keys.contains_key("hmac"));
        assert_eq!(keys["ed"].alg, Some(Algorithm::EdDSA));
        assert!(parse(br#"{"keys":[]}"#).is_err());
        assert!(parse(b"<html>").is_err());
    }
}
