//! Bad input mixed into the churn: each kind of hostile client expects one answer from the
//! server, and anything else is booked as an error.

use std::rc::Rc;

use rand::Rng;
use rand::seq::SliceRandom;

use super::conn::{Conn, End, Packet, Target, WAIT};
use super::ledger::Ledger;
use switchboard::engineio::frame::{self, OpCode};

/// The kinds, each with the answer it expects.
const KINDS: &[&str] = &[
    "malformed-packet",
    "oversize-message",
    "oversize-fragments",
    "bad-attachment",
    "unmasked-frame",
    "unknown-sid",
    "overlapping-polls",
    "garbage-http",
    "half-request",
];

/// Bytes over the soak routes' `max_payload` (64 KB).
const OVERSIZE: usize = 70_000;

/// One hostile client.
pub async fn lifecycle(target: &Rc<Target>, ledger: &Ledger) {
    let kind = *KINDS.choose(&mut rand::thread_rng()).expect("kinds");
    match attack(target, kind).await {
        Ok(()) => ledger.lifecycle(&format!("hostile:{kind}")),
        Err(what) => ledger.error(&format!("hostile:{kind}: unexpected answer"), || what),
    }
}

async fn attack(target: &Rc<Target>, kind: &str) -> Result<(), String> {
    match kind {
        "malformed-packet" => {
            let mut conn = connected_ws(target).await?;
            conn.send_text(b"42{").await.map_err(fmt)?;
            expect_closed(&mut conn, None).await
        }
        "oversize-message" => {
            let mut conn = connected_ws(target).await?;
            let big = format!("42[\"say\",\"r0\",\"{}\"]", "x".repeat(OVERSIZE));
            conn.send_text(big.as_bytes()).await.map_err(fmt)?;
            expect_closed(&mut conn, Some("close frame 1009")).await
        }
        "oversize-fragments" => {
            let mut conn = connected_ws(target).await?;
            let mut frames = Vec::new();
            let chunk = vec![b'x'; 1000];
            for i in 0..OVERSIZE / 1000 {
                let opcode = if i == 0 {
                    OpCode::Text
                } else {
                    OpCode::Continuation
                };
                // Never the final fragment: the limit must hold before the message ends.
                frame::put_frame(&mut frames, false, opcode, &chunk, Some([1, 2, 3, 4]));
            }
            conn.ws_raw(&frames).await.map_err(fmt)?;
            expect_closed(&mut conn, Some("close frame 1009")).await
        }
        "bad-attachment" => {
            let mut conn = connected_ws(target).await?;
            conn.send_text(br#"451-["say","r0",{"_placeholder":true,"num":0}]"#)
                .await
                .map_err(fmt)?;
            conn.send_text(br#"42["say","r0","not an attachment"]"#)
                .await
                .map_err(fmt)?;
            expect_closed(&mut conn, None).await
        }
        "unmasked-frame" => {
            let mut conn = connected_ws(target).await?;
            conn.ws_raw(&[0x81, 0x02, b'4', b'2']).await.map_err(fmt)?;
            expect_closed(&mut conn, Some("close frame 1002")).await
        }
        "unknown-sid" => {
            let sid: String = (0..20)
                .map(|_| rand::thread_rng().sample(rand::distributions::Alphanumeric) as char)
                .collect();
            let request = format!(
                "GET {}/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\n\r\n",
                target.path, target.addr
            );
            expect_status(target, &request, "HTTP/1.1 400").await
        }
        "overlapping-polls" => {
            let mut conn = Conn::polling(target).await.map_err(fmt)?;
            // Two polls of one session at once end it: the one that came second gets 400,
            // the first is released with CLOSE.
            let sid = conn.sid().expect("polling").to_owned();
            let request = format!(
                "GET {}/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\n\r\n",
                target.path, target.addr
            );
            let line = target
                .raw_request(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let how = if line.starts_with("HTTP/1.1 400") {
                None
            } else if line.starts_with("HTTP/1.1 200") {
                Some("poll answered 400")
            } else {
                return Err(format!("the second poll was answered {line:?}"));
            };
            expect_closed(&mut conn, how).await
        }
        "garbage-http" => {
            expect_status(target, "BREW /pot HTCPCP/1.0\r\n\r\n", "HTTP/1.1 400").await
        }
        "half-request" => {
            // Half a request head, then silence: the header timeout (10 s) lets it go.
            let stream = target.connect().await.map_err(|e| e.to_string())?;
            crate::write_all(
                &stream,
                b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n",
            )
            .await
            .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 256];
            let gone = async {
                loop {
                    stream.readable().await?;
                    match stream.try_read(&mut buf) {
                        Ok(0) => return Ok::<_, std::io::Error>(()),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            };
            match tokio::time::timeout(WAIT * 2, gone).await {
                Ok(_) => Ok(()),
                Err(_) => Err("still open 20 s after half a request head".to_owned()),
            }
        }
        other => unreachable!("unknown kind {other}"),
    }
}

fn fmt(end: End) -> String {
    format!("{end:?}")
}

async fn connected_ws(target: &Rc<Target>) -> Result<Conn, String> {
    let mut conn = Conn::websocket(target).await.map_err(fmt)?;
    conn.send_text(b"40").await.map_err(fmt)?;
    loop {
        match conn.next().await.map_err(fmt)? {
            Packet::Text(t) if t.starts_with(b"40") => return Ok(conn),
            _ => {}
        }
    }
}

/// The server ends the session (with `how`, when given) and sends nothing unexpected.
async fn expect_closed(conn: &mut Conn, how: Option<&str>) -> Result<(), String> {
    loop {
        match conn.next().await {
            Ok(Packet::Text(t)) if t.starts_with(b"42") => {}
            Ok(other) => return Err(format!("got {other:?} instead of a close")),
            Err(End::Timeout) => return Err("not closed".to_owned()),
            Err(End::Closed(why)) => {
                return match how {
                    Some(how) if !why.contains(how) => Err(format!("closed by {why}, not {how}")),
                    _ => Ok(()),
                };
            }
        }
    }
}

async fn expect_status(target: &Rc<Target>, request: &str, status: &str) -> Result<(), String> {
    let line = target
        .raw_request(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    if line.starts_with(status) {
        Ok(())
    } else {
        Err(format!("answered {line:?}, not {status}"))
    }
}
