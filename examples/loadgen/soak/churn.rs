//! One well-behaved client's life: connect over a transport, join a room, talk in it with
//! acknowledgements, echo a binary attachment, leave, and go — politely or abruptly.

use std::rc::Rc;

use rand::Rng;

use super::ROOMS;
use super::conn::{Conn, End, Packet, Target};
use super::ledger::Ledger;

/// Messages a client sends in its life.
const MESSAGES: usize = 5;

/// How a client reaches the server.
#[derive(Debug, Clone, Copy)]
enum Transport {
    WebSocket,
    Polling,
    Upgrade,
}

/// Live one client's life; what went wrong, if anything, is booked in `ledger`.
pub async fn lifecycle(target: &Rc<Target>, ledger: &Ledger) {
    let transport = match rand::thread_rng().gen_range(0..10) {
        0..4 => Transport::WebSocket,
        4..8 => Transport::Polling,
        _ => Transport::Upgrade,
    };
    let kind = match transport {
        Transport::WebSocket => "websocket",
        Transport::Polling => "polling",
        Transport::Upgrade => "upgrade",
    };
    match live(target, ledger, transport).await {
        Ok(()) => ledger.lifecycle(kind),
        Err((step, end)) => ledger.error(&format!("{kind}: {step}: {}", label(&end)), || {
            format!("{end:?}")
        }),
    }
}

fn label(end: &End) -> &'static str {
    match end {
        End::Timeout => "timeout",
        End::Closed(_) => "closed",
    }
}

type Failed = (&'static str, End);

async fn live(target: &Rc<Target>, ledger: &Ledger, transport: Transport) -> Result<(), Failed> {
    let mut conn = match transport {
        Transport::WebSocket => Conn::websocket(target).await,
        Transport::Polling | Transport::Upgrade => Conn::polling(target).await,
    }
    .map_err(|e| ("open", e))?;
    conn.send_text(b"40").await.map_err(|e| ("connect", e))?;
    loop {
        match conn.next().await.map_err(|e| ("connect", e))? {
            Packet::Text(t) if t.starts_with(b"40") => break,
            Packet::Text(t) if t.starts_with(b"44") => {
                return Err(("connect", End::Closed(String::from_utf8_lossy(&t).into())));
            }
            _ => {}
        }
    }
    let room = rand::thread_rng().gen_range(0..ROOMS);
    let mut acks = 0u64;
    let join = format!("42{acks}[\"join\",\"r{room}\"]");
    conn.send_text(join.as_bytes())
        .await
        .map_err(|e| ("join", e))?;
    await_ack(&mut conn, acks).await.map_err(|e| ("join", e))?;
    acks += 1;
    if let Transport::Upgrade = transport {
        conn.upgrade(target).await.map_err(|e| ("upgrade", e))?;
    }
    for _ in 0..MESSAGES {
        let id = ledger.next_id();
        let say = format!("42{acks}[\"say\",\"r{room}\",\"m{id}\"]");
        if let Err(e) = conn.send_text(say.as_bytes()).await {
            ledger.lost.borrow_mut().insert(id);
            return Err(("say", e));
        }
        if let Err(e) = await_ack(&mut conn, acks).await {
            ledger.lost.borrow_mut().insert(id);
            return Err(("say", e));
        }
        ledger.acked.borrow_mut().insert(id);
        acks += 1;
    }
    echo_binary(&mut conn, acks)
        .await
        .map_err(|e| ("echo", e))?;
    acks += 1;
    let leave = format!("42{acks}[\"leave\",\"r{room}\"]");
    conn.send_text(leave.as_bytes())
        .await
        .map_err(|e| ("leave", e))?;
    await_ack(&mut conn, acks).await.map_err(|e| ("leave", e))?;
    acks += 1;
    if rand::thread_rng().gen_bool(0.3) {
        // Gone mid-sentence: the last message may or may not have been routed.
        let id = ledger.next_id();
        let say = format!("42{acks}[\"say\",\"r{room}\",\"m{id}\"]");
        ledger.abrupt.borrow_mut().insert(id);
        let _ = conn.send_text(say.as_bytes()).await;
        drop(conn);
    } else {
        conn.send_text(b"41").await.map_err(|e| ("disconnect", e))?;
        conn.close().await;
    }
    Ok(())
}

/// Read until the ack `id` (`43<id>[…]`); deliveries to the client meanwhile are dropped.
async fn await_ack(conn: &mut Conn, id: u64) -> Result<Vec<u8>, End> {
    let prefix = format!("43{id}[");
    loop {
        if let Packet::Text(t) = conn.next().await?
            && t.starts_with(prefix.as_bytes())
        {
            return Ok(t);
        }
    }
}

/// Echo 1 KiB of random bytes as an attachment and check they come back intact.
async fn echo_binary(conn: &mut Conn, id: u64) -> Result<(), End> {
    let mut bytes = vec![0u8; 1024];
    rand::thread_rng().fill(&mut bytes[..]);
    let event = format!("451-{id}[\"echo\",{{\"_placeholder\":true,\"num\":0}}]");
    conn.send(&[
        Packet::Text(event.into_bytes()),
        Packet::Binary(bytes.clone()),
    ])
    .await?;
    let prefix = format!("461-{id}[");
    loop {
        if let Packet::Text(t) = conn.next().await?
            && t.starts_with(prefix.as_bytes())
        {
            break;
        }
    }
    loop {
        match conn.next().await? {
            Packet::Binary(back) if back == bytes => return Ok(()),
            Packet::Binary(_) => {
                return Err(End::Closed("the attachment came back changed".into()));
            }
            Packet::Text(_) => {}
        }
    }
}
