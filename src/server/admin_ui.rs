//! The `@socket.io/admin-ui` dashboard's files (its `ui/dist`, from the npm package that
//! `npm ci` installs — never committed), served at `[admin_ui] mount`, and the ticks that
//! send the dashboards the server's stats.

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use http::{HeaderMap, Method, Response, StatusCode};

use super::body::{self, Body};
use super::static_files;
use crate::app::App;
use crate::routing::StaticMount;

/// The answer when the UI's files were not found.
const MISSING_UI: &str = "switchboard: the admin UI is not installed. Run `npm ci` in the \
folder of package.json (it installs @socket.io/admin-ui).\n";

/// Where the npm package keeps the built UI, under a `node_modules` folder.
pub const UI_DIST: &str = "@socket.io/admin-ui/ui/dist";

/// The UI's answer for `path`, when `path` is under its mount; `dir` holds its files.
pub async fn serve(
    app: &App,
    dir: Option<&PathBuf>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    let snapshot = app.snapshot();
    let mount = snapshot.routes.admin_ui.as_ref()?.mount.as_deref()?;
    let rest = path.strip_prefix(mount)?;
    if rest.is_empty() {
        // Its pages name their files relative to the folder: it must end with `/`.
        return Some(body::whole(
            Response::builder()
                .status(StatusCode::MOVED_PERMANENTLY)
                .header(http::header::LOCATION, format!("{mount}/"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .expect("a valid response"),
        ));
    }
    if !rest.starts_with('/') {
        return None;
    }
    let Some(dir) = dir else {
        return Some(super::not_found(MISSING_UI));
    };
    let mounts = [StaticMount {
        mount: mount.to_owned(),
        dir: dir.clone(),
        index: Some("index.html".to_owned()),
    }];
    Some(
        static_files::serve(&mounts, method, path, headers)
            .await
            .unwrap_or_else(|| body::status(StatusCode::NOT_FOUND)),
    )
}

/// Send the dashboards the server's stats every 2 s while `app` lives (off the reactor:
/// it counts the sessions).
pub fn start_ticks(app: Weak<App>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(crate::app::ADMIN_UI_STATS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = app.upgrade() else { return };
            let app: Arc<App> = app;
            // Without the admin UI there is nobody to tell: no thread of the blocking pool
            // is woken (or kept alive) for it.
            if app.snapshot().routes.admin_ui.is_none() {
                continue;
            }
            let _ = tokio::task::spawn_blocking(move || app.admin_ui_tick()).await;
        }
    });
}
