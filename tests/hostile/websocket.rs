//! The WebSocket edge: messages bounded as a whole, the RFC's rules enforced, bursts absorbed.

use switchboard::engineio::frame::OpCode;

use crate::support::raw::{RawWs, client_frame, echo_burst, text_frame};
use crate::support::{Polling, start, within};

const CHAT: &str = r#"[server]
max_payload = "1KB"
[namespaces."/".events]
"chat message" = "io"
"#;

#[tokio::test]
async fn a_message_fragmented_past_max_payload_closes_only_its_session() {
    let server = start(CHAT).await;
    let other = Polling::open(server.addr).await;
    other.connect().await;
    let (mut attacker, _) = RawWs::socket(server.addr).await;

    // 2,000 fragments of 1,000 bytes: each frame is under max_payload, the message is 2 MB.
    let mut burst = client_frame(false, OpCode::Text, br#"42["chat message",""#);
    let piece = vec![b'x'; 1000];
    for _ in 0..2000 {
        burst.extend_from_slice(&client_frame(false, OpCode::Continuation, &piece));
    }
    burst.extend_from_slice(&client_frame(true, OpCode::Continuation, br#""]"#));
    // The server may close before it has read everything: a failed write is fine.
    let _ = attacker.try_write(&burst).await;
    assert_eq!(attacker.closed().await, Some(1009), "closed as too big");

    other.send(r#"42["chat message","still here"]"#).await;
    assert_eq!(other.recv().await, r#"42["chat message","still here"]"#);
}

#[tokio::test]
async fn peers_stopped_mid_frame_keep_their_bytes_and_cost_the_others_nothing() {
    // Reads of every connection share a block of the thread: a frame whose rest has not
    // come is moved out of it, so the traffic of others goes on and the frame, finished
    // later, arrives whole.
    let server = start(CHAT).await;
    let mut stalled = Vec::new();
    let mut rests = Vec::new();
    for n in 0..20 {
        let (mut ws, _) = RawWs::socket(server.addr).await;
        let frame = text_frame(&format!(r#"42["chat message","stalled {n}"]"#));
        let (start, rest) = frame.split_at(frame.len() / 2);
        ws.write(start).await;
        stalled.push(ws);
        rests.push(rest.to_vec());
    }
    let (mut other, _) = RawWs::socket(server.addr).await;
    for n in 0..200 {
        let text = format!(r#"42["chat message","other {n}"]"#);
        other.send_text(&text).await;
        assert_eq!(other.recv_event().await, text);
    }
    for (ws, rest) in stalled.iter_mut().zip(&rests) {
        ws.write(rest).await;
    }
    let mut finished: Vec<String> = Vec::new();
    for _ in 0..20 {
        finished.push(other.recv_event().await);
    }
    finished.sort();
    let mut expected: Vec<String> = (0..20)
        .map(|n| format!(r#"42["chat message","stalled {n}"]"#))
        .collect();
    expected.sort();
    assert_eq!(finished, expected);
}

#[tokio::test]
async fn a_message_of_exactly_max_payload_in_fragments_is_accepted() {
    let server = start(CHAT).await;
    let (mut ws, _) = RawWs::socket(server.addr).await;
    let head = br#"42["chat message",""#;
    let tail = br#""]"#;
    let body = vec![b'y'; 1000 - head.len() - tail.len()];
    let mut frames = client_frame(false, OpCode::Text, head);
    frames.extend_from_slice(&client_frame(false, OpCode::Continuation, &body));
    frames.extend_from_slice(&client_frame(true, OpCode::Continuation, tail));
    ws.write(&frames).await;
    let echoed = ws.recv_event().await;
    assert_eq!(echoed.len(), 1000, "the whole message came back");
}

#[tokio::test]
async fn an_unmasked_client_frame_is_a_protocol_error() {
    let server = start(CHAT).await;
    let (mut ws, _) = RawWs::socket(server.addr).await;
    let mut unmasked = Vec::new();
    switchboard::engineio::frame::put_frame(
        &mut unmasked,
        true,
        OpCode::Text,
        br#"42["chat message","hi"]"#,
        None,
    );
    ws.write(&unmasked).await;
    assert_eq!(ws.closed().await, Some(1002));
}

#[tokio::test]
async fn reserved_bits_and_stray_continuations_are_protocol_errors() {
    let server = start(CHAT).await;
    let (mut ws, _) = RawWs::socket(server.addr).await;
    let mut frame = text_frame("2");
    frame[0] |= 0x40;
    ws.write(&frame).await;
    assert_eq!(ws.closed().await, Some(1002));

    let (mut ws, _) = RawWs::socket(server.addr).await;
    ws.write(&client_frame(true, OpCode::Continuation, b"x"))
        .await;
    assert_eq!(ws.closed().await, Some(1002));
}

#[tokio::test]
async fn a_text_message_that_is_not_utf8_closes_with_1007() {
    let server = start(CHAT).await;
    let (mut ws, _) = RawWs::socket(server.addr).await;
    ws.write(&client_frame(true, OpCode::Text, &[b'4', 0xFF, 0xFE]))
        .await;
    assert_eq!(ws.closed().await, Some(1007));
}

/// 20 readers, and one sender who writes 1,100 small events in one write: every reader gets
/// all of them and nobody is disconnected (the queue is bounded in bytes, not packets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_small_messages_disconnects_no_reader() {
    let server = start(
        r#"[limits]
events_per_socket = "off"
[namespaces."/".events]
"chat message" = "broadcast"
"#,
    )
    .await;
    let mut readers = Vec::new();
    for _ in 0..20 {
        readers.push(RawWs::socket(server.addr).await.0);
    }
    let (mut sender, _) = RawWs::socket(server.addr).await;
    let mut burst = Vec::new();
    for i in 0..1100 {
        burst.extend_from_slice(&text_frame(&format!(r#"42["chat message","m{i:04}"]"#)));
    }
    sender.write(&burst).await;
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|mut r| {
            tokio::spawn(async move {
                for i in 0..1100 {
                    let got = r.recv_event().await;
                    assert_eq!(got, format!(r#"42["chat message","m{i:04}"]"#));
                }
                r
            })
        })
        .collect();
    let mut still_open = Vec::new();
    for task in tasks {
        still_open.push(
            within("a reader to get the whole burst", task)
                .await
                .expect("reader"),
        );
    }
    let snapshot = server.server.app().snapshot();
    let hits: Vec<_> = switchboard::limits::Limit::ALL
        .iter()
        .map(|l| (l.as_str(), server.server.app().hits().count(*l)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        snapshot.adapters["/"].socket_count(),
        21,
        "nobody left; limits hit: {hits:?}, closes: {:?}",
        server.server.app().engine().stats().closes()
    );
}

/// 3,000 `emitWithAck` pipelined in one write: every one is answered.
#[tokio::test]
async fn three_thousand_pipelined_acks_are_all_answered() {
    let server = start(
        r#"[limits]
events_per_socket = "off"
[namespaces."/".events]
echo = { ack = "{args}" }
"#,
    )
    .await;
    let (mut ws, _) = RawWs::socket(server.addr).await;
    let burst = echo_burst(3000);
    // Read while writing: the server answers as it goes.
    let (mut read, mut write) = ws.stream.split();
    let writer = async {
        use tokio::io::AsyncWriteExt;
        write.write_all(&burst).await.expect("write");
    };
    let reader = async {
        use tokio::io::AsyncReadExt;
        let mut pending = Vec::new();
        let mut acks = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while acks.len() < 3000 {
            let n = read.read(&mut buf).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            pending.extend_from_slice(&buf[..n]);
            let (frames, used) = crate::support::raw::text_frames(&pending);
            pending.drain(..used);
            acks.extend(frames.into_iter().filter(|f| f.starts_with("43")));
        }
        acks
    };
    let (_, acks) = within("3,000 acks", async { tokio::join!(writer, reader) }).await;
    let expected: Vec<String> = (0..3000).map(|i| format!("43{i}[{i}]")).collect();
    assert_eq!(acks, expected, "every ack, once, in order");
}
