//! `[namespaces."NAME".auth]`: static tokens, an auth script, a JWT rule, an auth hook.

use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::super::file::{Node, Reader, get};
use super::super::jwt::{
    HookRule, JwtAlgorithm, JwtKey, JwtRule, KeyFamily, OnExpiry, TokenSource,
};
use super::super::table::AuthRule;
use super::super::units::parse_duration;
use super::Env;
use super::backend::{backend_timeout, http_url, signing_secret};
use super::namespaces::script_ref;

const JWT_KEYS: &[&str] = &[
    "secret_env",
    "public_key",
    "jwks_url",
    "algorithms",
    "issuer",
    "audience",
    "leeway",
    "from",
    "on_expiry",
    "expired_event",
    "refresh_event",
];

/// Shortest HMAC secret accepted: as long as SHA-256's output (RFC 7518 §3.2).
const MIN_SECRET_BYTES: usize = 32;
/// Most clock skew a namespace may allow.
const MAX_LEEWAY: Duration = Duration::from_secs(600);

pub(super) fn compile_auth(
    a: &DeTable<'_>,
    node: &Node<'_>,
    env: &Env<'_>,
    nsp: &str,
    r: &mut Reader,
) -> Option<AuthRule> {
    r.known_keys(
        a,
        &["token", "token_env", "script", "message", "jwt", "hook"],
        &format!("[namespaces.\"{nsp}\".auth]"),
    );
    let mut tokens: Vec<String> = Vec::new();
    let mut empty_token = false;
    if let Some(n) = get(a, "token") {
        let listed = match n.get_ref() {
            DeValue::String(s) => vec![toml::Spanned::new(n.span(), s.to_string())],
            _ => r.strings(n, "token").unwrap_or_default(),
        };
        for token in listed {
            if token.get_ref().is_empty() {
                empty_token = true;
                r.error(
                    token.span(),
                    "an empty token would let in any client that sends an empty token",
                );
            } else {
                tokens.push(token.into_inner());
            }
        }
    }
    if let Some(n) = get(a, "token_env")
        && let Some(var) = r.string(n, "token_env")
    {
        match (env.var)(&var) {
            Some(list) => tokens.extend(list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned)),
            None => r.error(n.span(), format!("environment variable `{var}` is not set; expected a comma-separated list of tokens")),
        }
    }
    let script = get(a, "script").and_then(|n| script_ref(n, "authorize", env, r));
    if let Some(n) = get(a, "script")
        && (get(a, "token").is_some() || get(a, "token_env").is_some())
    {
        r.error(
            n.span(),
            "an auth `script` decides alone: remove `token` and `token_env`, or the script",
        );
    }
    let jwt = get(a, "jwt").and_then(|n| {
        if ["token", "token_env", "script"]
            .iter()
            .any(|k| get(a, k).is_some())
        {
            r.error(
                n.span(),
                "`jwt` decides alone: remove `token`, `token_env` and `script`, or `jwt`",
            );
        }
        let t = r.table(n, "jwt")?;
        compile_jwt(t, n, env, nsp, r)
    });
    let hook = get(a, "hook").and_then(|n| {
        if ["token", "token_env", "script"]
            .iter()
            .any(|k| get(a, k).is_some())
        {
            r.error(
                n.span(),
                "`hook` decides alone (or after `jwt`): remove `token`, `token_env` and `script`, or `hook`",
            );
        }
        let t = r.table(n, "hook")?;
        compile_hook(t, n, env, nsp, r)
    });
    let message = get(a, "message")
        .and_then(|n| r.string(n, "message"))
        .unwrap_or_else(|| "unauthorized".to_owned());
    if tokens.is_empty() && get(a, "token").is_some() && !empty_token {
        r.error(node.span(), "`token` lists no tokens: nobody could connect");
    }
    if ["token", "token_env", "script", "jwt", "hook"]
        .iter()
        .all(|k| get(a, k).is_none())
    {
        r.error(
            node.span(),
            "auth needs `token`, `token_env`, `script`, `jwt` or `hook`",
        );
    }
    Some(AuthRule {
        tokens,
        message,
        script,
        jwt,
        hook,
    })
}

fn compile_jwt(
    t: &DeTable<'_>,
    node: &Node<'_>,
    env: &Env<'_>,
    nsp: &str,
    r: &mut Reader,
) -> Option<JwtRule> {
    let what = format!("[namespaces.\"{nsp}\".auth.jwt]");
    r.known_keys(t, JWT_KEYS, &what);
    let before = r.diagnostics.len();
    let algorithms = match get(t, "algorithms") {
        None => {
            r.error(
                node.span(),
                "`algorithms` is required (e.g. [\"RS256\"]): they are never taken from the token",
            );
            Vec::new()
        }
        Some(n) => algorithms(n, r),
    };
    let keys: Vec<&str> = ["secret_env", "public_key", "jwks_url"]
        .into_iter()
        .filter(|k| get(t, k).is_some())
        .collect();
    if keys.len() != 1 {
        r.error(
            node.span(),
            "give exactly one of `secret_env` (HS*), `public_key` (RS*, PS*, ES*, EdDSA) or `jwks_url`",
        );
        return None;
    }
    let key = match keys[0] {
        "secret_env" => secret(get(t, "secret_env")?, &algorithms, env, r),
        "public_key" => public_key(get(t, "public_key")?, &algorithms, env, r),
        _ => jwks_url(get(t, "jwks_url")?, &algorithms, r),
    };
    let string = |key: &str, r: &mut Reader| {
        let n = get(t, key)?;
        let s = r.string(n, key)?;
        if s.is_empty() {
            r.error(n.span(), format!("`{key}` is empty"));
            return None;
        }
        Some(s)
    };
    let issuer = string("issuer", r);
    let audience = string("audience", r);
    let expired_event = string("expired_event", r).unwrap_or_else(|| "auth:expired".to_owned());
    let refresh_event = string("refresh_event", r);
    let leeway = match get(t, "leeway") {
        None => Some(Duration::from_secs(30)),
        Some(n) => r
            .string(n, "leeway")
            .and_then(|text| match parse_duration(&text) {
                Ok(d) if d > MAX_LEEWAY => {
                    r.error(n.span(), "`leeway` must be at most \"10m\"");
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    r.error(n.span(), e);
                    None
                }
            }),
    };
    let from = match get(t, "from") {
        None => Some(TokenSource::Auth("token".to_owned())),
        Some(n) => token_source(n, r),
    };
    let on_expiry = match get(t, "on_expiry") {
        None => Some(OnExpiry::Disconnect),
        Some(n) => r
            .string(n, "on_expiry")
            .and_then(|text| match text.as_str() {
                "disconnect" => Some(OnExpiry::Disconnect),
                "ignore" => Some(OnExpiry::Ignore),
                other => {
                    r.error(
                        n.span(),
                        format!("`on_expiry` is `{other}`; expected \"disconnect\" or \"ignore\""),
                    );
                    None
                }
            }),
    };
    let (leeway, from, on_expiry) = (leeway?, from?, on_expiry?);
    let key = key?;
    (r.diagnostics.len() == before).then_some(JwtRule {
        key,
        algorithms,
        issuer,
        audience,
        leeway,
        from,
        on_expiry,
        expired_event,
        refresh_event,
    })
}

fn compile_hook(
    t: &DeTable<'_>,
    node: &Node<'_>,
    env: &Env<'_>,
    nsp: &str,
    r: &mut Reader,
) -> Option<HookRule> {
    r.known_keys(
        t,
        &["url", "timeout", "secret_env", "headers"],
        &format!("[namespaces.\"{nsp}\".auth.hook]"),
    );
    let before = r.diagnostics.len();
    let url = match get(t, "url") {
        None => {
            r.error(node.span(), "`url` is required: where the backend decides");
            None
        }
        Some(n) => http_url(n, "url", r),
    };
    let timeout = backend_timeout(get(t, "timeout"), Duration::from_secs(2), r);
    let secret = get(t, "secret_env").and_then(|n| signing_secret(n, env, r));
    let headers = match get(t, "headers") {
        None => vec![
            "cookie".to_owned(),
            "origin".to_owned(),
            "user-agent".to_owned(),
        ],
        Some(n) => {
            let mut out = Vec::new();
            for name in r.strings(n, "headers").unwrap_or_default() {
                match http::HeaderName::from_bytes(name.get_ref().as_bytes()) {
                    Ok(h) => out.push(h.as_str().to_owned()),
                    Err(_) => r.error(
                        name.span(),
                        format!("`{}` is not a header name", name.get_ref()),
                    ),
                }
            }
            out
        }
    };
    if r.diagnostics.len() != before {
        return None;
    }
    Some(HookRule {
        url: url?,
        timeout: timeout?,
        secret,
        headers,
    })
}

fn algorithms(n: &Node<'_>, r: &mut Reader) -> Vec<JwtAlgorithm> {
    let names = r.strings(n, "algorithms").unwrap_or_default();
    if names.is_empty() {
        r.error(n.span(), "`algorithms` lists none");
    }
    let mut out = Vec::new();
    for name in names {
        match JwtAlgorithm::parse(name.get_ref()) {
            Some(alg) if !out.contains(&alg) => out.push(alg),
            Some(_) => {}
            None => {
                let known: Vec<&str> = JwtAlgorithm::ALL.iter().map(|(n, _)| *n).collect();
                r.error(
                    name.span(),
                    format!(
                        "unknown algorithm `{}`; expected one of {}",
                        name.get_ref(),
                        known.join(", ")
                    ),
                );
            }
        }
    }
    out
}

/// The one key family of `algorithms`, or an error: one key cannot verify two families,
/// and mixing them is how HS/RS confusion happens.
fn family(n: &Node<'_>, algorithms: &[JwtAlgorithm], r: &mut Reader) -> Option<KeyFamily> {
    let first = algorithms.first()?.family();
    if algorithms.iter().any(|a| a.family() != first) {
        r.error(
            n.span(),
            "`algorithms` mixes key types (HMAC, RSA, EC, Ed25519); one key verifies one type",
        );
        return None;
    }
    Some(first)
}

fn secret(
    n: &Node<'_>,
    algorithms: &[JwtAlgorithm],
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<JwtKey> {
    let var = r.string(n, "secret_env")?;
    if family(n, algorithms, r).is_some_and(|f| f != KeyFamily::Hmac) {
        r.error(
            n.span(),
            "a secret verifies HS256, HS384 or HS512 only; list those in `algorithms`",
        );
        return None;
    }
    let Some(secret) = (env.var)(&var) else {
        r.error(
            n.span(),
            format!("environment variable `{var}` is not set; expected the HMAC secret"),
        );
        return None;
    };
    if secret.len() < MIN_SECRET_BYTES {
        r.error(
            n.span(),
            format!(
                "the secret in `{var}` has {} bytes; an HMAC secret needs at least {MIN_SECRET_BYTES}",
                secret.len()
            ),
        );
        return None;
    }
    Some(JwtKey::Secret(secret.into_bytes()))
}

fn public_key(
    n: &Node<'_>,
    algorithms: &[JwtAlgorithm],
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<JwtKey> {
    let name = r.string(n, "public_key")?;
    let path = env.base_dir.join(&name);
    let pem = match std::fs::read(&path) {
        Ok(pem) => pem,
        Err(e) => {
            r.error(
                n.span(),
                format!(
                    "cannot read public key `{name}`: {e} (paths are relative to the routes file)"
                ),
            );
            return None;
        }
    };
    let family = family(n, algorithms, r)?;
    let (parsed, kind) = match family {
        KeyFamily::Rsa => (jsonwebtoken::DecodingKey::from_rsa_pem(&pem), "an RSA"),
        KeyFamily::Ec => (jsonwebtoken::DecodingKey::from_ec_pem(&pem), "an EC"),
        KeyFamily::Ed => (jsonwebtoken::DecodingKey::from_ed_pem(&pem), "an Ed25519"),
        KeyFamily::Hmac => {
            r.error(
                n.span(),
                "a public key verifies RS*, PS*, ES* or EdDSA; HS* takes `secret_env`",
            );
            return None;
        }
    };
    if let Err(e) = parsed {
        r.error(
            n.span(),
            format!("`{name}` is not {kind} public key in PEM, as `algorithms` needs ({e})"),
        );
        return None;
    }
    Some(JwtKey::PublicKey { pem, path })
}

fn jwks_url(n: &Node<'_>, algorithms: &[JwtAlgorithm], r: &mut Reader) -> Option<JwtKey> {
    let url = r.string(n, "jwks_url")?;
    if family(n, algorithms, r) == Some(KeyFamily::Hmac) {
        r.error(
            n.span(),
            "a JWKS holds public keys: list RS*, PS*, ES* or EdDSA in `algorithms`",
        );
        return None;
    }
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    if !url.starts_with("https://") && !loopback {
        r.error(
            n.span(),
            "`jwks_url` must be https:// (plain http only to this machine): keys fetched in the clear could be swapped",
        );
        return None;
    }
    Some(JwtKey::Jwks(url))
}

fn token_source(n: &Node<'_>, r: &mut Reader) -> Option<TokenSource> {
    let text = r.string(n, "from")?;
    let source = match text.split_once('.') {
        Some(("auth", key)) if !key.is_empty() => TokenSource::Auth(key.to_owned()),
        Some(("query", key)) if !key.is_empty() => TokenSource::Query(key.to_owned()),
        Some(("header", name))
            if !name.is_empty() && http::HeaderName::from_bytes(name.as_bytes()).is_ok() =>
        {
            TokenSource::Header(name.to_ascii_lowercase())
        }
        _ => {
            r.error(
                n.span(),
                format!(
                    "`from` is `{text}`; expected \"auth.KEY\", \"query.KEY\" or \"header.NAME\" (e.g. \"header.authorization\")"
                ),
            );
            return None;
        }
    };
    Some(source)
}
