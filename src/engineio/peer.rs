//! The TCP connection under a request, as far as this layer may act on it: a connection
//! given up on (a peer too slow to read) is reset rather than closed, so the kernel frees
//! what it still holds for the peer at once instead of retrying to deliver it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared with whoever owns the connection (the HTTP edge puts one in every request's
/// extensions); asking for an abortive close takes effect when the connection is dropped.
#[derive(Debug, Clone, Default)]
pub struct PeerHandle(Arc<AtomicBool>);

impl PeerHandle {
    /// A handle for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reset the connection when it closes, discarding unsent data.
    pub fn abort_on_close(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the connection is to be reset.
    pub fn is_abortive(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
