//! Clients that stop reading: let go as soon as their queue overflows or a write to them
//! stalls past `write_timeout`, their connection reset so the kernel frees what it held;
//! everyone else keeps receiving; the server's memory stays bounded.

use std::io::ErrorKind;

use tokio::io::AsyncReadExt;

use crate::support::process::{Process, binary};
use crate::support::raw::{RawWs, text_frame};
use crate::support::{Msg, TempDir, TestServer, start, until, within};

/// `n` events of 10 KB, numbered from `from`.
fn flood(from: usize, n: usize) -> Vec<u8> {
    let big = "x".repeat(10_000);
    let mut out = Vec::new();
    for i in from..from + n {
        out.extend_from_slice(&text_frame(&format!(r#"42["big",{i},"{big}"]"#)));
    }
    out
}

/// Events of 10 KB sent at once: a quarter of the smallest `queue_bytes` below, so a reader
/// that reads each round before the next never holds more than that, however late it runs.
const PER_ROUND: usize = 25;

/// Send `rounds` × 25 events of 10 KB from `sender`, each round once `reader` has the
/// previous one: a reader that keeps up never falls behind; a client that does not read
/// receives all of it too (10 MB per 40 rounds).
async fn stream_to(sender: &mut RawWs, reader: &mut RawWs, rounds: usize, server: &TestServer) {
    for round in 0..rounds {
        sender.write(&flood(round * PER_ROUND, PER_ROUND)).await;
        let mut got = 0;
        while got < PER_ROUND {
            match reader.recv().await {
                Msg::Text(t) if t.starts_with("42[\"big\"") => got += 1,
                Msg::Text(t) if t == "2" => reader.send_text("3").await,
                other => panic!(
                    "the reader got {other:?} in round {round}; closes {:?}",
                    server.server.app().engine().stats().closes()
                ),
            }
        }
    }
}

fn slow_closes(server: &TestServer) -> u64 {
    server
        .server
        .app()
        .engine()
        .stats()
        .closes()
        .into_iter()
        .find(|(reason, _)| *reason == "slow")
        .map_or(0, |(_, n)| n)
}

/// Everything the stalled client can still read, and how its connection ended.
async fn drain(ws: &mut RawWs) -> (usize, ErrorKind) {
    within("the stalled connection to end", async {
        let mut total = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match ws.stream.read(&mut buf).await {
                Ok(0) => return (total, ErrorKind::UnexpectedEof),
                Ok(n) => total += n,
                Err(e) => return (total, e.kind()),
            }
        }
    })
    .await
}

/// A stalled client, while a sender streams 10 MB to it and to a reader.
async fn attack(server: &TestServer) -> RawWs {
    let (mut sender, _) = RawWs::socket(server.addr).await;
    let (mut reader, _) = RawWs::socket(server.addr).await;
    let (stalled, _) = RawWs::socket_with_small_buffer(server.addr).await;
    stream_to(&mut sender, &mut reader, 40, server).await;
    stalled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_queue_overflows_is_reset_and_the_others_get_everything() {
    let server = start(
        r#"[limits]
events_per_socket = "off"
queue_bytes = "1MB"
[namespaces."/".events]
big = "broadcast"
"#,
    )
    .await;
    let mut stalled = attack(&server).await;
    until("the stalled session to be let go", || {
        slow_closes(&server) == 1
    })
    .await;
    let (read, end) = drain(&mut stalled).await;
    assert_eq!(
        end,
        ErrorKind::ConnectionReset,
        "reset, not closed gracefully"
    );
    assert!(read < 8_000_000, "only what the kernel held: {read} bytes");
    let hits = server.server.app().hits();
    assert_eq!(hits.count(switchboard::limits::Limit::QueueBytes), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_writes_stall_is_let_go_at_the_write_timeout() {
    let server = start(
        r#"[limits]
events_per_socket = "off"
queue_bytes = "64MB"
volatile_bytes = "1MB"
write_timeout = "300ms"
[namespaces."/".events]
big = "broadcast"
"#,
    )
    .await;
    let mut stalled = attack(&server).await;
    until("the stalled writes to time out", || {
        slow_closes(&server) == 1
    })
    .await;
    let hits = server.server.app().hits();
    assert_eq!(hits.count(switchboard::limits::Limit::WriteTimeout), 1);
    assert_eq!(hits.count(switchboard::limits::Limit::QueueBytes), 0);
    let (_, end) = drain(&mut stalled).await;
    assert_eq!(end, ErrorKind::ConnectionReset);
}

/// The whole process, measured from /proc: twenty clients that stop reading a stream of
/// broadcasts and ten that stop reading a 200 MB file leave the server's memory where a
/// normal day would (the bound, 64 MiB of growth, is far above what the scenario needs and
/// far below what an unbounded buffer takes: 10 downloads of 200 MB read whole were 2 GB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_leave_the_server_memory_bounded() {
    let dir = TempDir::new("memory");
    let file = std::fs::File::create(dir.path().join("big.bin")).unwrap();
    file.set_len(200_000_000).unwrap();
    std::fs::create_dir_all(dir.path().join("public")).unwrap();
    std::fs::rename(
        dir.path().join("big.bin"),
        dir.path().join("public/big.bin"),
    )
    .unwrap();
    let config = dir.write(
        "routes.toml",
        r#"[limits]
events_per_socket = "off"
write_timeout = "1s"
[[static]]
mount = "/"
dir = "public"
[namespaces."/".events]
big = "broadcast"
"#,
    );
    let process = Process::spawn(binary(&config));
    let addr = process.addr;
    let before = process.rss_kib();

    let mut downloads = Vec::new();
    for _ in 0..10 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::AsyncWriteExt;
        stream
            .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        downloads.push(stream);
    }
    let mut stalled = Vec::new();
    for _ in 0..20 {
        stalled.push(RawWs::socket_with_small_buffer(addr).await.0);
    }
    let (mut sender, _) = RawWs::socket(addr).await;
    let (mut reader, _) = RawWs::socket(addr).await;
    for round in 0..30 {
        sender.write(&flood(round * 100, 100)).await;
        let mut got = 0;
        while got < 100 {
            if reader.recv_event().await.starts_with("42[\"big\"") {
                got += 1;
            }
        }
    }
    let after = process.rss_kib();
    let growth = after.saturating_sub(before);
    eprintln!("RSS {before} KiB before, {after} KiB after the attack");
    assert!(
        growth < 64 * 1024,
        "RSS grew by {growth} KiB ({before} → {after} KiB)"
    );
    // The stalled clients are let go: each connection ends.
    for mut ws in stalled {
        drain(&mut ws).await;
    }
    drop(downloads);
}
