//! Watching the routes file: a change in its folder (a write, an editor's rename over it, a
//! Kubernetes ConfigMap's `..data` symlink swap, a delete and re-create) or SIGHUP triggers a
//! reload once the folder has been quiet for a moment.
//!
//! The folder is watched rather than the file, because the ways files really change replace
//! the file: a watch on the old inode would go deaf. Any change in it counts, but one to the
//! server's own output (`switchboard 2> server.log` run in the routes file's folder): each log
//! line would be a reload check, and at `debug` each check's own line the next one, forever.

use std::collections::HashSet;
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
    let own = OwnOutput::of_this_process();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| own.wants(&e)) {
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
    });
    folders.add_script_folders(&app);
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

/// The files the process writes its output to (stdout and stderr, when they are files), by
/// device and inode: changes to them are not changes of the configuration.
#[derive(Debug, Default)]
struct OwnOutput(Vec<(u64, u64)>);

impl OwnOutput {
    #[cfg(unix)]
    fn of_this_process() -> Self {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let id = |fd: std::os::fd::BorrowedFd<'_>| {
            let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
            let meta = file.metadata().ok()?;
            meta.is_file().then(|| (meta.dev(), meta.ino()))
        };
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        OwnOutput(
            [id(stdout.as_fd()), id(stderr.as_fd())]
                .into_iter()
                .flatten()
                .collect(),
        )
    }

    #[cfg(not(unix))]
    fn of_this_process() -> Self {
        OwnOutput::default()
    }

    /// Whether `event` may have changed the configuration: a write (our own reads of the
    /// files show up as access events; a finished write does too) to anything but our own
    /// output. A path that cannot be looked at any more counts.
    fn wants(&self, event: &notify::Event) -> bool {
        let kind = &event.kind;
        let written = !kind.is_access()
            || matches!(
                kind,
                notify::EventKind::Access(notify::event::AccessKind::Close(
                    notify::event::AccessMode::Write
                ))
            );
        written && (event.paths.is_empty() || !event.paths.iter().all(|p| self.is_own(p)))
    }

    #[cfg(unix)]
    fn is_own(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        !self.0.is_empty()
            && std::fs::metadata(path).is_ok_and(|m| self.0.contains(&(m.dev(), m.ino())))
    }

    #[cfg(not(unix))]
    fn is_own(&self, _path: &Path) -> bool {
        false
    }
}

/// The folders watched: the routes file's and those of the files it names.
struct Folders {
    watcher: std::sync::Mutex<notify::RecommendedWatcher>,
    watched: std::sync::Mutex<HashSet<PathBuf>>,
}

impl std::fmt::Debug for Folders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Folders")
            .field("watched", &self.watched)
            .finish_non_exhaustive()
    }
}

impl Folders {
    /// Watch the folder of every file the routes in force read (scripts, public keys).
    fn add_script_folders(&self, app: &App) {
        let snapshot = app.snapshot();
        for file in snapshot.routes.files() {
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
        reload(&app, &path).await;
        folders.add_script_folders(&app);
    }
}

/// Read and compile on the blocking pool (file reads and compiles of scripts take a while,
/// and a runtime thread serves connections), one reload at a time.
async fn reload(app: &Arc<App>, path: &Path) {
    let worker = app.clone();
    match tokio::task::spawn_blocking(move || worker.reload()).await {
        Ok(outcome) => tracing::debug!(config = %path.display(), ?outcome, "Reload checked"),
        Err(e) => tracing::error!(config = %path.display(), error = %e, "Reload failed"),
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

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind};
    use notify::{Event, EventKind};

    use super::*;

    const WRITE: EventKind = EventKind::Modify(ModifyKind::Data(DataChange::Any));

    fn event(kind: EventKind, paths: &[&Path]) -> Event {
        paths
            .iter()
            .fold(Event::new(kind), |e, p| e.add_path(p.to_path_buf()))
    }

    #[test]
    fn every_write_counts_but_one_to_our_own_output() {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-watch-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (log, routes) = (dir.join("server.log"), dir.join("routes.toml"));
        std::fs::write(&log, "a line\n").unwrap();
        std::fs::write(&routes, "").unwrap();
        let meta = std::fs::metadata(&log).unwrap();
        let own = OwnOutput(vec![(meta.dev(), meta.ino())]);

        let wanted = [
            own.wants(&event(WRITE, &[&log])),
            own.wants(&event(WRITE, &[&routes])),
            own.wants(&event(
                EventKind::Create(CreateKind::Any),
                &[&dir.join("new.rhai")],
            )),
            own.wants(&event(WRITE, &[&log, &routes])),
            own.wants(&event(EventKind::Other, &[])),
            own.wants(&event(
                EventKind::Access(AccessKind::Open(AccessMode::Read)),
                &[&routes],
            )),
            own.wants(&event(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                &[&routes],
            )),
        ];
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            wanted,
            [false, true, true, true, true, false, true],
            "our log; the routes; a new file, even one that does not exist any more; a rename \
             between the two; no path (the OS dropped events); our own read; a finished write"
        );
    }
}
