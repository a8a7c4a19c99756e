//! `[admin_ui]`: the `@socket.io/admin-ui` dashboard — its namespace, its login, where its
//! files are served. Plain data.

/// `[admin_ui]`, when the file has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUiSettings {
    /// The namespace the UI connects to (`namespace`, default `/admin`, as `instrument()`).
    pub namespace: String,
    /// Where the UI's files are served (`mount`, default `/admin-ui`); `None`: not served.
    pub mount: Option<String>,
    /// Basic auth: the user name (`username`).
    pub username: String,
    /// Basic auth: the bcrypt hash of the password, read from the variable `password_hash_env`.
    pub password_hash: String,
    /// `readonly = true`: the UI shows everything and can change nothing.
    pub readonly: bool,
}
