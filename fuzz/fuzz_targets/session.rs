//! Whole sessions driven by any sequence of packets: three sessions of one server (two on
//! WebSocket, one polling) take Engine.IO packets — Socket.IO CONNECTs, events, acks,
//! binary attachments, garbage — through the whole stack (rooms, routes, templates, a
//! script), and are closed at the end. Never a panic; every session is gone afterwards.
//!
//! Input: records separated by 0x1e; a record's first byte picks the session (its value
//! modulo 3) and, with its high bit set, a binary message; the rest is the packet.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchboard::app::{App, SwitchboardEngine};
use switchboard::engineio::{CloseReason, Packet, Transport};
use switchboard::routing::{Env, compile};

const ROUTES: &str = r#"
[server]
max_payload = "10KB"
[limits]
rooms_per_socket = 8
namespaces_per_session = 3
[namespaces."/".events]
"chat message" = "io"
join = { join = "{0}", ack = "ok" }
leave = { leave = "{0}" }
room = { to = "room", room = "{0.room}", data = "{0.text}" }
echo = { ack = "{args}" }
hello = [ { to = "emit", event = "welcome", data = "hi {socket.id}" }, { to = "broadcast", volatile = true } ]
bye = { script = "s.rhai" }
"*" = { to = "emit", event = "unknown", data = "{args}" }
connect = { to = "broadcast", event = "joined", data = "{socket.id}" }
disconnect = { to = "broadcast", event = "left", data = "{socket.id}" }
[namespaces."/chat".auth]
token = ["t"]
[namespaces."/chat".events]
msg = "broadcast"
"#;

const SCRIPT: &str = r#"
fn on_event(ctx, args) {
    ctx.join("r" + args.len());
    ctx.emit("x", args);
    if args.len() > 2 { ctx.disconnect(); }
}
"#;

struct World {
    runtime: tokio::runtime::Runtime,
    app: Arc<App>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("switchboard-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("s.rhai"), SCRIPT).expect("script");
        let env = Env {
            base_dir: &dir,
            var: &|_| None,
        };
        let routes = compile(ROUTES, "routes.toml", &env).expect("the fuzz routes compile");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let app = runtime.block_on(async { Arc::new(App::new(routes)) });
        World { runtime, app }
    })
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    world.runtime.block_on(async {
        let engine = world.app.engine();
        let conns = [Transport::Websocket, Transport::Polling, Transport::Websocket]
            .map(|t| engine.fuzz_open(t));
        for record in data.split(|b| *b == 0x1e) {
            let Some((&head, body)) = record.split_first() else {
                continue;
            };
            let conn = &conns[usize::from(head % 3)];
            let body = Bytes::copy_from_slice(body);
            let packet = if head & 0x80 != 0 {
                Packet::Binary(body)
            } else {
                match Packet::parse_text(body) {
                    Ok(p) => p,
                    Err(_) => {
                        conn.session.close(CloseReason::ParseError);
                        continue;
                    }
                }
            };
            if let Some(pending) = engine.fuzz_packet(conn, packet) {
                let _ = tokio::time::timeout(Duration::from_secs(2), pending).await;
            }
            for c in &conns {
                let _ = SwitchboardEngine::fuzz_sent(c);
            }
        }
        for c in &conns {
            c.session.close(CloseReason::TransportClose);
        }
        // Every heartbeat task sees its close, runs the disconnect routes and unregisters.
        let gone = async {
            while engine.session_count() > 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), gone)
            .await
            .expect("every session is gone once closed");
    });
});
