//! Micro-benchmarks of switchboard's hot paths: Engine.IO packet and payload codecs,
//! Socket.IO packet parse and encode, route resolution, a broadcast to 1,000 sockets
//! through [`LocalAdapter`], and a join and leave beside broadcasts in progress on another
//! thread (what a room change waits for).
//!
//! `cargo bench --bench hot_paths` (add `-- broadcast` to run one group). The end-to-end
//! numbers come from `bench/compare.sh`; these isolate one step each.
//!
//! The broadcast bench needs real sockets. `Socket::new` and `Session::new` are crate-private,
//! so it starts a server in-process, connects 1,000 WebSocket clients, takes their sockets
//! from the server's adapter (`Adapter::sockets`) and adds them to a fresh `LocalAdapter`.
//! Everything runs on one current-thread runtime: the timed part is `broadcast` alone
//! (selection, and queueing one shared `Bytes` per socket, which wakes its writer task);
//! the writes to the clients happen, untimed, between batches.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use switchboard::adapter::{Adapter, BroadcastOptions, LocalAdapter};
use switchboard::app::App;
use switchboard::engineio::frame::{self, OpCode};
use switchboard::engineio::{Packet as EnginePacket, payload};
use switchboard::routing::{self, Env, RouteTable, Scope};
use switchboard::server::Server;
use switchboard::socketio::Encoded;
use switchboard::socketio::packet::{Args, Packet as SioPacket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A 32-byte chat message as a client sends it, in the Engine.IO text packet.
const CHAT: &[u8] = br#"42["chat message","0123456789abcdef0123456789abcdef"]"#;
/// The same with an ack id, as `emitWithAck` sends it.
const ECHO: &[u8] = br#"4217["echo","0123456789abcdef0123456789abcdef"]"#;

const ROUTES: &str = r#"
[server]
serve_client = false

# 1,000 clients from one address, as fast as they can connect.
[limits]
handshakes_per_ip = "off"
max_connections_per_ip = "off"

[namespaces."/".events]
"chat message" = "io"
echo = { ack = "{args}" }
ping = "emit"
"room message" = { to = "room", room = "{0.room}", data = ["{socket.id}", "{0.text}"] }
"#;

fn compile() -> RouteTable {
    let env = Env {
        base_dir: Path::new("."),
        var: &|_| None,
    };
    routing::compile(ROUTES, "routes.toml", &env).unwrap_or_else(|r| panic!("{r}"))
}

fn engineio(c: &mut Criterion) {
    let mut g = c.benchmark_group("engineio");
    let chat = Bytes::from_static(CHAT);
    g.bench_function("parse_text", |b| {
        b.iter(|| EnginePacket::parse_text(black_box(chat.clone())))
    });
    let message = EnginePacket::Message(chat.slice(1..));
    g.bench_function("encode", |b| b.iter(|| black_box(&message).encode()));

    let packets: Vec<EnginePacket> = (0..10).map(|_| message.clone()).collect();
    let body = payload::encode(&packets);
    g.throughput(Throughput::Elements(10));
    g.bench_function("payload_decode_10", |b| {
        b.iter(|| payload::decode(black_box(body.clone())))
    });
    g.bench_function("payload_encode_10", |b| {
        let mut out = BytesMut::with_capacity(1024);
        b.iter(|| {
            out.clear();
            for p in black_box(&packets) {
                payload::encode_into(p, &mut out);
            }
            out.len()
        })
    });
    g.finish();
}

fn socketio(c: &mut Criterion) {
    let mut g = c.benchmark_group("socketio");
    let chat = Bytes::from_static(&CHAT[1..]);
    let echo = Bytes::from_static(&ECHO[1..]);
    g.bench_function("parse_event", |b| {
        b.iter(|| SioPacket::parse(black_box(chat.clone()), 10))
    });
    g.bench_function("parse_event_with_ack", |b| {
        b.iter(|| SioPacket::parse(black_box(echo.clone()), 10))
    });
    let none: Arc<[Bytes]> = Arc::from([]);
    let args = br#""0123456789abcdef0123456789abcdef""#;
    g.bench_function("encode_event", |b| {
        b.iter(|| {
            Encoded::event(
                "/",
                black_box("chat message"),
                Args::Raw(black_box(args)),
                none.clone(),
                None,
            )
        })
    });
    let data = &CHAT[2..];
    g.bench_function("encode_event_data", |b| {
        b.iter(|| Encoded::event_data("/", black_box(data), none.clone()))
    });
    g.bench_function("encode_ack", |b| {
        b.iter(|| Encoded::ack("/", 17, Args::Raw(black_box(args)), none.clone()))
    });
    g.finish();
}

/// Template values of one event.
struct BenchScope {
    args: Vec<Value>,
}

impl Scope for BenchScope {
    fn args(&self) -> Option<&[Value]> {
        Some(&self.args)
    }
    fn socket_id(&self) -> &str {
        "AAAAAAAAAAAAAAAAAAAA"
    }
    fn socket_data(&self) -> Option<&Value> {
        None
    }
    fn auth(&self) -> Option<&Value> {
        None
    }
    fn query(&self, _key: &str) -> Option<&str> {
        None
    }
}

fn routes(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing");
    g.bench_function("compile", |b| b.iter(compile));
    let table = compile();
    let ns = table.namespace("/").expect("declared");
    let scope = BenchScope {
        args: vec![json!("0123456789abcdef0123456789abcdef")],
    };
    for event in ["chat message", "echo"] {
        // As received: the name is a slice of the packet.
        let name = bytestring::ByteString::from_static(event);
        g.bench_function(format!("lookup_resolve/{event}"), |b| {
            b.iter(|| {
                let route = ns.route(black_box(event)).expect("routed");
                route.resolve(&name, &scope)
            })
        });
    }
    let room_scope = BenchScope {
        args: vec![json!({"room": "lobby", "text": "0123456789abcdef"})],
    };
    let route = ns.route("room message").expect("routed");
    let name = bytestring::ByteString::from_static("room message");
    g.bench_function("lookup_resolve/room message (templates)", |b| {
        b.iter(|| route.resolve(&name, black_box(&room_scope)))
    });
    g.finish();
}

/// A minimal WebSocket client: joins `/`, answers heartbeats, counts the EVENTs it gets.
async fn client(addr: std::net::SocketAddr, events: Arc<AtomicU64>) {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return eprintln!("connect: {e}"),
    };
    s.set_nodelay(true).expect("nodelay");
    let req = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    if let Err(e) = s.write_all(req.as_bytes()).await {
        return eprintln!("upgrade: {e}");
    }
    let mut buf = Vec::new();
    let mut head_done = false;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(0) => return eprintln!("closed"),
            Err(e) => return eprintln!("read: {e}"),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if !head_done {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            buf.drain(..end + 4);
            head_done = true;
            // A client sends nothing before the handshake response (RFC 6455 §4.1).
            if s.write_all(&masked(b"40")).await.is_err() {
                return eprintln!("CONNECT failed");
            }
        }
        let mut pos = 0;
        let mut pong = false;
        while let Ok(Some(h)) = frame::parse_header(&buf[pos..], false) {
            let end = pos + h.header_len + h.len as usize;
            if end > buf.len() {
                break;
            }
            let payload = &buf[pos + h.header_len..end];
            if payload.starts_with(b"42") {
                events.fetch_add(1, Ordering::Relaxed);
            } else if payload == b"2" {
                pong = true;
            }
            pos = end;
        }
        buf.drain(..pos);
        if pong {
            let _ = s.write_all(&masked(b"3")).await;
        }
    }
}

/// A masked client text frame (with the crate's one frame codec).
fn masked(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::put_frame(&mut out, true, OpCode::Text, text, Some([1, 2, 3, 4]));
    out
}

const SOCKETS: usize = 1000;

fn broadcast(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let events = Arc::new(AtomicU64::new(0));
    let (local, server) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = Server::new(App::new(compile()), None);
        tokio::spawn(server.clone().serve(listener, std::future::pending()));
        for _ in 0..SOCKETS {
            tokio::spawn(client(addr, events.clone()));
        }
        let source = server.app().snapshot().adapters["/"].clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let sockets = source.sockets(&BroadcastOptions::all());
            if sockets.len() == SOCKETS {
                let local = Arc::new(LocalAdapter::new());
                for s in sockets {
                    local.add(s);
                }
                break (local, server.clone());
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {SOCKETS} clients connected",
                sockets.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let packet = Encoded::event_data("/", &CHAT[2..], Arc::from([]));
    let one = local.sockets(&BroadcastOptions::all())[0].id();

    let mut g = c.benchmark_group("broadcast");
    g.throughput(Throughput::Elements(SOCKETS as u64));
    for (name, opts, reach) in [
        ("io_1000_sockets", BroadcastOptions::all(), SOCKETS),
        (
            "all_but_sender_1000_sockets",
            BroadcastOptions::all_but(one),
            SOCKETS - 1,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    // Stay well under the 1024-packet queue of each socket.
                    let batch = left.min(256);
                    left -= batch;
                    let target = events.load(Ordering::Relaxed) + batch * reach as u64;
                    timed += rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..batch {
                            black_box(local.broadcast(&packet, &opts));
                        }
                        start.elapsed()
                    });
                    rt.block_on(async {
                        let deadline = Instant::now() + Duration::from_secs(30);
                        while events.load(Ordering::Relaxed) < target {
                            assert!(Instant::now() < deadline, "deliveries stalled");
                            tokio::task::yield_now().await;
                        }
                    });
                }
                timed
            })
        });
    }

    // A join and a leave of one socket while another thread broadcasts to the 1,000 sockets
    // without pause (volatile: a socket that is behind skips it, so nothing piles up): the
    // time a room change waits for the broadcasts in progress.
    g.throughput(Throughput::Elements(1));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let broadcaster = {
        let (local, stop, packet) = (local.clone(), stop.clone(), packet.clone());
        std::thread::spawn(move || {
            let volatile = BroadcastOptions {
                volatile: true,
                ..BroadcastOptions::all()
            };
            while !stop.load(Ordering::Relaxed) {
                black_box(local.broadcast(&packet, &volatile));
            }
        })
    };
    g.bench_function("join_leave_while_another_thread_broadcasts", |b| {
        b.iter(|| {
            local.join(one, "lobby");
            local.leave(one, "lobby");
        })
    });
    stop.store(true, Ordering::Relaxed);
    broadcaster.join().expect("broadcaster");
    g.finish();
    drop(server);
}

criterion_group!(benches, engineio, socketio, routes, broadcast);
criterion_main!(benches);
