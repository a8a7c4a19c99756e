//! The TCP connection of one peer, as hyper (and, after an upgrade, the WebSocket) uses it:
//! a write that stalls past `write_timeout` fails instead of hanging forever; a connection
//! given up on is reset, not closed, so the kernel frees what it held for the peer at once;
//! and its place under the connection caps is given back when it is dropped.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::engineio::PeerHandle;
use crate::limits::{IpKey, PerIp};

/// Open connections: in all, and per client address (for peers that are not trusted
/// proxies).
#[derive(Debug)]
pub(crate) struct Counts {
    pub(crate) open: AtomicUsize,
    pub(crate) per_ip: PerIp<usize>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            open: AtomicUsize::new(0),
            per_ip: PerIp::new(65_536),
        }
    }
}

/// A place under the caps, given back on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    counts: Arc<Counts>,
    ip: Option<IpKey>,
}

impl Counts {
    /// Take a place for a connection from `ip` (counted per address unless `None`), within
    /// `max` in all and `per_ip` per address.
    pub(crate) fn take(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        max: usize,
        per_ip: Option<usize>,
    ) -> Result<Slot, crate::limits::Limit> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(crate::limits::Limit::MaxConnections);
        }
        let key = ip.map(IpKey::from);
        if let Some(key) = key {
            let taken = self.per_ip.acquire(key, per_ip.unwrap_or(usize::MAX));
            if taken != Some(true) {
                self.open.fetch_sub(1, Ordering::AcqRel);
                return Err(crate::limits::Limit::ConnectionsPerIp);
            }
        }
        Ok(Slot {
            counts: self.clone(),
            ip: key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counts.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(key) = self.ip {
            self.counts.per_ip.release(key);
        }
    }
}

/// A peer's connection.
#[derive(Debug)]
pub(crate) struct PeerStream {
    tcp: TcpStream,
    handle: PeerHandle,
    _slot: Option<Slot>,
    write_timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl PeerStream {
    pub(crate) fn new(
        tcp: TcpStream,
        handle: PeerHandle,
        slot: Option<Slot>,
        write_timeout: Duration,
    ) -> Self {
        PeerStream {
            tcp,
            handle,
            _slot: slot,
            write_timeout,
            stalled: None,
        }
    }

    /// A write could not proceed: fail once it has been stuck for `write_timeout`.
    fn stall(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let timeout = self.write_timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        self.handle.abort_on_close();
        Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "write stalled past write_timeout",
        )))
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.tcp).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.stall(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.stall(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl Drop for PeerStream {
    fn drop(&mut self) {
        if self.handle.is_abortive() {
            // Reset: what is still queued for a peer that stopped reading is discarded now.
            let _ = self.tcp.set_zero_linger();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_given_back() {
        let counts = Arc::new(Counts::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = counts.take(Some(ip), 3, Some(2)).unwrap();
        let _b = counts.take(Some(ip), 3, Some(2)).unwrap();
        assert_eq!(
            counts.take(Some(ip), 3, Some(2)).unwrap_err(),
            crate::limits::Limit::ConnectionsPerIp
        );
        let _c = counts.take(None, 3, Some(2)).unwrap();
        assert_eq!(
            counts.take(None, 3, Some(2)).unwrap_err(),
            crate::limits::Limit::MaxConnections
        );
        drop(a);
        let again = counts.take(Some(ip), 3, Some(2));
        assert!(again.is_ok(), "given back");
        assert_eq!(counts.open.load(Ordering::Acquire), 3);
        drop(again);
        assert_eq!(counts.open.load(Ordering::Acquire), 2);
    }
}
