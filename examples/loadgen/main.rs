//! `loadgen` — a load generator for switchboard and the reference `socket.io` server.
//!
//! It speaks Engine.IO v4 / Socket.IO v5 itself (raw WebSocket frames and raw HTTP/1.1
//! long-polling), on one thread, with one shared read buffer and pre-shaped frames, so that
//! it stays far cheaper than the server it measures. Loopback targets only; every scenario
//! is bounded in time (`--timeout`) and in count (`--clients`).
//!
//! Each run prints one JSON line. Server CPU (utime+stime) and RSS come from
//! `/proc/<--server-pid>`; the generator's own CPU from `/proc/self`, so a saturated load
//! generator (`loadgen_cpu_util` near 1.0) is never mistaken for a slow server.
//!
//! Scenarios (`--scenario`), against routes where `"chat message" = "io"` and
//! `echo = { ack = "{args}" }` (see `bench/routes.toml`):
//!
//! - `connect`: open `--clients` WebSocket connections (default 10,000; source addresses
//!   spread over 127.x.y.z), join `/`, hold them idle; connections/s, server CPU per
//!   connection, server RSS per idle connection. `--polling`: long-polling sessions
//!   instead (two connections each: the held GET, the POSTs').
//! - `echo`: `--clients` (default 50) closed loops of `emitWithAck("echo", <32 bytes>)`;
//!   acks/s and latency percentiles.
//! - `broadcast-max`: `--clients` (default 1,000) in the chat, `--senders` (10) of them
//!   sending 32-byte `chat message`s, each keeping `--window` messages in flight (a message
//!   is in flight until every client has it); deliveries/s, delivery ratio, latency.
//! - `broadcast-rate`: the same at a fixed `--rate` messages/s in total (default 20).
//!   With `--addr2` (a second node of the same cluster) every other receiver connects there
//!   and its latency is reported apart: what the path through Redis adds (`bench/cluster.sh`).
//! - `polling`: `--clients` (default 200) long-polling clients in the chat, `--senders`
//!   posting with the same window; deliveries/s.
//! - `soak`: `--clients` (default 40) slots of client churn over both transports with bad
//!   input mixed in, for `--duration` seconds after `--warmup`; every message accounted for
//!   and server RSS compared (see `soak/mod.rs`, `bench/soak.sh`).
//!
//! Build and run:
//!
//! ```text
//! cargo build --release --example loadgen
//! target/release/examples/loadgen --addr 127.0.0.1:3000 --scenario echo --server-pid PID
//! ```
//!
//! `bench/compare.sh` runs every scenario against switchboard and the reference server.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod soak;

use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use switchboard::engineio::frame::{self, OpCode};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{LocalSet, spawn_local};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Connect,
    Echo,
    BroadcastMax,
    BroadcastRate,
    Polling,
    Soak,
}

/// Load generator for Socket.IO servers (loopback only).
#[derive(Debug, Clone, Parser)]
#[command(about)]
struct Opts {
    /// The server's address (a loopback address).
    #[arg(long)]
    addr: SocketAddr,
    /// A second node of the same cluster (broadcast scenarios): every other receiving
    /// client connects there, the senders stay on `--addr`, and latency is reported for
    /// each node's clients apart (`remote_*`: the cross-node path).
    #[arg(long)]
    addr2: Option<SocketAddr>,
    /// The Engine.IO path.
    #[arg(long, default_value = "/socket.io")]
    path: String,
    /// The scenario to run.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Clients (default per scenario: connect 10000, echo 50, broadcast 1000, polling 200).
    #[arg(long)]
    clients: Option<usize>,
    /// Clients that send `chat message` (broadcast and polling).
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Messages each sender keeps in flight (broadcast-max and polling).
    #[arg(long, default_value_t = 8)]
    window: u64,
    /// Messages per second, all senders together (broadcast-rate).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds idle connections are held before RSS is read (connect).
    #[arg(long, default_value_t = 2.0)]
    hold: f64,
    /// connect: the idle clients are long-polling sessions (a GET held, and the connection
    /// of their POSTs kept alive, as a browser keeps it) rather than WebSockets.
    #[arg(long)]
    polling: bool,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Connections per source address (ephemeral ports per address are limited).
    #[arg(long, default_value_t = 10_000)]
    per_source: usize,
    /// First source address index, so that runs in a row do not meet each other's
    /// TIME_WAIT ports.
    #[arg(long, default_value_t = 0)]
    source_offset: usize,
    /// The server process to measure (CPU and RSS).
    #[arg(long)]
    server_pid: Option<u32>,
    /// The process of `--addr2`, measured the same way (`server2_*`).
    #[arg(long)]
    server2_pid: Option<u32>,
    /// A name for the server, copied into the output.
    #[arg(long, default_value = "")]
    label: String,
    /// The CONNECT's auth payload (JSON, e.g. `{"token":"…"}`), for servers that want one.
    #[arg(long)]
    auth: Option<String>,
    /// Hard limit for the whole run, in seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
}

// ------------------------------------------------------------------ measurement

/// CPU seconds (user + system, all threads; and system alone) and resident memory of a
/// process.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    cpu_s: f64,
    sys_s: f64,
    rss_kib: u64,
}

/// Linux's USER_HZ, the unit of utime/stime in /proc/PID/stat.
const CLK_TCK: f64 = 100.0;

fn proc_sample(pid: &str) -> ProcSample {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rfind(')')
        .map_or("", |i| &stat[i + 1..])
        .split_whitespace()
        .collect();
    // After the command name: field 3 (state) is index 0; utime (14) and stime (15).
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu_s = (tick(11) + tick(12)) as f64 / CLK_TCK;
    let sys_s = tick(12) as f64 / CLK_TCK;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    ProcSample {
        cpu_s,
        sys_s,
        rss_kib,
    }
}

/// Busy time (everything but idle and iowait) of each CPU and of all together, in seconds,
/// from /proc/stat: what else ran on the machine shows as busy time nobody measured claims.
fn cpu_busy() -> Vec<f64> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu"))
        .map(|l| {
            let t: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            let total: u64 = t.iter().take(8).sum();
            let idle = t.get(3).copied().unwrap_or(0) + t.get(4).copied().unwrap_or(0);
            (total - idle) as f64 / CLK_TCK
        })
        .collect()
}

/// A log-linear histogram of nanoseconds: 64 sub-buckets per power of two (≤ 1.6% error).
#[derive(Debug)]
struct Hist {
    counts: Vec<u64>,
    n: u64,
}

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;

impl Hist {
    fn new() -> Hist {
        Hist {
            counts: vec![0; 64 * SUB as usize],
            n: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < 2 * SUB {
            v as usize
        } else {
            let shift = 63 - v.leading_zeros() - SUB_BITS;
            ((u64::from(shift) + 1) * SUB + ((v >> shift) - SUB)) as usize
        }
    }

    fn value(idx: usize) -> u64 {
        let idx = idx as u64;
        if idx < 2 * SUB {
            idx
        } else {
            let shift = idx / SUB - 1;
            let low = (idx % SUB + SUB) << shift;
            low + (1 << shift) / 2
        }
    }

    fn record(&mut self, ns: u64) {
        self.counts[Self::index(ns)] += 1;
        self.n += 1;
    }

    /// The `q` quantile in microseconds.
    fn quantile_us(&self, q: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let target = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some((Self::value(i) as f64 / 100.0).round() / 10.0);
            }
        }
        None
    }
}

// ------------------------------------------------------------------ shared state

/// Window-accounting of one sender: a message is complete once every client has it.
#[derive(Debug)]
struct SenderState {
    sent: Cell<u64>,
    completed: Cell<u64>,
    /// Per in-flight message (seq % RING): how many clients have it.
    ring: RefCell<Vec<u32>>,
    notify: Rc<Notify>,
}

/// Ring slots per sender; at most RING / 2 messages of a sender are ever in flight.
const RING: usize = 4096;

#[derive(Debug)]
struct Shared {
    opts: Opts,
    clients: usize,
    start: Instant,
    connected: Cell<usize>,
    failed: Cell<usize>,
    /// Connections that ended before the run did.
    closed: Cell<usize>,
    first_error: RefCell<Option<String>>,
    stop: Cell<bool>,
    recording: Cell<bool>,
    hist: RefCell<Hist>,
    /// Latency of the clients on `--addr2`, the other node.
    hist_remote: RefCell<Hist>,
    deliveries: Cell<u64>,
    acks: Cell<u64>,
    /// Deliveries out of order, duplicated, or unparseable.
    seq_errors: Cell<u64>,
    senders: Vec<SenderState>,
    sender_ws: RefCell<Vec<Option<Rc<Ws>>>>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn fail(&self, what: &str, e: &dyn std::fmt::Display) {
        self.failed.set(self.failed.get() + 1);
        let mut first = self.first_error.borrow_mut();
        if first.is_none() {
            *first = Some(format!("{what}: {e}"));
        }
    }

    fn lost(&self) {
        if !self.stop.get() {
            self.closed.set(self.closed.get() + 1);
        }
    }

    /// Which node client `idx` connects to: senders and every other receiver to `--addr`,
    /// the rest to `--addr2` when there is one.
    fn node_of(&self, idx: usize) -> (SocketAddr, bool) {
        match self.opts.addr2 {
            Some(addr2) if idx >= self.senders.len() && idx % 2 == 1 => (addr2, true),
            _ => (self.opts.addr, false),
        }
    }

    /// Record one `chat message` delivery (`text` is the whole Engine.IO text packet) to a
    /// client of the other node (`remote`) or of the first.
    fn on_chat(&self, next_seq: &mut [u64], text: &[u8], now_ns: u64, remote: bool) {
        let Some((k, seq, ts_us)) = parse_chat(text) else {
            self.seq_errors.set(self.seq_errors.get() + 1);
            return;
        };
        let Some(expected) = next_seq.get_mut(k) else {
            self.seq_errors.set(self.seq_errors.get() + 1);
            return;
        };
        if seq != *expected {
            self.seq_errors.set(self.seq_errors.get() + 1);
        }
        *expected = seq + 1;
        self.deliveries.set(self.deliveries.get() + 1);
        if self.recording.get() {
            let hist = if remote {
                &self.hist_remote
            } else {
                &self.hist
            };
            hist.borrow_mut()
                .record(now_ns.saturating_sub(ts_us * 1000));
        }
        let st = &self.senders[k];
        let mut ring = st.ring.borrow_mut();
        let slot = &mut ring[seq as usize % RING];
        *slot += 1;
        if *slot as usize == self.clients {
            *slot = 0;
            st.completed.set(st.completed.get() + 1);
            st.notify.notify_one();
        }
    }

    fn in_flight(&self) -> u64 {
        self.senders
            .iter()
            .map(|s| s.sent.get().saturating_sub(s.completed.get()))
            .sum()
    }
}

// ------------------------------------------------------------------ chat messages

/// `42["chat message","` — the text packet before the 32-byte message.
const CHAT_PREFIX: &[u8] = b"42[\"chat message\",\"";
const MSG_LEN: usize = 32;
const CHAT_LEN: usize = CHAT_PREFIX.len() + MSG_LEN + 2;

/// The 32-byte message: sender (2 digits), sequence (12), send time in µs (14), padding.
fn put_chat_text(out: &mut Vec<u8>, sender: usize, seq: u64, ts_us: u64) {
    out.extend_from_slice(CHAT_PREFIX);
    let start = out.len();
    out.extend_from_slice(b"00000000000000000000000000000xyz\"]");
    put_digits(&mut out[start..start + 2], sender as u64);
    put_digits(&mut out[start + 2..start + 14], seq);
    put_digits(&mut out[start + 14..start + 28], ts_us);
}

/// A chat message as sent (`…"]`), or with a recovery offset after it (`…","<offset>"]`).
fn parse_chat(text: &[u8]) -> Option<(usize, u64, u64)> {
    if text.len() < CHAT_LEN || !text.starts_with(CHAT_PREFIX) {
        return None;
    }
    if text.len() > CHAT_LEN && text.get(CHAT_LEN - 1) != Some(&b',') {
        return None;
    }
    let m = &text[CHAT_PREFIX.len()..];
    Some((
        parse_digits(&m[0..2])? as usize,
        parse_digits(&m[2..14])?,
        parse_digits(&m[14..28])?,
    ))
}

fn put_digits(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

fn parse_digits(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

// ------------------------------------------------------------------ sockets

/// Source address `j`: 127.(1 + j/200 ...).(1 + j%200), never 127.0.0.x of the server.
fn source_ip(j: usize) -> Ipv4Addr {
    let hi = 1 + j / 200;
    Ipv4Addr::new(
        127,
        (hi / 250) as u8 + 1,
        (hi % 250) as u8,
        (1 + j % 200) as u8,
    )
}

/// Connect client `idx` from its own source address and port. Choosing the port here keeps
/// the kernel from searching for a free one (`bind` to port 0 costs more with every socket
/// already bound, and would make the generator the bottleneck of `connect`).
/// `idx` counts connections, not clients (a polling client has two).
async fn connect_from(shared: &Shared, idx: usize, to: SocketAddr) -> io::Result<TcpStream> {
    let per_source = shared.opts.per_source.clamp(1, 50_000);
    let ip = IpAddr::V4(source_ip(shared.opts.source_offset + idx / per_source));
    let port = 10_000 + (idx % per_source) as u16;
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    if sock.bind(SocketAddr::new(ip, port)).is_err() {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(to).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The Socket.IO CONNECT every client sends: `40`, with `--auth`'s payload when given.
static CONNECT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

fn connect_packet() -> &'static [u8] {
    CONNECT.get().map_or(b"40", Vec::as_slice)
}

thread_local! {
    /// The one read buffer every connection reads into (a single thread runs them all).
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; 256 * 1024]);
}

// ------------------------------------------------------------------ WebSocket

/// A client WebSocket: writes from several tasks go through `lock`.
#[derive(Debug)]
struct Ws {
    stream: TcpStream,
    lock: tokio::sync::Mutex<()>,
}

impl Ws {
    async fn write_all(&self, data: &[u8]) -> io::Result<()> {
        let _guard = self.lock.lock().await;
        write_all(&self.stream, data).await
    }
}

const MASK: [u8; 4] = [0x5a, 0x13, 0xc7, 0x2e];

/// Append a final, masked client frame (with the crate's one frame codec).
fn put_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    frame::put_frame(out, true, opcode, payload, Some(MASK));
}

/// A complete server frame at the start of `buf`: (opcode, payload start, frame end). A
/// frame no server would send reads as a close.
fn parse_frame(buf: &[u8]) -> Option<(OpCode, usize, usize)> {
    let header = match frame::parse_header(buf, false) {
        Ok(header) => header?,
        Err(_) => return Some((OpCode::Close, 0, buf.len())),
    };
    let end = header.header_len + usize::try_from(header.len).ok()?;
    (buf.len() >= end).then_some((header.opcode, header.header_len, end))
}

/// What a connection does with Socket.IO packets.
trait Handler {
    /// The Socket.IO CONNECT to `/` was accepted.
    fn on_connected(&mut self, ws: &Rc<Ws>, out: &mut Vec<u8>);
    /// An EVENT (`text` is the whole Engine.IO text packet, `42[...]`).
    fn on_event(&mut self, _text: &[u8], _now_ns: u64, _out: &mut Vec<u8>) {}
    /// An ACK (`43<id>[...]`).
    fn on_ack(&mut self, _text: &[u8], _now_ns: u64, _out: &mut Vec<u8>) {}
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

fn on_text<H: Handler>(
    h: &mut H,
    ws: &Rc<Ws>,
    text: &[u8],
    now_ns: u64,
    out: &mut Vec<u8>,
) -> Flow {
    match text.first() {
        Some(b'0') => put_frame(out, OpCode::Text, connect_packet()),
        Some(b'2') => put_frame(out, OpCode::Text, b"3"),
        Some(b'4') => match text.get(1) {
            Some(b'0') => h.on_connected(ws, out),
            Some(b'2') => h.on_event(text, now_ns, out),
            Some(b'3') => h.on_ack(text, now_ns, out),
            Some(b'1' | b'4') => return Flow::Stop,
            _ => {}
        },
        Some(b'1') => return Flow::Stop,
        _ => {}
    }
    Flow::Continue
}

/// Handle every complete frame in `buf`; returns the bytes used.
fn consume<H: Handler>(
    buf: &[u8],
    h: &mut H,
    ws: &Rc<Ws>,
    now_ns: u64,
    out: &mut Vec<u8>,
) -> (usize, Flow) {
    let mut pos = 0;
    while let Some((opcode, start, end)) = parse_frame(&buf[pos..]) {
        let payload = &buf[pos + start..pos + end];
        pos += end;
        let flow = match opcode {
            OpCode::Text => on_text(h, ws, payload, now_ns, out),
            OpCode::Close => Flow::Stop,
            OpCode::Ping => {
                put_frame(out, OpCode::Pong, payload);
                Flow::Continue
            }
            _ => Flow::Continue,
        };
        if flow == Flow::Stop {
            return (pos, Flow::Stop);
        }
    }
    (pos, Flow::Continue)
}

/// Open a WebSocket session: TCP from this client's source address, the HTTP upgrade.
/// Returns the socket and whatever arrived after the 101 response.
async fn ws_open(shared: &Shared, idx: usize) -> io::Result<(Rc<Ws>, Vec<u8>)> {
    let (to, _) = shared.node_of(idx);
    let stream = connect_from(shared, idx, to).await?;
    let req = format!(
        "GET {}/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {to}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        shared.opts.path
    );
    write_all(&stream, req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(512);
    let mut tmp = [0u8; 1024];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut tmp) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                let line = String::from_utf8_lossy(&buf[..find(&buf, b"\r\n").unwrap_or(0)]);
                return Err(io::Error::other(format!("upgrade refused: {line}")));
            }
            let rest = buf[end + 4..].to_vec();
            let ws = Rc::new(Ws {
                stream,
                lock: tokio::sync::Mutex::new(()),
            });
            return Ok((ws, rest));
        }
        if buf.len() > 16 * 1024 {
            return Err(io::Error::other("no end of the upgrade response"));
        }
    }
}

/// Read and handle frames until the connection ends or a handler stops it.
async fn ws_loop<H: Handler>(
    shared: &Shared,
    ws: &Rc<Ws>,
    mut pending: Vec<u8>,
    h: &mut H,
) -> io::Result<()> {
    let mut out = Vec::new();
    let (used, flow) = consume(&pending, h, ws, shared.now_ns(), &mut out);
    pending.drain(..used);
    if !out.is_empty() {
        ws.write_all(&out).await?;
    }
    if flow == Flow::Stop {
        return Ok(());
    }
    loop {
        ws.stream.readable().await?;
        out.clear();
        let now_ns = shared.now_ns();
        let flow = SCRATCH.with(|cell| -> io::Result<Option<Flow>> {
            let mut scratch = cell.borrow_mut();
            let n = match ws.stream.try_read(&mut scratch[..]) {
                Ok(0) => return Ok(Some(Flow::Stop)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            };
            let flow = if pending.is_empty() {
                let (used, flow) = consume(&scratch[..n], h, ws, now_ns, &mut out);
                pending.extend_from_slice(&scratch[used..n]);
                flow
            } else {
                pending.extend_from_slice(&scratch[..n]);
                let (used, flow) = consume(&pending, h, ws, now_ns, &mut out);
                pending.drain(..used);
                flow
            };
            if pending.is_empty() && pending.capacity() > 4096 {
                pending = Vec::new();
            }
            Ok(Some(flow))
        })?;
        if !out.is_empty() {
            ws.write_all(&out).await?;
            if out.capacity() > 4096 {
                out = Vec::new();
            }
        }
        if flow == Some(Flow::Stop) {
            return Ok(());
        }
    }
}

/// Open `shared.clients` WebSocket clients, `concurrency` attempts at a time; a permit is
/// held by each handler until its CONNECT is accepted.
async fn spawn_ws_clients<H, F>(shared: &Rc<Shared>, make: F)
where
    H: Handler + 'static,
    F: Fn(usize, OwnedSemaphorePermit) -> H,
{
    let sem = Arc::new(Semaphore::new(shared.opts.concurrency.max(1)));
    for idx in 0..shared.clients {
        let permit = sem.clone().acquire_owned().await.expect("never closed");
        let mut handler = make(idx, permit);
        let shared = shared.clone();
        spawn_local(async move {
            let (ws, rest) = match ws_open(&shared, idx).await {
                Ok(pair) => pair,
                Err(e) => return shared.fail("connect", &e),
            };
            let result = ws_loop(&shared, &ws, rest, &mut handler).await;
            shared.lost();
            if let Err(e) = result
                && !shared.stop.get()
            {
                let mut first = shared.first_error.borrow_mut();
                if first.is_none() {
                    *first = Some(format!("connection: {e}"));
                }
            }
        });
    }
}

/// Wait until every client has connected or failed, up to `limit`.
async fn await_connected(shared: &Shared, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while shared.connected.get() + shared.failed.get() < shared.clients {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {} clients connected within {limit:?} ({} failed)",
                shared.connected.get(),
                shared.clients,
                shared.failed.get()
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if shared.failed.get() > 0 {
        return Err(format!(
            "{} of {} clients failed: {}",
            shared.failed.get(),
            shared.clients,
            shared.first_error.borrow().clone().unwrap_or_default()
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------ handlers

/// Holds the connection and answers heartbeats.
struct Idle {
    shared: Rc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Handler for Idle {
    fn on_connected(&mut self, _ws: &Rc<Ws>, _out: &mut Vec<u8>) {
        self.shared.connected.set(self.shared.connected.get() + 1);
        self.permit = None;
    }
}

/// A chat client: counts deliveries; senders publish their socket.
struct Chat {
    shared: Rc<Shared>,
    idx: usize,
    permit: Option<OwnedSemaphorePermit>,
    next_seq: Vec<u64>,
    /// Connected to `--addr2`.
    remote: bool,
}

impl Handler for Chat {
    fn on_connected(&mut self, ws: &Rc<Ws>, _out: &mut Vec<u8>) {
        self.shared.connected.set(self.shared.connected.get() + 1);
        self.permit = None;
        if self.idx < self.shared.senders.len() {
            self.shared.sender_ws.borrow_mut()[self.idx] = Some(ws.clone());
        }
    }

    fn on_event(&mut self, text: &[u8], now_ns: u64, _out: &mut Vec<u8>) {
        self.shared
            .on_chat(&mut self.next_seq, text, now_ns, self.remote);
    }
}

/// A closed loop of `emitWithAck("echo", …)`.
struct Echo {
    shared: Rc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
    next_id: u64,
    sent_ns: u64,
    text: Vec<u8>,
}

impl Echo {
    fn send(&mut self, now_ns: u64, out: &mut Vec<u8>) {
        if self.shared.stop.get() {
            return;
        }
        self.text.clear();
        self.text.extend_from_slice(b"42");
        let mut digits = [0u8; 20];
        let n = self.next_id.max(1).ilog10() as usize + 1;
        put_digits(&mut digits[..n], self.next_id);
        self.text.extend_from_slice(&digits[..n]);
        self.text
            .extend_from_slice(b"[\"echo\",\"0123456789abcdef0123456789abcdef\"]");
        self.next_id += 1;
        self.sent_ns = now_ns;
        put_frame(out, OpCode::Text, &self.text);
    }
}

impl Handler for Echo {
    fn on_connected(&mut self, _ws: &Rc<Ws>, out: &mut Vec<u8>) {
        self.shared.connected.set(self.shared.connected.get() + 1);
        self.permit = None;
        self.send(self.shared.now_ns(), out);
    }

    fn on_ack(&mut self, _text: &[u8], now_ns: u64, out: &mut Vec<u8>) {
        self.shared.acks.set(self.shared.acks.get() + 1);
        if self.shared.recording.get() {
            self.shared
                .hist
                .borrow_mut()
                .record(now_ns.saturating_sub(self.sent_ns));
        }
        self.send(now_ns, out);
    }
}

// ------------------------------------------------------------------ senders

/// Keep `window` messages of sender `k` in flight until the run stops.
async fn send_window(shared: Rc<Shared>, ws: Rc<Ws>, k: usize) {
    let st = &shared.senders[k];
    let window = shared.opts.window.clamp(1, RING as u64 / 2);
    let mut buf = Vec::new();
    while !shared.stop.get() {
        let in_flight = st.sent.get() - st.completed.get();
        if in_flight >= window {
            st.notify.notified().await;
            continue;
        }
        buf.clear();
        let ts_us = shared.now_ns() / 1000;
        let mut text = Vec::with_capacity(CHAT_LEN);
        for _ in in_flight..window {
            let seq = st.sent.get();
            st.sent.set(seq + 1);
            text.clear();
            put_chat_text(&mut text, k, seq, ts_us);
            put_frame(&mut buf, OpCode::Text, &text);
        }
        if ws.write_all(&buf).await.is_err() {
            return;
        }
    }
}

/// Send `rate` messages per second in total, round-robin over the senders.
async fn send_rate(shared: Rc<Shared>) {
    let period = Duration::from_secs_f64(1.0 / shared.opts.rate.max(0.001));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut buf = Vec::new();
    let mut text = Vec::with_capacity(CHAT_LEN);
    for i in 0.. {
        ticker.tick().await;
        if shared.stop.get() {
            return;
        }
        let k = i % shared.senders.len();
        let st = &shared.senders[k];
        if st.sent.get() - st.completed.get() >= RING as u64 / 2 {
            continue; // the server is this far behind: skip rather than overrun the ring
        }
        let Some(ws) = shared.sender_ws.borrow()[k].clone() else {
            continue;
        };
        let seq = st.sent.get();
        st.sent.set(seq + 1);
        text.clear();
        put_chat_text(&mut text, k, seq, shared.now_ns() / 1000);
        buf.clear();
        put_frame(&mut buf, OpCode::Text, &text);
        if ws.write_all(&buf).await.is_err() {
            return;
        }
    }
}

// ------------------------------------------------------------------ long-polling

/// One keep-alive HTTP/1.1 connection.
struct Http {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    async fn connect(shared: &Shared, idx: usize) -> io::Result<Http> {
        Ok(Http {
            stream: connect_from(shared, idx, shared.opts.addr).await?,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Send `req` and read the response: status and body (Content-Length framing).
    async fn request(&mut self, req: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        write_all(&self.stream, req).await?;
        loop {
            if let Some(head_end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..head_end])
                    .map_err(|_| io::Error::other("non-UTF-8 response head"))?;
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| io::Error::other("bad status line"))?;
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .ok_or_else(|| io::Error::other("response without Content-Length"))?;
                let total = head_end + 4 + len;
                if self.buf.len() >= total {
                    let body = self.buf[head_end + 4..total].to_vec();
                    self.buf.drain(..total);
                    return Ok((status, body));
                }
            }
            self.buf.reserve(64 * 1024);
            self.stream.readable().await?;
            match self.stream.try_read_buf(&mut self.buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn post_request(shared: &Shared, sid: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {}/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        shared.opts.path,
        shared.opts.addr,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// Start every long-polling client, `--concurrency` of them connecting at a time.
async fn spawn_polling_clients(shared: &Rc<Shared>) {
    let sem = Arc::new(Semaphore::new(shared.opts.concurrency.max(1)));
    for idx in 0..shared.clients {
        let permit = sem.clone().acquire_owned().await.expect("never closed");
        spawn_local(polling_client(shared.clone(), idx, permit));
    }
}

/// A long-polling client: one connection for GETs, one for POSTs, as browsers do.
async fn polling_client(shared: Rc<Shared>, idx: usize, permit: OwnedSemaphorePermit) {
    if let Err(e) = polling_session(&shared, idx, permit).await {
        shared.lost();
        if shared.connected.get() + shared.failed.get() < shared.clients {
            shared.fail("polling", &e);
        } else if !shared.stop.get() {
            let mut first = shared.first_error.borrow_mut();
            if first.is_none() {
                *first = Some(format!("polling: {e}"));
            }
        }
    }
}

async fn polling_session(
    shared: &Rc<Shared>,
    idx: usize,
    permit: OwnedSemaphorePermit,
) -> io::Result<()> {
    let opts = &shared.opts;
    let mut get = Http::connect(shared, 2 * idx).await?;
    let handshake = format!(
        "GET {}/?EIO=4&transport=polling HTTP/1.1\r\nHost: {}\r\n\r\n",
        opts.path, opts.addr
    );
    let (status, body) = get.request(handshake.as_bytes()).await?;
    let text = String::from_utf8_lossy(&body);
    let sid = text
        .split_once("\"sid\":\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .filter(|_| status == 200)
        .ok_or_else(|| io::Error::other(format!("handshake: {status} {text}")))?
        .to_owned();
    let mut post = Http::connect(shared, 2 * idx + 1).await?;
    let (status, _) = post
        .request(&post_request(shared, &sid, connect_packet()))
        .await?;
    if status != 200 {
        return Err(io::Error::other(format!("POST 40: {status}")));
    }

    // Pongs and, for senders, messages go out through the POST task.
    let is_sender = idx < shared.senders.len();
    let notify = if is_sender {
        shared.senders[idx].notify.clone()
    } else {
        Rc::new(Notify::new())
    };
    let pongs = Rc::new(Cell::new(0usize));
    {
        let (shared, notify, pongs, sid) =
            (shared.clone(), notify.clone(), pongs.clone(), sid.clone());
        spawn_local(async move {
            if let Err(e) =
                post_loop(&shared, &mut post, &sid, idx, is_sender, &notify, &pongs).await
                && !shared.stop.get()
            {
                shared.lost();
                let mut first = shared.first_error.borrow_mut();
                if first.is_none() {
                    *first = Some(format!("POST: {e}"));
                }
            }
        });
    }

    let poll = format!(
        "GET {}/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\n\r\n",
        opts.path, opts.addr
    );
    let mut permit = Some(permit);
    let mut next_seq = vec![0u64; shared.senders.len()];
    loop {
        let (status, body) = get.request(poll.as_bytes()).await?;
        if status != 200 {
            return Err(io::Error::other(format!("poll: {status}")));
        }
        let now_ns = shared.now_ns();
        for record in body.split(|&b| b == 0x1e) {
            match record {
                [b'4', b'0', ..] => {
                    shared.connected.set(shared.connected.get() + 1);
                    drop(permit.take());
                }
                [b'4', b'2', ..] => shared.on_chat(&mut next_seq, record, now_ns, false),
                [b'2'] => {
                    pongs.set(pongs.get() + 1);
                    notify.notify_one();
                }
                [b'1'] | [b'4', b'1' | b'4', ..] => return Ok(()),
                _ => {}
            }
        }
    }
}

async fn post_loop(
    shared: &Shared,
    post: &mut Http,
    sid: &str,
    k: usize,
    is_sender: bool,
    notify: &Notify,
    pongs: &Cell<usize>,
) -> io::Result<()> {
    let window = shared.opts.window.clamp(1, RING as u64 / 2);
    let mut body = Vec::new();
    let mut text = Vec::with_capacity(CHAT_LEN);
    let mut started = false;
    loop {
        body.clear();
        for _ in 0..pongs.replace(0) {
            if !body.is_empty() {
                body.push(0x1e);
            }
            body.push(b'3');
        }
        // Senders start once every client is in, so that every message can reach all.
        started = started || shared.connected.get() >= shared.clients;
        if is_sender && started && !shared.stop.get() {
            let st = &shared.senders[k];
            let ts_us = shared.now_ns() / 1000;
            for _ in st.sent.get() - st.completed.get()..window {
                let seq = st.sent.get();
                st.sent.set(seq + 1);
                if !body.is_empty() {
                    body.push(0x1e);
                }
                text.clear();
                put_chat_text(&mut text, k, seq, ts_us);
                body.extend_from_slice(&text);
            }
        }
        if body.is_empty() {
            if is_sender && !started {
                tokio::time::sleep(Duration::from_millis(5)).await;
            } else {
                notify.notified().await;
            }
            continue;
        }
        let (status, _) = post.request(&post_request(shared, sid, &body)).await?;
        if status != 200 {
            return Err(io::Error::other(format!("POST: {status}")));
        }
    }
}

// ------------------------------------------------------------------ scenarios

/// A point in time: counters, server and own CPU.
#[derive(Debug, Clone)]
struct Mark {
    at: Instant,
    server: ProcSample,
    /// The process of `--server2-pid` (zero without one).
    server2: ProcSample,
    me: ProcSample,
    deliveries: u64,
    acks: u64,
    /// Busy seconds: all CPUs, then each.
    busy: Vec<f64>,
}

fn mark(shared: &Shared) -> Mark {
    let server = shared
        .opts
        .server_pid
        .map(|p| proc_sample(&p.to_string()))
        .unwrap_or_default();
    let server2 = shared
        .opts
        .server2_pid
        .map(|p| proc_sample(&p.to_string()))
        .unwrap_or_default();
    Mark {
        at: Instant::now(),
        server,
        server2,
        me: proc_sample("self"),
        deliveries: shared.deliveries.get(),
        acks: shared.acks.get(),
        busy: cpu_busy(),
    }
}

/// Machine load between two marks: each CPU's busy fraction, and the busy time neither the
/// server nor the generator accounts for (other processes, interrupts), in cores.
fn machine_fields(a: &Mark, b: &Mark, m: &mut serde_json::Map<String, Value>) {
    let secs = (b.at - a.at).as_secs_f64();
    let busy: Vec<f64> = b.busy.iter().zip(&a.busy).map(|(b, a)| b - a).collect();
    for (i, cpu) in busy.iter().enumerate().skip(1) {
        m.insert(format!("cpu{}_util", i - 1), json!(round(cpu / secs, 3)));
    }
    let claimed = (b.server.cpu_s - a.server.cpu_s)
        + (b.server2.cpu_s - a.server2.cpu_s)
        + (b.me.cpu_s - a.me.cpu_s);
    let all = busy.first().copied().unwrap_or(0.0);
    m.insert(
        "unclaimed_cpu_util".into(),
        json!(round((all - claimed).max(0.0) / secs, 3)),
    );
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// Common fields of a measured window between `a` and `b`.
fn window_fields(shared: &Shared, a: &Mark, b: &Mark) -> serde_json::Map<String, Value> {
    let secs = (b.at - a.at).as_secs_f64();
    let server_cpu = b.server.cpu_s - a.server.cpu_s;
    let me_cpu = b.me.cpu_s - a.me.cpu_s;
    let hist = shared.hist.borrow();
    let mut m = serde_json::Map::new();
    m.insert("seconds".into(), json!(round(secs, 3)));
    m.insert("server_cpu_s".into(), json!(round(server_cpu, 3)));
    m.insert("server_cpu_util".into(), json!(round(server_cpu / secs, 3)));
    // Where the server's time goes: the kernel's share (system time) of its CPU.
    let server_sys = b.server.sys_s - a.server.sys_s;
    if server_cpu > 0.0 {
        m.insert(
            "server_kernel_share".into(),
            json!(round(server_sys / server_cpu, 3)),
        );
    }
    m.insert("loadgen_cpu_util".into(), json!(round(me_cpu / secs, 3)));
    m.insert("server_rss_kib".into(), json!(b.server.rss_kib));
    m.insert("p50_us".into(), json!(hist.quantile_us(0.50)));
    m.insert("p99_us".into(), json!(hist.quantile_us(0.99)));
    m.insert("p999_us".into(), json!(hist.quantile_us(0.999)));
    if shared.opts.addr2.is_some() {
        cluster_fields(shared, a, b, &mut m);
    }
    machine_fields(a, b, &mut m);
    m
}

/// With a second node: its CPU, and the latency of its clients (every delivery there crossed
/// Redis) beside that of the first node's, and the difference: what the cross-node path adds.
fn cluster_fields(shared: &Shared, a: &Mark, b: &Mark, m: &mut serde_json::Map<String, Value>) {
    let secs = (b.at - a.at).as_secs_f64();
    let cpu2 = b.server2.cpu_s - a.server2.cpu_s;
    m.insert("server2_cpu_s".into(), json!(round(cpu2, 3)));
    m.insert("server2_cpu_util".into(), json!(round(cpu2 / secs, 3)));
    if cpu2 > 0.0 {
        let sys2 = b.server2.sys_s - a.server2.sys_s;
        m.insert("server2_kernel_share".into(), json!(round(sys2 / cpu2, 3)));
    }
    m.insert("server2_rss_kib".into(), json!(b.server2.rss_kib));
    let local = shared.hist.borrow();
    let remote = shared.hist_remote.borrow();
    for (name, q) in [("p50", 0.50), ("p99", 0.99)] {
        let (l, r) = (local.quantile_us(q), remote.quantile_us(q));
        m.insert(format!("remote_{name}_us"), json!(r));
        if let (Some(l), Some(r)) = (l, r) {
            m.insert(
                format!("cross_node_added_{name}_us"),
                json!(round(r - l, 1)),
            );
        }
    }
}

async fn measure(shared: &Shared) -> (Mark, Mark) {
    tokio::time::sleep(Duration::from_secs_f64(shared.opts.warmup)).await;
    *shared.hist.borrow_mut() = Hist::new();
    *shared.hist_remote.borrow_mut() = Hist::new();
    shared.recording.set(true);
    let a = mark(shared);
    tokio::time::sleep(Duration::from_secs_f64(shared.opts.duration)).await;
    let b = mark(shared);
    shared.recording.set(false);
    (a, b)
}

async fn run_connect(shared: Rc<Shared>) -> Result<Value, String> {
    let before = mark(&shared);
    {
        let s = shared.clone();
        spawn_local(async move {
            if s.opts.polling {
                spawn_polling_clients(&s).await;
                return;
            }
            let s2 = s.clone();
            spawn_ws_clients(&s, move |_, permit| Idle {
                shared: s2.clone(),
                permit: Some(permit),
            })
            .await;
        });
    }
    await_connected(&shared, Duration::from_secs_f64(shared.opts.timeout * 0.8)).await?;
    let after = mark(&shared);
    tokio::time::sleep(Duration::from_secs_f64(shared.opts.hold)).await;
    let held = mark(&shared);
    let n = shared.connected.get() as f64;
    let secs = (after.at - before.at).as_secs_f64();
    let mut m = serde_json::Map::new();
    m.insert("connections".into(), json!(shared.connected.get()));
    m.insert("seconds".into(), json!(round(secs, 3)));
    m.insert("conns_per_s".into(), json!(round(n / secs, 1)));
    let cpu = after.server.cpu_s - before.server.cpu_s;
    m.insert("server_cpu_s".into(), json!(round(cpu, 3)));
    m.insert(
        "server_cpu_us_per_conn".into(),
        json!(round(cpu / n * 1e6, 2)),
    );
    m.insert("server_cpu_util".into(), json!(round(cpu / secs, 3)));
    m.insert(
        "loadgen_cpu_util".into(),
        json!(round((after.me.cpu_s - before.me.cpu_s) / secs, 3)),
    );
    m.insert("rss_before_kib".into(), json!(before.server.rss_kib));
    m.insert("server_rss_kib".into(), json!(held.server.rss_kib));
    let per = (held.server.rss_kib as f64 - before.server.rss_kib as f64) / n;
    m.insert("rss_kib_per_conn".into(), json!(round(per, 2)));
    m.insert("loadgen_rss_kib".into(), json!(held.me.rss_kib));
    machine_fields(&before, &after, &mut m);
    m.insert("closed".into(), json!(shared.closed.get()));
    Ok(Value::Object(m))
}

async fn run_echo(shared: Rc<Shared>) -> Result<Value, String> {
    {
        let s = shared.clone();
        spawn_local(async move {
            let s2 = s.clone();
            spawn_ws_clients(&s, move |_, permit| Echo {
                shared: s2.clone(),
                permit: Some(permit),
                next_id: 0,
                sent_ns: 0,
                text: Vec::with_capacity(64),
            })
            .await;
        });
    }
    await_connected(&shared, Duration::from_secs(30)).await?;
    let (a, b) = measure(&shared).await;
    shared.stop.set(true);
    let acks = b.acks - a.acks;
    let mut m = window_fields(&shared, &a, &b);
    let secs = (b.at - a.at).as_secs_f64();
    m.insert("acks".into(), json!(acks));
    m.insert("acks_per_s".into(), json!(round(acks as f64 / secs, 1)));
    let cpu = b.server.cpu_s - a.server.cpu_s;
    m.insert(
        "server_cpu_us_per_ack".into(),
        json!(round(cpu / acks.max(1) as f64 * 1e6, 3)),
    );
    m.insert("closed".into(), json!(shared.closed.get()));
    Ok(Value::Object(m))
}

async fn run_broadcast(shared: Rc<Shared>, scenario: Scenario) -> Result<Value, String> {
    {
        let s = shared.clone();
        spawn_local(async move {
            if scenario == Scenario::Polling {
                spawn_polling_clients(&s).await;
            } else {
                let s2 = s.clone();
                spawn_ws_clients(&s, move |idx, permit| Chat {
                    shared: s2.clone(),
                    idx,
                    permit: Some(permit),
                    next_seq: vec![0; s2.senders.len()],
                    remote: s2.node_of(idx).1,
                })
                .await;
            }
        });
    }
    await_connected(&shared, Duration::from_secs(60)).await?;
    match scenario {
        Scenario::BroadcastMax => {
            for k in 0..shared.senders.len() {
                let ws = shared.sender_ws.borrow()[k]
                    .clone()
                    .expect("senders connected");
                spawn_local(send_window(shared.clone(), ws, k));
            }
        }
        Scenario::BroadcastRate => {
            spawn_local(send_rate(shared.clone()));
        }
        _ => {
            // Polling senders start by themselves once everyone is connected.
            for st in &shared.senders {
                st.notify.notify_one();
            }
        }
    }
    let (a, b) = measure(&shared).await;
    shared.stop.set(true);
    // Drain: everything sent must reach everyone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.in_flight() > 0 && Instant::now() < deadline && shared.closed.get() == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let sent: u64 = shared.senders.iter().map(|s| s.sent.get()).sum();
    let expected = sent * shared.clients as u64;
    let delivered = shared.deliveries.get();
    let deliveries = b.deliveries - a.deliveries;
    let secs = (b.at - a.at).as_secs_f64();
    let mut m = window_fields(&shared, &a, &b);
    m.insert("messages_sent".into(), json!(sent));
    m.insert("deliveries".into(), json!(deliveries));
    m.insert(
        "deliveries_per_s".into(),
        json!(round(deliveries as f64 / secs, 1)),
    );
    m.insert(
        "delivery_ratio".into(),
        json!(if expected == 0 {
            0.0
        } else {
            delivered as f64 / expected as f64
        }),
    );
    m.insert("seq_errors".into(), json!(shared.seq_errors.get()));
    let cpu = b.server.cpu_s - a.server.cpu_s;
    m.insert(
        "server_cpu_us_per_delivery".into(),
        json!(round(cpu / deliveries.max(1) as f64 * 1e6, 3)),
    );
    if shared.opts.addr2.is_some() {
        let both = cpu + b.server2.cpu_s - a.server2.cpu_s;
        m.insert(
            "cluster_cpu_us_per_delivery".into(),
            json!(round(both / deliveries.max(1) as f64 * 1e6, 3)),
        );
    }
    m.insert("closed".into(), json!(shared.closed.get()));
    Ok(Value::Object(m))
}

async fn run(shared: Rc<Shared>) -> Result<Value, String> {
    match shared.opts.scenario {
        Scenario::Connect => run_connect(shared).await,
        Scenario::Echo => run_echo(shared).await,
        Scenario::Soak => soak::run(shared).await,
        s => run_broadcast(shared, s).await,
    }
}

fn main() {
    let opts = Opts::parse();
    if !opts.addr.ip().is_loopback() || opts.addr2.is_some_and(|a| !a.ip().is_loopback()) {
        eprintln!("loadgen: only loopback targets are allowed");
        std::process::exit(2);
    }
    if opts.addr2.is_some()
        && !matches!(
            opts.scenario,
            Scenario::BroadcastMax | Scenario::BroadcastRate
        )
    {
        eprintln!("loadgen: --addr2 is for broadcast-max and broadcast-rate");
        std::process::exit(2);
    }
    if let Some(auth) = &opts.auth {
        let _ = CONNECT.set(format!("40{auth}").into_bytes());
    }
    let clients = opts.clients.unwrap_or(match opts.scenario {
        Scenario::Connect => 10_000,
        Scenario::Echo => 50,
        Scenario::BroadcastMax | Scenario::BroadcastRate => 1_000,
        Scenario::Polling => 200,
        Scenario::Soak => 40,
    });
    let n_senders = match opts.scenario {
        Scenario::BroadcastMax | Scenario::BroadcastRate | Scenario::Polling => {
            opts.senders.clamp(1, clients.min(99))
        }
        _ => 0,
    };
    let shared = Rc::new(Shared {
        clients,
        start: Instant::now(),
        connected: Cell::new(0),
        failed: Cell::new(0),
        closed: Cell::new(0),
        first_error: RefCell::new(None),
        stop: Cell::new(false),
        recording: Cell::new(false),
        hist: RefCell::new(Hist::new()),
        hist_remote: RefCell::new(Hist::new()),
        deliveries: Cell::new(0),
        acks: Cell::new(0),
        seq_errors: Cell::new(0),
        senders: (0..n_senders)
            .map(|_| SenderState {
                sent: Cell::new(0),
                completed: Cell::new(0),
                ring: RefCell::new(vec![0; RING]),
                notify: Rc::new(Notify::new()),
            })
            .collect(),
        sender_ws: RefCell::new(vec![None; n_senders]),
        opts: opts.clone(),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let limit = Duration::from_secs_f64(opts.timeout);
    let outcome = LocalSet::new().block_on(&rt, async {
        tokio::time::timeout(limit, run(shared.clone())).await
    });
    let scenario = opts
        .scenario
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let mut line = serde_json::Map::new();
    line.insert("scenario".into(), json!(scenario));
    line.insert("server".into(), json!(opts.label));
    line.insert("clients".into(), json!(clients));
    let code = match outcome {
        Ok(Ok(Value::Object(fields))) => {
            line.extend(fields);
            if let Some(e) = shared.first_error.borrow().clone() {
                line.insert("first_error".into(), json!(e));
            }
            0
        }
        Ok(Ok(_)) => unreachable!("scenarios return objects"),
        Ok(Err(e)) => {
            line.insert("error".into(), json!(e));
            1
        }
        Err(_) => {
            line.insert(
                "error".into(),
                json!(format!("timed out after {}s", opts.timeout)),
            );
            1
        }
    };
    println!("{}", Value::Object(line));
    // Exit at once: tearing down thousands of connections one by one measures nothing.
    std::process::exit(code);
}
