//! `--scenario soak`: long churn over both transports with bad input mixed in, and books
//! that account for every message (see `bench/soak.sh` and `bench/soak/routes.toml`).
//!
//! Four observers (two on WebSocket, two on long-polling) sit in every room for the whole
//! run. `--clients` slots live client lives one after another: 40 % WebSocket, 40 %
//! long-polling, 20 % polling upgraded to WebSocket, each connecting, joining a room, saying
//! five acknowledged messages there, echoing a binary attachment, leaving and going (70 %
//! politely, 30 % abruptly, mid-message); one life in ten is a hostile client instead (see
//! `hostile.rs`). A message the server acknowledged was routed, so queued to every member
//! of its room: every observer must have it at the end. The output reports server RSS after
//! the warm-up and at the end, and lists `failures` (empty when the run held).

mod churn;
mod conn;
mod hostile;
mod ledger;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};
use tokio::task::spawn_local;

use crate::{Shared, proc_sample};
use conn::{Conn, End, Packet, Target};
use ledger::{Ledger, message_id};

/// Rooms clients talk in; observers are in all of them.
pub const ROOMS: usize = 8;
const OBSERVERS: usize = 4;
/// One life in this many is hostile.
const HOSTILE_ONE_IN: u32 = 10;
/// Server RSS may grow this much from the end of the warm-up to the end of the run.
const RSS_GROWTH_LIMIT: f64 = 0.10;

/// Run the soak.
pub async fn run(shared: Rc<Shared>) -> Result<Value, String> {
    let opts = &shared.opts;
    let target = Rc::new(Target::new(opts.addr, &opts.path, opts.source_offset));
    let ledger = Rc::new(Ledger::new(OBSERVERS));
    let stop = Rc::new(Cell::new(false));
    let pid = opts.server_pid.map(|p| p.to_string());
    let rss = || pid.as_deref().map_or(0, |p| proc_sample(p).rss_kib);

    // Observers first, in every room.
    let joined = Rc::new(Cell::new(0));
    let observer_lost = Rc::new(Cell::new(None::<String>));
    for i in 0..OBSERVERS {
        let (target, ledger) = (target.clone(), ledger.clone());
        let (joined, lost) = (joined.clone(), observer_lost.clone());
        spawn_local(async move {
            if let Err(e) = observe(i, &target, &ledger, &joined).await {
                lost.set(Some(format!("observer {i}: {e:?}")));
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while joined.get() < OBSERVERS {
        if Instant::now() > deadline {
            return Err("observers did not join their rooms within 10 s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The churn.
    let slots = shared.clients;
    let running = Rc::new(Cell::new(slots));
    for _ in 0..slots {
        let (target, ledger, stop, running) = (
            target.clone(),
            ledger.clone(),
            stop.clone(),
            running.clone(),
        );
        spawn_local(async move {
            while !stop.get() {
                if rand::thread_rng().gen_ratio(1, HOSTILE_ONE_IN) {
                    hostile::lifecycle(&target, &ledger).await;
                } else {
                    churn::lifecycle(&target, &ledger).await;
                }
                let think = rand::thread_rng().gen_range(0..50);
                tokio::time::sleep(Duration::from_millis(think)).await;
            }
            running.set(running.get() - 1);
        });
    }

    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;
    let rss_warm = rss();
    let sent_warm = ledger.sent();
    let mut series = vec![json!([round_s(started), rss_warm])];
    let end = Instant::now() + Duration::from_secs_f64(opts.duration);
    while Instant::now() < end {
        let step = Duration::from_secs(60).min(end - Instant::now());
        tokio::time::sleep(step).await;
        series.push(json!([round_s(started), rss()]));
    }
    let rss_end = rss();
    let sent_end = ledger.sent();
    stop.set(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A last message in every room, then every observer must have every acked one.
    let finished = finish(&target, &ledger).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut missing = ledger.missing();
    while missing.iter().any(|m| *m > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        missing = ledger.missing();
    }
    let rss_idle = rss();

    let growth = if rss_warm > 0 {
        rss_end as f64 / rss_warm as f64 - 1.0
    } else {
        0.0
    };
    let mut failures = Vec::new();
    if let Err(e) = finished {
        failures.push(format!("the final messages: {e:?}"));
    }
    if let Some(lost) = observer_lost.take() {
        failures.push(format!("an observer was lost: {lost}"));
    }
    if running.get() > 0 {
        failures.push(format!(
            "{} client slots still busy 30 s after the end",
            running.get()
        ));
    }
    if missing.iter().any(|m| *m > 0) {
        failures.push(format!(
            "acknowledged messages an observer lacks: {missing:?}"
        ));
    }
    if ledger.duplicates.get() > 0 || ledger.unreadable.get() > 0 {
        failures.push("duplicate or unreadable deliveries".to_owned());
    }
    if !ledger.errors.borrow().is_empty() {
        failures.push("clients met unexpected answers (see errors)".to_owned());
    }
    if pid.is_some() && growth > RSS_GROWTH_LIMIT {
        failures.push(format!(
            "server RSS grew {:.1} % after the warm-up",
            growth * 100.0
        ));
    }

    let abrupt = ledger.abrupt.borrow();
    let lost = ledger.lost.borrow();
    let acked = ledger.acked.borrow();
    let errors: serde_json::Map<String, Value> = ledger
        .errors
        .borrow()
        .iter()
        .map(|(k, (n, example))| (k.clone(), json!({ "count": n, "first": example })))
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("seconds".into(), json!(round_s(started)));
    out.insert("lifecycles".into(), json!(*ledger.lifecycles.borrow()));
    out.insert(
        "messages".into(),
        json!({
            "sent": ledger.sent(),
            "sent_per_s": round((sent_end - sent_warm) as f64 / opts.duration.max(1e-9)),
            "acked": acked.len(),
            "acked_seen_by_every_observer": ledger.seen_by_all(&acked),
            "missing_per_observer": missing,
            "duplicates": ledger.duplicates.get(),
            "unreadable": ledger.unreadable.get(),
            "unacked_abrupt_close": abrupt.len(),
            "unacked_abrupt_close_delivered": ledger.seen_by_all(&abrupt),
            "unacked_session_lost": lost.len(),
        }),
    );
    out.insert(
        "rss_kib".into(),
        json!({
            "after_warmup": rss_warm,
            "end": rss_end,
            "growth_pct": round(growth * 100.0),
            "idle_after": rss_idle,
            "series": series,
        }),
    );
    out.insert("errors".into(), Value::Object(errors));
    out.insert("failures".into(), json!(failures));
    Ok(Value::Object(out))
}

fn round_s(since: Instant) -> f64 {
    round(since.elapsed().as_secs_f64())
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Observer `i`: in every room for the whole run, recording what it receives.
async fn observe(
    i: usize,
    target: &Rc<Target>,
    ledger: &Ledger,
    joined: &Cell<usize>,
) -> Result<(), End> {
    let mut conn = if i.is_multiple_of(2) {
        Conn::websocket(target).await?
    } else {
        Conn::polling(target).await?
    };
    conn.send_text(b"40").await?;
    for room in 0..ROOMS {
        let join = format!("42{room}[\"join\",\"r{room}\"]");
        conn.send_text(join.as_bytes()).await?;
    }
    let mut acks = 0;
    loop {
        let packet = match conn.next().await {
            Ok(p) => p,
            // Quiet is fine; a closed session is not.
            Err(End::Timeout) => continue,
            Err(end) => return Err(end),
        };
        let Packet::Text(text) = packet else {
            continue;
        };
        if text.starts_with(b"43") {
            acks += 1;
            if acks == ROOMS {
                joined.set(joined.get() + 1);
            }
        } else if text.starts_with(b"42[\"say\"") {
            match message_id(&text) {
                Some(id) => ledger.observe(i, id),
                None => ledger.unreadable.set(ledger.unreadable.get() + 1),
            }
        }
    }
}

/// One acknowledged message in every room, after the churn: each observer has had every
/// earlier delivery once it has these.
async fn finish(target: &Rc<Target>, ledger: &Ledger) -> Result<(), End> {
    let mut conn = Conn::websocket(target).await?;
    conn.send_text(b"40").await?;
    for room in 0..ROOMS as u64 {
        let id = ledger.next_id();
        let say = format!("42{room}[\"say\",\"r{room}\",\"m{id}\"]");
        conn.send_text(say.as_bytes()).await?;
        let ack = format!("43{room}[");
        loop {
            if let Packet::Text(t) = conn.next().await?
                && t.starts_with(ack.as_bytes())
            {
                break;
            }
        }
        ledger.acked.borrow_mut().insert(id);
    }
    conn.close().await;
    Ok(())
}
