//! The heartbeat's schedule on a paused clock: pings at `ping_interval`, a close exactly at
//! a missed pong's deadline, never a moment before, and the claim deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, sleep_until};

use crate::engineio::{
    CloseReason, Conn, Engine, EngineConfig, EngineHandler, Packet, Pending, Session, Transport,
};

/// Records how sessions ended.
#[derive(Default)]
struct Recorder(Mutex<Vec<CloseReason>>);

impl EngineHandler for Arc<Recorder> {
    type Data = ();

    fn on_open(&self, _session: &Arc<Session>) {}

    fn on_message(&self, _conn: &Arc<Conn<()>>, _text: Bytes) -> Option<Pending> {
        None
    }

    fn on_binary(&self, _conn: &Arc<Conn<()>>, _data: Bytes) -> Option<Pending> {
        None
    }

    fn on_close(&self, _conn: &Arc<Conn<()>>, reason: CloseReason) -> Option<Pending> {
        self.0.lock().unwrap().push(reason);
        None
    }
}

const INTERVAL: Duration = Duration::from_secs(25);
const TIMEOUT: Duration = Duration::from_secs(20);
const MS: Duration = Duration::from_millis(1);

fn engine(claim_timeout: Option<Duration>) -> (Arc<Engine<Arc<Recorder>>>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let config = EngineConfig {
        ping_interval: INTERVAL,
        ping_timeout: TIMEOUT,
        claim_timeout,
        ..EngineConfig::default()
    };
    (Engine::new(recorder.clone(), config), recorder)
}

fn pings(conn: &Conn<()>) -> usize {
    Engine::<Arc<Recorder>>::fuzz_sent(conn)
        .iter()
        .filter(|p| matches!(p, Packet::Ping(_)))
        .count()
}

/// Sleeps to `at`; the clock is paused, so timers due before it fire first, in order.
async fn at(at: Instant) {
    sleep_until(at).await;
    tokio::task::yield_now().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_pinged_on_schedule_and_dropped_at_its_deadline() {
    let (engine, closes) = engine(None);
    let start = Instant::now();
    let conn = engine.fuzz_open(Transport::Websocket);

    at(start + INTERVAL - MS).await;
    assert_eq!(pings(&conn), 0, "no ping before ping_interval");
    at(start + INTERVAL + MS).await;
    assert_eq!(pings(&conn), 1, "a ping at ping_interval");

    at(start + INTERVAL + TIMEOUT - MS).await;
    assert!(!conn.session.is_closed(), "open until the pong is due");
    at(start + INTERVAL + TIMEOUT + MS).await;
    assert_eq!(conn.session.close_reason(), Some(CloseReason::PingTimeout));
    assert_eq!(engine.session_count(), 0, "forgotten once closed");
    assert_eq!(*closes.0.lock().unwrap(), [CloseReason::PingTimeout]);
}

#[tokio::test(start_paused = true)]
async fn each_pong_starts_the_next_interval_and_a_late_one_saves_nothing() {
    let (engine, closes) = engine(None);
    let start = Instant::now();
    let conn = engine.fuzz_open(Transport::Polling);

    // Three rounds, each pong 19 s after its ping: the next ping comes 25 s after the pong.
    let mut ping_at = start + INTERVAL;
    for round in 1..=3 {
        at(ping_at + MS).await;
        assert_eq!(pings(&conn), 1, "ping of round {round}");
        at(ping_at + TIMEOUT - Duration::from_secs(1)).await;
        assert!(
            engine
                .fuzz_packet(&conn, Packet::Pong(Bytes::new()))
                .is_none()
        );
        tokio::task::yield_now().await;
        ping_at = Instant::now() + INTERVAL;
        at(ping_at - MS).await;
        assert_eq!(
            pings(&conn),
            0,
            "no ping before the interval after round {round}'s pong"
        );
    }
    // Then a pong a moment too late: the session is already gone.
    at(ping_at + TIMEOUT + MS).await;
    assert_eq!(conn.session.close_reason(), Some(CloseReason::PingTimeout));
    let _ = engine.fuzz_packet(&conn, Packet::Pong(Bytes::new()));
    assert_eq!(*closes.0.lock().unwrap(), [CloseReason::PingTimeout]);
}

#[tokio::test(start_paused = true)]
async fn a_pong_nobody_asked_for_does_not_answer_the_next_ping() {
    let (engine, _closes) = engine(None);
    let start = Instant::now();
    let conn = engine.fuzz_open(Transport::Websocket);

    at(start + Duration::from_secs(1)).await;
    let _ = engine.fuzz_packet(&conn, Packet::Pong(Bytes::new()));
    at(start + INTERVAL + MS).await;
    assert_eq!(pings(&conn), 1);
    at(start + INTERVAL + TIMEOUT + MS).await;
    assert_eq!(conn.session.close_reason(), Some(CloseReason::PingTimeout));
}

#[tokio::test(start_paused = true)]
async fn a_session_nobody_claims_is_closed_at_the_claim_deadline() {
    let claim = Duration::from_secs(45);
    let (engine, closes) = engine(Some(claim));
    let start = Instant::now();
    let unclaimed = engine.fuzz_open(Transport::Websocket);
    let claimed = engine.fuzz_open(Transport::Websocket);
    claimed.session.claim();

    // Both answer their ping; only the claim decides.
    at(start + INTERVAL + MS).await;
    for conn in [&unclaimed, &claimed] {
        assert_eq!(pings(conn), 1);
        let _ = engine.fuzz_packet(conn, Packet::Pong(Bytes::new()));
    }
    at(start + claim - MS).await;
    assert!(
        !unclaimed.session.is_closed(),
        "open until the claim deadline"
    );
    at(start + claim + MS).await;
    assert_eq!(
        unclaimed.session.close_reason(),
        Some(CloseReason::ForcedClose)
    );
    assert!(!claimed.session.is_closed());
    assert_eq!(engine.session_count(), 1);
    assert_eq!(*closes.0.lock().unwrap(), [CloseReason::ForcedClose]);
}
