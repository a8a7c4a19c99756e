//! WebSocket: direct sessions and upgrades from polling (`2probe` → `3probe`, NOOP to the
//! pending poll, `5`). One reader task and one writer task per connection; the writer drains
//! the session queue in batches, one `write` call per batch.

use std::sync::Arc;

use bytes::Bytes;
use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncWriteExt, WriteHalf};

use super::EngineHandler;
use super::engine::{Conn, Engine, Stats};
use super::error::Error;
use super::packet::Packet;
use super::session::{CloseReason, Session};
use std::sync::atomic::Ordering;

type Stream = TokioIo<Upgraded>;
type Writer = WriteHalf<Stream>;

/// Bytes gathered before one write call; more stays queued for the next.
const BATCH_BYTES: usize = 64 * 1024;

/// Accept the WebSocket handshake for `conn`'s session and spawn the connection's tasks.
/// With `conn.session` on polling this is an upgrade; otherwise a direct session.
pub(crate) fn upgrade<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    conn: Arc<Conn<H::Data>>,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Error> {
    let is_upgrade = conn.session.is_upgrading();
    let Ok((response, fut)) = fastwebsockets::upgrade::upgrade(&mut req) else {
        if is_upgrade {
            conn.session.abort_upgrade();
        } else {
            conn.session.close(CloseReason::TransportError);
        }
        return Err(Error::BadRequest);
    };
    let tasks = engine.tasks().clone();
    tasks.spawn(async move {
        let ws = match fut.await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(sid = %conn.session.sid(), error = %e, "WebSocket upgrade failed");
                if is_upgrade {
                    conn.session.abort_upgrade();
                } else {
                    conn.session.close(CloseReason::TransportError);
                }
                return;
            }
        };
        run(engine, conn, ws, is_upgrade).await;
    });
    Ok(response.map(|_| Full::new(Bytes::new())))
}

/// Complete the WebSocket handshake and close at once: a second WebSocket for a session that
/// has one already.
pub(crate) fn refuse(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Error> {
    let (response, fut) =
        fastwebsockets::upgrade::upgrade(&mut req).map_err(|_| Error::BadRequest)?;
    tokio::spawn(async move {
        if let Ok(ws) = fut.await {
            let mut stream = ws.into_inner();
            let _ = stream.write_all(&close_frame(1000)).await;
            let _ = stream.shutdown().await;
        }
    });
    Ok(response.map(|_| Full::new(Bytes::new())))
}

async fn run<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    conn: Arc<Conn<H::Data>>,
    mut ws: fastwebsockets::WebSocket<Stream>,
    is_upgrade: bool,
) {
    let session = &conn.session;
    // fastwebsockets refuses a message at its limit; a message of exactly `max_payload`
    // bytes is allowed, as over polling and in the reference server.
    ws.set_max_message_size(session.config().max_payload.saturating_add(1));
    ws.set_auto_close(false);
    ws.set_auto_pong(true);
    // fastwebsockets' write half writes one frame per call; we keep the raw write half and
    // frame batches ourselves, so the split hands it a sink it never uses.
    let slot = std::sync::Mutex::new(None);
    let (read, _unused) = ws.split(|stream| {
        let (r, w) = tokio::io::split(stream);
        *slot.lock().expect("slot lock") = Some(w);
        (r, tokio::io::empty())
    });
    let mut writer: Writer = slot.into_inner().expect("slot lock").expect("split ran");
    let mut read = FragmentCollectorRead::new(read);
    // The writer task owns the write half alone; the frames the protocol obliges the reader
    // to answer (a pong to a WebSocket ping) reach it through a small channel.
    let (control_tx, control_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let mut obligated = |mut frame: Frame<'_>| {
        let mut buf = Vec::new();
        let len = frame.write(&mut buf).len();
        buf.truncate(len);
        let _ = control_tx.try_send(buf);
        std::future::ready(Ok::<(), std::io::Error>(()))
    };

    if is_upgrade {
        match probe(&mut read, &mut obligated, &mut writer, session).await {
            Ok(()) => {
                session.finish_upgrade();
                tracing::debug!(sid = %session.sid(), "Upgraded to WebSocket");
            }
            Err(()) => {
                session.abort_upgrade();
                let _ = writer.write_all(&close_frame(1000)).await;
                return;
            }
        }
    }

    let write_task = engine.tasks().spawn(write_loop(
        session.clone(),
        writer,
        control_rx,
        engine.stats_handle(),
    ));
    loop {
        let frame = tokio::select! {
            frame = read.read_frame(&mut obligated) => frame,
            _ = session.closed() => break,
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                session.close(reason_for(&e));
                break;
            }
        };
        engine
            .stats()
            .bytes_in
            .fetch_add(frame.payload.len() as u64, Ordering::Relaxed);
        match frame.opcode {
            OpCode::Text => match Packet::parse_text(payload_bytes(frame.payload)) {
                Ok(packet) => engine.on_packet(&conn, packet),
                Err(e) => {
                    tracing::debug!(sid = %session.sid(), error = %e, "Malformed WebSocket packet");
                    session.close(CloseReason::ParseError);
                    break;
                }
            },
            OpCode::Binary => engine.on_packet(&conn, Packet::Binary(payload_bytes(frame.payload))),
            OpCode::Close => {
                session.close(CloseReason::TransportClose);
                break;
            }
            _ => {}
        }
    }
    let _ = write_task.await;
}

/// The probe phase of an upgrade: answer `2probe`, release the pending poll, wait for `5`.
async fn probe<R, F, Fut>(
    read: &mut FragmentCollectorRead<R>,
    obligated: &mut F,
    writer: &mut Writer,
    session: &Session,
) -> Result<(), ()>
where
    R: tokio::io::AsyncRead + Unpin,
    F: FnMut(Frame<'_>) -> Fut,
    Fut: Future<Output = std::io::Result<()>>,
{
    let steps = async {
        loop {
            let frame = read.read_frame(obligated).await.map_err(drop)?;
            match frame.opcode {
                OpCode::Text => match Packet::parse_text(payload_bytes(frame.payload)) {
                    Ok(Packet::Ping(data)) if data == "probe" => {
                        let mut buf = Vec::new();
                        put_packet(&Packet::Pong(data), &mut buf);
                        writer.write_all(&buf).await.map_err(drop)?;
                        session.probe_succeeded();
                    }
                    Ok(Packet::Upgrade) if session.is_probed() => return Ok(()),
                    Ok(Packet::Noop) => {}
                    _ => return Err(()),
                },
                OpCode::Ping | OpCode::Pong => {}
                _ => return Err(()),
            }
        }
    };
    tokio::select! {
        result = tokio::time::timeout(session.config().upgrade_timeout, steps) => {
            result.unwrap_or(Err(()))
        }
        _ = session.closed() => Err(()),
    }
}

/// Drain the session queue to the socket until the session closes, then send what is
/// left and a close frame.
async fn write_loop(
    session: Arc<Session>,
    mut writer: Writer,
    mut control: tokio::sync::mpsc::Receiver<Vec<u8>>,
    stats: Arc<Stats>,
) {
    let mut rx = session.rx.lock().await;
    let mut buf = Vec::new();
    // One close future for the whole loop, not one per batch.
    let closed = session.closed();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            biased;
            Some(frame) = control.recv() => buf.extend_from_slice(&frame),
            Some(packet) = rx.recv() => put_packet(&packet, &mut buf),
            _ = &mut closed => break,
        }
        while buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(packet) => put_packet(&packet, &mut buf),
                Err(_) => break,
            }
        }
        stats
            .bytes_out
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        if writer.write_all(&buf).await.is_err() {
            session.close(CloseReason::TransportClose);
            return;
        }
        buf.clear();
        if buf.capacity() > BATCH_BYTES * 2 {
            // A burst of large messages should not pin that much memory to an idle socket.
            buf = Vec::new();
        }
    }
    while let Ok(packet) = rx.try_recv() {
        put_packet(&packet, &mut buf);
    }
    let code = match session.close_reason() {
        Some(CloseReason::TransportError) => 1009,
        _ => 1000,
    };
    buf.extend_from_slice(&close_frame(code));
    session.finished().await;
    let _ = writer.write_all(&buf).await;
    let _ = writer.shutdown().await;
}

fn reason_for(e: &WebSocketError) -> CloseReason {
    match e {
        WebSocketError::UnexpectedEOF
        | WebSocketError::IoError(_)
        | WebSocketError::ConnectionClosed => CloseReason::TransportClose,
        _ => CloseReason::TransportError,
    }
}

fn payload_bytes(payload: Payload<'_>) -> Bytes {
    match payload {
        Payload::Bytes(b) => b.freeze(),
        Payload::Owned(v) => Bytes::from(v),
        Payload::Borrowed(s) => Bytes::copy_from_slice(s),
        Payload::BorrowedMut(s) => Bytes::copy_from_slice(s),
    }
}

/// Append `packet` as one unmasked WebSocket frame: binary messages as binary frames, the
/// rest as text frames of type digit and data.
pub(crate) fn put_packet(packet: &Packet, out: &mut Vec<u8>) {
    match packet {
        Packet::Binary(data) => {
            put_head(out, OpCode::Binary as u8, data.len());
            out.extend_from_slice(data);
        }
        text => {
            let data = text.text_data();
            put_head(out, OpCode::Text as u8, data.len() + 1);
            out.push(text.type_digit().expect("text packet"));
            out.extend_from_slice(data);
        }
    }
}

/// RFC 6455 §5.2 header of a final, unmasked frame.
fn put_head(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

fn close_frame(code: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    put_head(&mut out, OpCode::Close as u8, 2);
    out.extend_from_slice(&code.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames we write must be what fastwebsockets itself writes.
    fn reference(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut frame = Frame::new(true, opcode, None, Payload::Borrowed(payload));
        let len = frame.write(&mut buf).len();
        buf.truncate(len);
        buf
    }

    #[test]
    fn text_frames_match_fastwebsockets_at_every_length_class() {
        for len in [0usize, 1, 124, 125, 126, 65534, 65535, 65536, 70000] {
            let data = vec![b'x'; len];
            let mut ours = Vec::new();
            put_packet(&Packet::Message(Bytes::from(data.clone())), &mut ours);
            let mut expected_payload = vec![b'4'];
            expected_payload.extend_from_slice(&data);
            assert_eq!(
                ours,
                reference(OpCode::Text, &expected_payload),
                "len {len}"
            );
        }
    }

    #[test]
    fn binary_and_close_frames_match_fastwebsockets() {
        let mut ours = Vec::new();
        put_packet(&Packet::Binary(Bytes::from_static(&[1, 2, 3])), &mut ours);
        assert_eq!(ours, reference(OpCode::Binary, &[1, 2, 3]));
        assert_eq!(
            close_frame(1000),
            reference(OpCode::Close, &1000u16.to_be_bytes())
        );
    }
}
