//! Watching the routes file: a change in its folder (a write, an editor's rename over it, a
//! Kubernetes ConfigMap's `..data` symlink swap, a delete and re-create) or SIGHUP triggers a
//! reload once the folder has been quiet for a moment.
//!
//! The folder is watched rather than the file, because the ways files really change replace
//! the file: a watch on the old inode would go deaf. Of the folder's events, only those that
//! name a file a reload reads count (see [`Names`]): a log written next to the routes file
//! would otherwise make every log line a reload check — and, at `debug`, each check's own
//! line the next one, forever.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::App;

/// How long the folder must be quiet before a reload: a write is rarely one event.
const QUIET: Duration = Duration::from_millis(100);
/// A stream of events never delays a reload longer than this.
const MAX_DELAY: Duration = Duration::from_millis(500);

/// Watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The app has no routes file.
    #[error("the app was not loaded from a file")]
    NoFile,
    /// The OS watcher failed.
    #[error("cannot watch {path}: {source}")]
    Notify {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: notify::Error,
    },
}

/// A running watch; dropping it stops watching.
#[derive(Debug)]
pub struct Watcher {
    _folders: Arc<Folders>,
    trigger: mpsc::UnboundedSender<()>,
    task: JoinHandle<()>,
}

impl Watcher {
    /// Ask for a reload, as a file change or SIGHUP does.
    pub fn trigger(&self) {
        let _ = self.trigger.send(());
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watch `app`'s routes file and reload on change and on SIGHUP (Unix).
pub fn watch(app: Arc<App>) -> Result<Watcher, WatchError> {
    let path = app.source_path().ok_or(WatchError::NoFile)?.to_owned();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let events = tx.clone();
    let names = Arc::new(Names::default());
    let wanted = names.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // An error (the OS dropped events) may hide a change: check.
        if event.map_or(true, |e| wanted.wants(&e)) {
            let _ = events.send(());
        }
    })
    .map_err(|source| WatchError::Notify {
        path: dir.clone(),
        source,
    })?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError::Notify {
            path: dir.clone(),
            source,
        })?;
    let folders = Arc::new(Folders {
        watcher: std::sync::Mutex::new(watcher),
        watched: std::sync::Mutex::new(HashSet::from([dir])),
        names,
        path: path.clone(),
    });
    folders.follow(&app, false);
    tracing::info!(config = %path.display(), "Watching the routes file for changes");
    #[cfg(unix)]
    spawn_sighup(tx.clone());
    let task = tokio::spawn(run(app, rx, path, folders.clone()));
    Ok(Watcher {
        _folders: folders,
        trigger: tx,
        task,
    })
}

/// The folders watched: the routes file's and those of the files it names.
struct Folders {
    watcher: std::sync::Mutex<notify::RecommendedWatcher>,
    watched: std::sync::Mutex<HashSet<PathBuf>>,
    /// Which of their events count.
    names: Arc<Names>,
    /// The routes file.
    path: PathBuf,
}

/// The names of the files a reload reads — the routes file and every file the routes in
/// force name, each also by the name of what it links to — by which the events of the
/// watched folders are told apart. Names starting with `..` count too (a Kubernetes
/// ConfigMap swaps its `..data` link). After a refused reload every event counts: the file
/// that was missing or wrong may be one the refused routes named.
#[derive(Debug, Default)]
struct Names {
    files: std::sync::RwLock<HashSet<OsString>>,
    refused: std::sync::atomic::AtomicBool,
}

impl Names {
    /// Whether `event` may have changed what a reload reads.
    fn wants(&self, event: &notify::Event) -> bool {
        // Our own reads of the files show up as access events; a finished write does too.
        let kind = &event.kind;
        let written = !kind.is_access()
            || matches!(
                kind,
                notify::EventKind::Access(notify::event::AccessKind::Close(
                    notify::event::AccessMode::Write
                ))
            );
        if !written {
            return false;
        }
        if event.paths.is_empty() || self.refused.load(std::sync::atomic::Ordering::Relaxed) {
            return true;
        }
        let files = self.files.read().expect("names lock");
        event
            .paths
            .iter()
            .filter_map(|p| p.file_name())
            .any(|name| files.contains(name) || name.as_encoded_bytes().starts_with(b".."))
    }

    /// The names of `paths` (and of what they link to) are now the ones that count;
    /// `refused`: the last reload was refused.
    fn set<'a>(&self, paths: impl IntoIterator<Item = &'a Path>, refused: bool) {
        let mut files = HashSet::new();
        for path in paths {
            files.extend(path.file_name().map(OsString::from));
            if let Ok(target) = std::fs::canonicalize(path) {
                files.extend(target.file_name().map(OsString::from));
            }
        }
        *self.files.write().expect("names lock") = files;
        self.refused
            .store(refused, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Folders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Folders")
            .field("watched", &self.watched)
            .finish_non_exhaustive()
    }
}

impl Folders {
    /// Watch the folder of every file the routes in force read (scripts, public keys), and
    /// count the events of the files a reload reads (`refused`: the last reload was refused).
    fn follow(&self, app: &App, refused: bool) {
        let snapshot = app.snapshot();
        let files = snapshot.routes.files();
        self.names.set(
            std::iter::once(self.path.as_path()).chain(files.iter().copied()),
            refused,
        );
        for file in files {
            let Some(dir) = file.parent() else {
                continue;
            };
            let mut watched = self.watched.lock().expect("watched lock");
            if watched.contains(dir) {
                continue;
            }
            match self
                .watcher
                .lock()
                .expect("watcher lock")
                .watch(dir, RecursiveMode::NonRecursive)
            {
                Ok(()) => {
                    watched.insert(dir.to_owned());
                }
                Err(e) => {
                    tracing::warn!(folder = %dir.display(), error = %e, "Cannot watch a script folder")
                }
            }
        }
    }
}

async fn run(
    app: Arc<App>,
    mut rx: mpsc::UnboundedReceiver<()>,
    path: PathBuf,
    folders: Arc<Folders>,
) {
    while rx.recv().await.is_some() {
        let deadline = tokio::time::Instant::now() + MAX_DELAY;
        loop {
            tokio::select! {
                more = rx.recv() => if more.is_none() { return },
                _ = tokio::time::sleep(QUIET) => break,
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let refused = reload(&app, &path).await;
        folders.follow(&app, refused);
    }
}

/// Read and compile on the blocking pool (file reads and compiles of scripts take a while,
/// and a runtime thread serves connections), one reload at a time: whether it was refused.
async fn reload(app: &Arc<App>, path: &Path) -> bool {
    let worker = app.clone();
    match tokio::task::spawn_blocking(move || worker.reload()).await {
        Ok(outcome) => {
            tracing::debug!(config = %path.display(), ?outcome, "Reload checked");
            matches!(outcome, super::ReloadOutcome::Rejected(_))
        }
        Err(e) => {
            tracing::error!(config = %path.display(), error = %e, "Reload failed");
            true
        }
    }
}

#[cfg(unix)]
fn spawn_sighup(tx: mpsc::UnboundedSender<()>) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the routes file");
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "SIGHUP will not reload: no handler"),
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RenameMode};
    use notify::{Event, EventKind};

    use super::*;

    const WRITE: EventKind = EventKind::Modify(ModifyKind::Data(DataChange::Any));

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        paths
            .iter()
            .fold(Event::new(kind), |e, p| e.add_path(PathBuf::from(p)))
    }

    fn names(refused: bool) -> Names {
        let names = Names::default();
        let files = ["/etc/sb/routes.toml", "/etc/sb/scripts/auth.rhai"];
        names.set(files.iter().map(Path::new), refused);
        names
    }

    #[test]
    fn only_the_files_a_reload_reads_count() {
        let names = names(false);
        assert!(names.wants(&event(WRITE, &["/etc/sb/routes.toml"])));
        assert!(names.wants(&event(WRITE, &["/etc/sb/scripts/auth.rhai"])));
        assert!(
            !names.wants(&event(WRITE, &["/etc/sb/server.log"])),
            "a log written next to the routes file"
        );
        let rename = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert!(
            names.wants(&event(
                rename,
                &["/etc/sb/.routes.toml.swp", "/etc/sb/routes.toml"]
            )),
            "an editor's temporary file renamed over the routes file"
        );
        assert!(
            names.wants(&event(
                EventKind::Create(CreateKind::Any),
                &["/etc/sb/..data_tmp"]
            )),
            "a ConfigMap's link swap"
        );
        let read = EventKind::Access(AccessKind::Open(AccessMode::Read));
        assert!(
            !names.wants(&event(read, &["/etc/sb/routes.toml"])),
            "our own read"
        );
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(names.wants(&event(written, &["/etc/sb/routes.toml"])));
        assert!(
            names.wants(&event(EventKind::Other, &[])),
            "an event without a path (the OS dropped some)"
        );
    }

    #[test]
    fn after_a_refused_reload_every_write_counts() {
        // The refused routes may name a script that does not exist yet: its creation counts.
        let names = names(true);
        assert!(names.wants(&event(WRITE, &["/etc/sb/scripts/new.rhai"])));
        names.set([Path::new("/etc/sb/routes.toml")], false);
        assert!(!names.wants(&event(WRITE, &["/etc/sb/scripts/new.rhai"])));
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_file_counts_by_the_name_of_its_target_too() {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-watch-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("routes.v2.toml"), "").unwrap();
        std::os::unix::fs::symlink("routes.v2.toml", dir.join("routes.toml")).unwrap();
        let names = Names::default();
        names.set([dir.join("routes.toml").as_path()], false);
        let target = dir.join("routes.v2.toml");
        let wanted = names.wants(&event(WRITE, &[target.to_str().unwrap()]));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(wanted, "an edit of the file the routes file links to");
    }
}
