//! Operating switchboard: health, readiness, metrics, graceful shutdown, and the container
//! layout started outside Docker.

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use http::Method;
use tokio::io::AsyncWriteExt;

use crate::support::process::{Process, binary};
use crate::support::{Msg, Polling, TempDir, Ws, get, request, start, within};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn healthz_and_readyz_report_version_config_and_connections() {
    let server =
        start("[namespaces.\"/\".events]\nx = \"io\"\n[namespaces.\"/chat\".events]\nx = \"io\"\n")
            .await;
    let (_ws, _) = Ws::socket(server.addr).await;
    let p = Polling::open(server.addr).await;
    p.connect().await;

    let health = get(server.addr, "/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.header("content-type"), Some("application/json"));
    let h = json(health.text());
    assert_eq!(h["status"], "ok");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        (
            h["sessions"].as_u64(),
            h["sessions_polling"].as_u64(),
            h["sessions_websocket"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(h["sockets"], serde_json::json!({"/": 2, "/chat": 0}));
    assert!(h["uptime_seconds"].is_u64());

    let ready = get(server.addr, "/readyz").await;
    assert_eq!(
        (ready.status.as_u16(), json(ready.text())["status"].as_str()),
        (200, Some("ready"))
    );
}

#[tokio::test]
async fn metrics_count_a_scripted_scenario_exactly() {
    let server = start(
        "[namespaces.\"/\".events]\n\"chat message\" = \"io\"\n[namespaces.\"/vip\".auth]\ntoken = [\"t\"]\n[namespaces.\"/vip\".events]\nx = \"io\"\n",
    )
    .await;
    let (mut c1, _) = Ws::socket(server.addr).await;
    let (mut c2, _) = Ws::socket(server.addr).await;
    c1.send("40/nowhere,").await;
    assert!(c1.recv_text().await.starts_with("44/nowhere,"));
    c1.send("40/vip,{\"token\":\"wrong\"}").await;
    assert!(c1.recv_text().await.starts_with("44/vip,"));
    for n in 0..3 {
        c1.send(&format!("42[\"chat message\",{n}]")).await;
    }
    c1.send("42[\"unrouted\",1]").await;
    c2.send("42[\"also unrouted\"]").await;
    c2.send("427[\"chat message\",\"with ack\"]").await;
    // c1: its 3 messages + c2's; c2: the same 4, then its ack.
    for _ in 0..4 {
        assert!(c1.recv_text().await.starts_with("42[\"chat message\""));
    }
    // c2's own message and ack may come before c1's: order across senders is free.
    let mut frames = Vec::new();
    for _ in 0..5 {
        frames.push(c2.recv_text().await);
    }
    assert_eq!(
        frames
            .iter()
            .filter(|f| f.starts_with("42[\"chat message\""))
            .count(),
        4,
        "{frames:?}"
    );
    assert!(frames.contains(&"437[]".to_owned()), "{frames:?}");

    let reply = get(server.addr, "/metrics").await;
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = reply.text();
    for line in [
        "switchboard_sockets{namespace=\"/\"} 2",
        "switchboard_sockets{namespace=\"/vip\"} 0",
        "switchboard_sessions{transport=\"polling\"} 0",
        "switchboard_sessions{transport=\"websocket\"} 2",
        "switchboard_events_received_total{namespace=\"/\",event=\"_other\"} 2",
        "switchboard_events_received_total{namespace=\"/\",event=\"chat message\"} 4",
        "switchboard_deliveries_total 8",
        "switchboard_drops_total{reason=\"closed\"} 0",
        "switchboard_drops_total{reason=\"queue_full\"} 0",
        "switchboard_acks_total 1",
        "switchboard_connections_total 2",
        "switchboard_disconnections_total 0",
        "switchboard_auth_refusals_total 1",
        "switchboard_invalid_namespace_total 1",
        "switchboard_script_calls_total 0",
        "switchboard_reloads_total{outcome=\"applied\"} 0",
        "switchboard_reloads_total{outcome=\"refused\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    let bytes = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert!(bytes("switchboard_received_bytes_total") > 0);
    assert!(bytes("switchboard_sent_bytes_total") > 0);
}

/// Start a POST on `session` whose body never completes: the connection stays busy, so
/// shutdown must wait for it. Returns the stream; writing 8 more bytes completes the body.
async fn stalled_post(
    addr: std::net::SocketAddr,
    session: &Polling,
    process: &Process,
) -> tokio::net::TcpStream {
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n41",
        session.target()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    process.log_line(&format!("Reading a POST body session={}", session.sid));
    slow
}

fn traced(mut command: Command) -> Command {
    command.env("RUST_LOG", "switchboard=trace");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_nobody_reads_stalls_no_socket() {
    // stderr is a pipe nobody reads (a stalled log collector): once it is full, a log line
    // written by a thread serving sockets would hold that thread, and every socket on it.
    let dir = TempDir::new("unread-log");
    let config = dir.write(
        "routes.toml",
        "[server]\nserve_client = false\n[limits]\nhandshakes_per_ip = \"off\"\n\
         max_connections_per_ip = \"off\"\n[namespaces.\"/\".events]\necho = { ack = \"{args}\" }\n",
    );
    let process = Process::spawn_unread(traced(binary(&config)));
    let (mut kept, _) = Ws::socket(process.addr).await;
    // Each socket that comes and goes logs four lines of about 100 bytes (its session opened
    // and closed, the socket connected and disconnected): 3,000 of them are far more than
    // the pipe holds and the 10,000 lines that may wait for it.
    for round in 0..30 {
        for _ in 0..100 {
            drop(Ws::socket(process.addr).await);
        }
        kept.send(&format!("42{round}[\"echo\",\"still here\"]"))
            .await;
        assert_eq!(
            kept.recv().await,
            Msg::Text(format!("43{round}[\"still here\"]")),
            "the socket kept open answers after {} others came and went",
            (round + 1) * 100
        );
    }
    let metrics = get(process.addr, "/metrics").await;
    let dropped: u64 = metrics
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_log_lines_dropped_total "))
        .expect("the dropped log lines are counted")
        .parse()
        .unwrap();
    assert!(dropped > 0, "lines were dropped, not waited for");
}

// Multi-threaded: the log is awaited by blocking reads while clients run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_polling_and_websocket_clients_and_exits_zero() {
    let dir = TempDir::new("shutdown");
    let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin_addr = admin.local_addr().unwrap();
    drop(admin);
    let config = dir.write(
        "routes.toml",
        format!("[server]\nserve_client = false\nadmin_listen = \"{admin_addr}\"\n[namespaces.\"/\".events]\nx = \"io\"\n"),
    );
    let mut process = Process::spawn(traced(binary(&config)));
    process.log_line("Serving /metrics");
    let addr = process.addr;
    let (mut ws, _) = Ws::socket(addr).await;
    // An Engine.IO session whose only poll so far was the handshake (answered at once), so
    // the first "Long-poll waiting" of it is the one below.
    let p = Polling::open(addr).await;
    let busy = Polling::open(addr).await;
    assert_eq!(get(admin_addr, "/readyz").await.status, 200);
    assert_eq!(
        get(addr, "/metrics").await.status,
        404,
        "metrics live on the admin address"
    );
    assert_eq!(get(admin_addr, "/metrics").await.status, 200);

    let sid = p.sid.clone();
    let pending = tokio::spawn(async move { p.get().await });
    process.log_line(&format!("Long-poll waiting session={sid}"));
    let mut slow = stalled_post(addr, &busy, &process).await;

    process.signal("TERM");
    process.log_line("shutting down gracefully");
    // The pending poll gets its close packet; the WebSocket a close frame; no namespace
    // DISCONNECT, so the stock client reconnects to whatever serves next.
    let released = within("the pending poll", pending).await.unwrap();
    assert_eq!((released.status.as_u16(), released.text()), (200, "1"));
    assert_eq!(ws.recv().await, Msg::Close(1000));
    // The stalled request holds shutdown up: readiness is false meanwhile.
    let not_ready = get(admin_addr, "/readyz").await;
    assert_eq!(
        (
            not_ready.status.as_u16(),
            json(not_ready.text())["status"].as_str()
        ),
        (503, Some("shutting down"))
    );

    slow.write_all(b"ghijklmn").await.unwrap();
    let code = tokio::task::spawn_blocking(move || process.exit_code())
        .await
        .unwrap();
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let dir = TempDir::new("second-signal");
    let config = dir.write("routes.toml", "[server]\nserve_client = false\n");
    let mut process = Process::spawn(traced(binary(&config)));
    let busy = Polling::open(process.addr).await;
    let _slow = stalled_post(process.addr, &busy, &process).await;
    process.signal("INT");
    process.log_line("shutting down gracefully");
    process.signal("INT");
    // Written before the exit, although lines are written by a thread of their own.
    process.log_line("Second signal: exiting now");
    let code = tokio::task::spawn_blocking(move || process.exit_code())
        .await
        .unwrap();
    assert_eq!(code, 130);
}

#[tokio::test]
async fn the_container_layout_runs_outside_docker() {
    // The image's layout: a binary, a config folder with routes.toml and its pages, and the
    // client bundle found by flag/env — nothing from the source tree or node_modules nearby.
    let root = TempDir::new("container");
    let bin = root.path().join("usr/local/bin/switchboard");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_switchboard"), &bin).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = root.path().join("usr/share/switchboard/socket.io-client");
    std::fs::create_dir_all(bundle.join("dist")).unwrap();
    let package = repo.join("node_modules/socket.io-client");
    std::fs::copy(package.join("package.json"), bundle.join("package.json")).unwrap();
    for entry in std::fs::read_dir(package.join("dist")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), bundle.join("dist").join(entry.file_name())).unwrap();
    }
    let etc = root.path().join("etc/switchboard");
    root.write(
        "etc/switchboard/routes.toml",
        std::fs::read(repo.join("routes.toml")).unwrap(),
    );
    for page in ["index.html", "chat.html", "chat.js", "style.css"] {
        root.write(
            &format!("etc/switchboard/public/{page}"),
            std::fs::read(repo.join("public").join(page)).unwrap(),
        );
    }

    let mut command = Command::new(&bin);
    command
        .current_dir(root.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("SWITCHBOARD_CONFIG", etc.join("routes.toml"))
        .env("SWITCHBOARD_CLIENT_DIR", &bundle)
        .env_remove("SWITCHBOARD_LISTEN");
    let process = Process::spawn(command);
    let addr = process.addr;
    assert_eq!(json(get(addr, "/healthz").await.text())["status"], "ok");
    let page = get(addr, "/").await;
    assert!(page.text().contains("/socket.io/socket.io.js"));
    let client = get(addr, "/socket.io/socket.io.js").await;
    assert_eq!(client.status, 200);
    assert!(client.text().len() > 10_000);
    let (mut ws, _) = Ws::socket(addr).await;
    ws.send("42[\"chat message\",\"in the container\"]").await;
    assert_eq!(
        ws.recv_text().await,
        "42[\"chat message\",\"in the container\"]"
    );

    // Edits to the mounted config folder hot-reload.
    let routes = std::fs::read_to_string(etc.join("routes.toml")).unwrap();
    std::fs::write(
        etc.join("routes.toml"),
        routes.replace(
            "\"chat message\" = \"io\"",
            "\"chat message\" = \"broadcast\"",
        ),
    )
    .unwrap();
    process.log_line("Routes reloaded");
    let reply = request(addr, Method::GET, "/healthz", &[], Bytes::new()).await;
    assert_eq!(json(reply.text())["reloads"], 1);
}
