//! `[admin_ui]`.

use toml::de::DeTable;

use super::super::admin_ui::AdminUiSettings;
use super::super::file::{Node, Reader, get};
use super::Env;

const KEYS: &[&str] = &[
    "namespace",
    "mount",
    "username",
    "password_hash_env",
    "readonly",
];

pub(super) fn compile_admin_ui(
    t: &DeTable<'_>,
    node: &Node<'_>,
    env: &Env<'_>,
    r: &mut Reader,
) -> Option<AdminUiSettings> {
    r.known_keys(t, KEYS, "[admin_ui]");
    let mut ok = true;
    let path = |key: &str, default: &str, r: &mut Reader| match get(t, key) {
        None => Some(default.to_owned()),
        Some(n) => {
            let text = r.string(n, key)?;
            if text.starts_with('/') && !text.contains(['?', '#', ',']) {
                Some(text.trim_end_matches('/').to_owned()).filter(|p| !p.is_empty())
            } else {
                r.error(
                    n.span(),
                    format!("`{text}` is not a path; expected one like \"{default}\""),
                );
                None
            }
        }
    };
    let namespace = path("namespace", "/admin", r);
    let mount = match get(t, "mount") {
        Some(n) if matches!(n.get_ref(), toml::de::DeValue::Boolean(false)) => Some(None),
        _ => path("mount", "/admin-ui", r).map(Some),
    };
    ok &= namespace.is_some() && mount.is_some();
    let username = match get(t, "username") {
        Some(n) => r.string(n, "username").filter(|u| !u.is_empty()),
        None => {
            r.error(
                node.span(),
                "[admin_ui] needs `username` (the UI logs in with basic auth)",
            );
            None
        }
    };
    let password_hash = match get(t, "password_hash_env") {
        None => {
            r.error(
                node.span(),
                "[admin_ui] needs `password_hash_env`: the variable holding the password's bcrypt hash",
            );
            None
        }
        Some(n) => {
            let var = r.string(n, "password_hash_env")?;
            match (env.var)(&var).map(|v| v.trim().to_owned()) {
                Some(hash) if hash.parse::<bcrypt::HashParts>().is_ok() => Some(hash),
                Some(_) => {
                    r.error(
                        n.span(),
                        format!("`{var}` is not a bcrypt hash (like $2b$10$…, from `htpasswd -nbBC 10 USER PASSWORD` or bcryptjs)"),
                    );
                    None
                }
                None => {
                    r.error(n.span(), format!("environment variable `{var}` is not set"));
                    None
                }
            }
        }
    };
    let readonly = match get(t, "readonly") {
        Some(n) => r.boolean(n, "readonly").unwrap_or_else(|| {
            ok = false;
            false
        }),
        None => false,
    };
    Some(AdminUiSettings {
        namespace: namespace?,
        mount: mount?,
        username: username?,
        password_hash: password_hash?,
        readonly,
    })
    .filter(|_| ok)
}
