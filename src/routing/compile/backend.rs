//! `[backend]` and what the backend's URLs and waits must be (HTTP route steps, the auth
//! hook).

use std::time::Duration;

use toml::de::DeTable;

use super::super::action::HttpCall;
use super::super::backend::BackendSettings;
use super::super::file::{Node, Reader, get};
use super::super::units::parse_duration;
use super::Env;

/// Longest wait on the backend a step or hook may have.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Shortest signing secret.
pub(super) const MIN_SECRET_BYTES: usize = 16;

pub(super) fn compile_backend(t: &DeTable<'_>, env: &Env<'_>, r: &mut Reader) -> BackendSettings {
    r.known_keys(t, &["secret_env", "max_in_flight"], "[backend]");
    let mut settings = BackendSettings::default();
    if let Some(n) = get(t, "secret_env") {
        settings.secret = signing_secret(n, env, r);
    }
    if let Some(n) = get(t, "max_in_flight") {
        match r.json(n, "max_in_flight").and_then(|v| v.as_u64()) {
            Some(v) if (1..=100_000).contains(&v) => settings.max_in_flight = v as usize,
            _ => r.error(
                n.span(),
                "`max_in_flight` must be a whole number from 1 to 100000",
            ),
        }
    }
    settings
}

/// The secret named by a `secret_env` node: set, and at least [`MIN_SECRET_BYTES`] long.
pub(super) fn signing_secret(n: &Node<'_>, env: &Env<'_>, r: &mut Reader) -> Option<Vec<u8>> {
    let var = r.string(n, "secret_env")?;
    match (env.var)(&var) {
        Some(secret) if secret.len() >= MIN_SECRET_BYTES => Some(secret.into_bytes()),
        Some(secret) => {
            r.error(
                n.span(),
                format!(
                    "the secret in `{var}` has {} bytes; a signing secret needs at least {MIN_SECRET_BYTES}",
                    secret.len()
                ),
            );
            None
        }
        None => {
            r.error(
                n.span(),
                format!("environment variable `{var}` is not set; expected the signing secret"),
            );
            None
        }
    }
}

/// An `http://` or `https://` URL with a host.
pub(super) fn http_url(n: &Node<'_>, key: &str, r: &mut Reader) -> Option<String> {
    let url = r.string(n, key)?;
    let ok = url
        .parse::<http::Uri>()
        .ok()
        .is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
    if ok {
        Some(url)
    } else {
        r.error(
            n.span(),
            format!("`{url}` is not an http:// or https:// URL"),
        );
        None
    }
}

/// A wait on the backend: longer than zero, at most 30 s; `default` when absent.
pub(super) fn backend_timeout(
    n: Option<&Node<'_>>,
    default: Duration,
    r: &mut Reader,
) -> Option<Duration> {
    let Some(n) = n else {
        return Some(default);
    };
    let text = r.string(n, "timeout")?;
    match parse_duration(&text) {
        Ok(d) if d.is_zero() || d > MAX_TIMEOUT => {
            r.error(
                n.span(),
                "`timeout` must be longer than zero and at most \"30s\"",
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            r.error(n.span(), e);
            None
        }
    }
}

/// An HTTP route step: `http = "URL"`, `timeout` (default 5 s).
pub(super) fn http_call(
    n: &Node<'_>,
    timeout: Option<&Node<'_>>,
    r: &mut Reader,
) -> Option<HttpCall> {
    let url = http_url(n, "http", r);
    let timeout = backend_timeout(timeout, Duration::from_secs(5), r);
    Some(HttpCall {
        url: url?,
        timeout: timeout?,
    })
}
