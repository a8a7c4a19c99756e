//! The observer of a clustered namespace: every membership change goes to the roster (see
//! `roster`), and the application's observer is told sizes across the cluster.
//!
//! Room occupancy across the cluster: a room is occupied while any node has a member. Each
//! node keeps its uid in the Redis set `{key}#occupancy#{nsp}#{room}` while it has members
//! there; the node whose add makes the set hold one uid tells "occupied", the one whose
//! removal empties it tells "vacated" — each in one atomic script. Local changes are
//! settled in order by one task per namespace; several changes of a room before it runs
//! collapse into the last (a room that emptied and filled again meanwhile was never seen
//! vacated by anyone). Joins and leaves of sockets pass through at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::roster::Member;
use crate::adapter::{Adapter, KeptMessage, RoomObserver};
use crate::socketio::Socket;

/// Adds this node; answers 1 when it is now the only one.
const OCCUPY: &str = "if redis.call('SADD', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 1 then return 1 end return 0";
/// Removes this node; answers 1 when no node is left.
const VACATE: &str = "if redis.call('SREM', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 0 then return 1 end return 0";
/// Wait before trying again after Redis failed.
const RETRY: Duration = Duration::from_secs(1);

/// Wraps the application's observer for one namespace of a cluster.
#[derive(Debug)]
pub(super) struct Occupancy {
    inner: Arc<dyn RoomObserver>,
    /// The link, whose roster is told of every membership change.
    shared: Weak<Shared>,
    /// Rooms whose occupancy here changed, not yet settled: `true` occupied.
    pending: Mutex<HashMap<String, bool>>,
    wake: Notify,
}

impl Occupancy {
    /// The observer for `nsp`; its task runs until `cancel`.
    pub(super) fn start(
        nsp: &str,
        inner: Arc<dyn RoomObserver>,
        shared: Weak<Shared>,
        cancel: CancellationToken,
    ) -> Arc<Occupancy> {
        let occupancy = Arc::new(Occupancy {
            inner,
            shared: shared.clone(),
            pending: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        });
        tokio::spawn(settle(nsp.to_owned(), occupancy.clone(), shared, cancel));
        occupancy
    }
}

impl RoomObserver for Occupancy {
    // The roster is told of every change, whoever else listens.
    fn listening(&self) -> bool {
        true
    }

    fn member_changed(
        &self,
        nsp: &str,
        socket: &Arc<Socket>,
        room: &str,
        joined: bool,
        size: usize,
    ) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let member = Member(nsp.to_owned(), room.to_owned(), socket.id().to_string());
        shared.roster.tell(member, joined);
        if self.inner.listening() {
            // An announcement of the change must not overtake it: others count with it.
            shared.roster.flush_now(&shared);
            // The size across the cluster, as far as this node knows.
            let size = size + shared.roster.size(nsp, room);
            self.inner.member_changed(nsp, socket, room, joined, size);
        }
    }

    fn member_vanished(&self, nsp: &str, room: &str, sid: &str, size: usize, local: &dyn Adapter) {
        if self.inner.listening() {
            self.inner.member_vanished(nsp, room, sid, size, local);
        }
    }

    fn kept(&self, nsp: &str, message: KeptMessage, deliver: &mut dyn FnMut()) {
        self.inner.kept(nsp, message, deliver);
    }

    fn history_read(&self, nsp: &str, room: &str, messages: Vec<KeptMessage>) {
        self.inner.history_read(nsp, room, messages);
    }

    fn room_changed(&self, _nsp: &str, room: &str, occupied: bool) {
        if !self.inner.listening() {
            return;
        }
        self.pending
            .lock()
            .expect("occupancy lock")
            .insert(room.to_owned(), occupied);
        self.wake.notify_one();
    }
}

async fn settle(
    nsp: String,
    occupancy: Arc<Occupancy>,
    shared: Weak<Shared>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = occupancy.wake.notified() => {}
            _ = cancel.cancelled() => return,
        }
        let changes = std::mem::take(&mut *occupancy.pending.lock().expect("occupancy lock"));
        let Some(shared) = shared.upgrade() else {
            return;
        };
        for (room, occupied) in changes {
            match toggle(&shared, &nsp, &room, occupied).await {
                Ok(true) => occupancy.inner.room_changed(&nsp, &room, occupied),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(ns = %nsp, room = %room.escape_debug(), error = %e, "Room occupancy not settled; retrying");
                    // Unless a later change of the room came meanwhile, try it again.
                    occupancy
                        .pending
                        .lock()
                        .expect("occupancy lock")
                        .entry(room)
                        .or_insert(occupied);
                    occupancy.wake.notify_one();
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        _ = cancel.cancelled() => return,
                    }
                }
            }
        }
    }
}

/// Add (or remove) this node in the room's set; whether that occupied (or vacated) it.
async fn toggle(shared: &Shared, nsp: &str, room: &str, occupied: bool) -> Result<bool, String> {
    let mut conn = shared
        .command()
        .await
        .ok_or_else(|| "no connection to Redis".to_owned())?;
    let key = format!("{}#occupancy#{nsp}#{room}", shared.config.key);
    let script = if occupied { OCCUPY } else { VACATE };
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(1).arg(&key).arg(&shared.uid);
    let call = cmd.query_async::<i64>(&mut conn);
    match tokio::time::timeout(shared.config.request_timeout, call).await {
        Ok(Ok(n)) => Ok(n == 1),
        Ok(Err(e)) => {
            shared.command_failed().await;
            Err(e.to_string())
        }
        Err(_) => {
            shared.command_failed().await;
            Err("Redis did not answer in time".to_owned())
        }
    }
}
