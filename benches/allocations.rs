//! Heap allocations the server makes per event, counted by `allocation-counter`, which
//! counts on the measuring thread only: the server runs on a current-thread runtime there,
//! and the client, a plain blocking socket, on a thread of its own.
//!
//! `cargo bench --bench allocations` prints, for each event of bench/routes.toml, the
//! allocations and bytes allocated per event over 20,000 round trips of one WebSocket
//! client, after a warm-up: `echo = { ack = "{args}" }` (the plain-route path: read, parse,
//! route, answer), `ping = "emit"` (an event back plus the ack), `"chat message" = "io"`
//! (a broadcast, to the sender alone and then to 100 sockets: what a broadcast allocates is
//! per broadcast, not per recipient). Counts, not timings: the figure is exact for a given
//! build and does not depend on the machine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc;

use switchboard::app::App;
use switchboard::engineio::frame::{self, OpCode};
use switchboard::routing::{self, Env};
use switchboard::server::Server;
use tokio::sync::oneshot;

const ROUTES: &str = include_str!("../bench/routes.toml");
const WARMUP: u64 = 2_000;
const EVENTS: u64 = 20_000;
const MASK: [u8; 4] = [0x5a, 0x13, 0xc7, 0x2e];

/// A blocking WebSocket client of the Socket.IO namespace `/`.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        write!(
            stream,
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .expect("upgrade request");
        let mut client = Client {
            stream,
            buf: Vec::new(),
        };
        while !client.buf.windows(4).any(|w| w == b"\r\n\r\n") {
            client.fill();
        }
        let end = client
            .buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head")
            + 4;
        assert!(client.buf.starts_with(b"HTTP/1.1 101"), "upgrade refused");
        client.buf.drain(..end);
        client.send(b"40");
        while !client.recv().starts_with(b"40") {}
        client
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).expect("read");
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn send(&mut self, text: &[u8]) {
        let mut out = Vec::new();
        frame::put_frame(&mut out, true, OpCode::Text, text, Some(MASK));
        self.stream.write_all(&out).expect("write");
    }

    /// The next text message that is not a heartbeat (those are answered).
    fn recv(&mut self) -> Vec<u8> {
        loop {
            let header = loop {
                if let Some(h) = frame::parse_header(&self.buf, false).expect("a server frame") {
                    let end = h.header_len + h.len as usize;
                    if self.buf.len() >= end {
                        break h;
                    }
                }
                self.fill();
            };
            let end = header.header_len + header.len as usize;
            let payload = self.buf[header.header_len..end].to_vec();
            self.buf.drain(..end);
            assert_eq!(header.opcode, OpCode::Text, "unexpected frame");
            if payload == b"2" {
                self.send(b"3");
                continue;
            }
            return payload;
        }
    }
}

/// Send `events` packets made by `packet(id)` one at a time, reading `answers` messages
/// after each, and one on each of the `listeners`.
fn round_trips(
    client: &mut Client,
    listeners: &mut [Client],
    events: u64,
    answers: usize,
    packet: &dyn Fn(u64) -> Vec<u8>,
) {
    for id in 0..events {
        client.send(&packet(id));
        for _ in 0..answers {
            client.recv();
        }
        for listener in listeners.iter_mut() {
            listener.recv();
        }
    }
}

/// One scenario for the client thread: a name, the answers each event gets, the other
/// sockets connected meanwhile (each receives one message per event), the packet.
type Scenario = (&'static str, usize, usize, fn(u64) -> Vec<u8>);

const ARG: &str = "\"0123456789abcdef0123456789abcdef\"";

const SCENARIOS: [Scenario; 4] = [
    ("echo = { ack = \"{args}\" } (an ack)", 1, 0, |id| {
        format!("42{id}[\"echo\",{ARG}]").into_bytes()
    }),
    ("ping = \"emit\" (an event back and an ack)", 2, 0, |id| {
        format!("42{id}[\"ping\",{ARG}]").into_bytes()
    }),
    ("\"chat message\" = \"io\" (to 1 socket)", 1, 0, |_| {
        format!("42[\"chat message\",{ARG}]").into_bytes()
    }),
    ("\"chat message\" = \"io\" (to 100 sockets)", 1, 99, |_| {
        format!("42[\"chat message\",{ARG}]").into_bytes()
    }),
];

fn main() {
    let env = Env {
        base_dir: Path::new("."),
        var: &|_| None,
    };
    let table =
        routing::compile(ROUTES, "bench/routes.toml", &env).unwrap_or_else(|r| panic!("{r}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = Server::new(App::new(table), None);
    runtime.spawn(server.serve(listener, std::future::pending()));

    // Per scenario the client thread warms up, says so, runs the counted round trips and
    // says it is done; this thread drives the server meanwhile, counting the second part.
    type Signals = (oneshot::Sender<()>, oneshot::Sender<()>);
    let (signals_tx, signals_rx) = mpsc::channel::<Signals>();
    let client = std::thread::spawn(move || {
        let mut client = Client::connect(addr);
        let mut listeners = Vec::new();
        for (_, answers, others, packet) in SCENARIOS {
            let (warm, done) = signals_rx.recv().expect("the server thread waits");
            while listeners.len() < others {
                listeners.push(Client::connect(addr));
            }
            round_trips(&mut client, &mut listeners, WARMUP, answers, &packet);
            let _ = warm.send(());
            round_trips(&mut client, &mut listeners, EVENTS, answers, &packet);
            let _ = done.send(());
        }
    });
    println!("server heap allocations per event (bench/routes.toml, WebSocket clients):");
    for (name, _, _, _) in SCENARIOS {
        let (warm_tx, warm_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        signals_tx
            .send((warm_tx, done_tx))
            .expect("the client runs");
        runtime.block_on(warm_rx).expect("the client warmed up");
        let info = allocation_counter::measure(|| {
            runtime.block_on(done_rx).expect("the client finished");
        });
        println!(
            "{name:<46} {:>6.2} allocations/event {:>8.1} bytes/event",
            info.count_total as f64 / EVENTS as f64,
            info.bytes_total as f64 / EVENTS as f64,
        );
    }
    client.join().expect("client thread");
}
