//! One `[[webhooks]]` URL: a bounded queue of events (JSON, already encoded) and the task
//! that POSTs them in batches, signed — at least once: the task holds a batch until a 2xx,
//! retrying with exponential backoff. A queue over its bytes drops its oldest waiting
//! events and counts them. It knows events as bytes, never sockets.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::sign::{SIGNATURE_HEADER, signature_now};
use crate::limits::Throttle;
use crate::routing::webhooks::WebhookSettings;

/// First wait after a failed batch; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two tries of a batch.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often one webhook may log its failures.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What a webhook has done, for `/metrics` and `/healthz`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Events the backend took.
    pub delivered: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Batches that failed (each retry counts).
    pub failures: AtomicU64,
    /// Whether the last try succeeded (true until one fails).
    pub up: AtomicBool,
    /// Events waiting, the batch being sent included.
    pub queued: AtomicU64,
    /// What the last failure was.
    pub last_error: Mutex<Option<String>>,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Bytes>,
    bytes: usize,
}

/// One webhook URL and its delivery task (until [`Webhook::stop`]).
#[derive(Debug)]
pub struct Webhook {
    settings: ArcSwap<WebhookSettings>,
    queue: Mutex<Queue>,
    /// Told when the queue gets an event (or a full batch).
    wake: Notify,
    stats: WebhookStats,
    stop: CancellationToken,
    log: Throttle<()>,
    /// Events of the batch being sent.
    in_flight: AtomicU64,
}

impl Webhook {
    /// Start delivering to `settings.url`; the task runs until [`Webhook::stop`].
    pub fn start(settings: WebhookSettings) -> Arc<Webhook> {
        let hook = Arc::new(Webhook {
            settings: ArcSwap::from_pointee(settings),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            stats: WebhookStats {
                up: AtomicBool::new(true),
                ..WebhookStats::default()
            },
            stop: CancellationToken::new(),
            log: Throttle::new(LOG_INTERVAL),
            in_flight: AtomicU64::new(0),
        });
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(deliver(hook.clone()))),
            Err(_) => {
                tracing::warn!(url = %hook.settings().url, "No runtime: webhook not delivered")
            }
        }
        hook
    }

    /// Stop delivering (the webhook left the routes file): what waits is dropped.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Its settings now.
    pub fn settings(&self) -> Arc<WebhookSettings> {
        self.settings.load_full()
    }

    /// Take new settings of the same URL (a reload): events waiting stay.
    pub fn update(&self, settings: WebhookSettings) {
        self.settings.store(Arc::new(settings));
        self.wake.notify_one();
    }

    /// What it has done.
    pub fn stats(&self) -> &WebhookStats {
        &self.stats
    }

    /// Queue one event (a JSON object). Past `queue` bytes, the oldest events go.
    pub fn push(&self, event: Bytes) {
        let settings = self.settings.load();
        let mut queue = self.queue.lock().expect("webhook queue lock");
        let mut dropped = 0;
        if event.len() > settings.queue_bytes {
            // Larger than the whole queue: it goes, not the others.
            dropped += 1;
        } else {
            while queue.bytes + event.len() > settings.queue_bytes {
                let Some(old) = queue.events.pop_front() else {
                    break;
                };
                queue.bytes -= old.len();
                dropped += 1;
            }
            queue.bytes += event.len();
            queue.events.push_back(event);
        }
        let len = queue.events.len();
        drop(queue);
        if dropped > 0 {
            self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
            if self.log.allow((), std::time::Instant::now()).is_some() {
                tracing::warn!(url = %settings.url, dropped, "Webhook queue full; oldest events dropped");
            }
        }
        self.count_queued(len);
        if len == 1 || len >= settings.batch_max {
            self.wake.notify_one();
        }
    }

    /// Up to `max` events from the front: the next batch, held by the delivery task until
    /// the backend takes it (overflow drops only events still waiting).
    fn take(&self, max: usize) -> Vec<Bytes> {
        let mut queue = self.queue.lock().expect("webhook queue lock");
        let n = queue.events.len().min(max);
        let batch: Vec<Bytes> = queue.events.drain(..n).collect();
        queue.bytes -= batch.iter().map(Bytes::len).sum::<usize>();
        batch
    }

    /// Update the `queued` gauge: `waiting` events and the batch in flight.
    fn count_queued(&self, waiting: usize) {
        self.stats.queued.store(
            waiting as u64 + self.in_flight.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    fn len(&self) -> usize {
        self.queue.lock().expect("webhook queue lock").events.len()
    }
}

/// The delivery task: wait for a batch (full, or its interval since the first event), send
/// it until it is taken, again — until stopped.
async fn deliver(h: Arc<Webhook>) {
    let stop = h.stop.clone();
    loop {
        // Wait for a first event.
        loop {
            let woken = h.wake.notified();
            if h.len() > 0 {
                break;
            }
            tokio::select! {
                _ = woken => {}
                _ = stop.cancelled() => return,
            }
        }
        // Let the batch fill, up to its interval.
        let deadline = tokio::time::Instant::now() + h.settings().batch_interval;
        loop {
            let woken = h.wake.notified();
            if h.len() >= h.settings().batch_max {
                break;
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep_until(deadline) => break,
                _ = stop.cancelled() => return,
            }
        }
        let settings = h.settings();
        let batch = h.take(settings.batch_max);
        h.in_flight.store(batch.len() as u64, Ordering::Relaxed);
        let mut backoff = FIRST_BACKOFF;
        loop {
            match send(&settings, &batch).await {
                Ok(()) => {
                    h.in_flight.store(0, Ordering::Relaxed);
                    h.count_queued(h.len());
                    h.stats
                        .delivered
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    h.stats.up.store(true, Ordering::Relaxed);
                    break;
                }
                Err(e) => {
                    h.stats.failures.fetch_add(1, Ordering::Relaxed);
                    h.stats.up.store(false, Ordering::Relaxed);
                    if h.log.allow((), std::time::Instant::now()).is_some() {
                        tracing::warn!(url = %settings.url, error = %e, retry_in = ?backoff, "Webhook batch failed");
                    }
                    *h.stats.last_error.lock().expect("last error lock") = Some(e);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Milliseconds since the Unix epoch: the `time_ms` of batches and of their events.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `{"time_ms": …, "events": [ … ]}`, the events' bytes as they are.
fn body(batch: &[Bytes]) -> Vec<u8> {
    let time_ms = now_ms();
    let mut out = Vec::with_capacity(batch.iter().map(Bytes::len).sum::<usize>() + 48);
    out.extend_from_slice(format!("{{\"time_ms\":{time_ms},\"events\":[").as_bytes());
    for (i, event) in batch.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(event);
    }
    out.extend_from_slice(b"]}");
    out
}

/// POST one batch; `Ok` on a 2xx.
async fn send(settings: &WebhookSettings, batch: &[Bytes]) -> Result<(), String> {
    let body = body(batch);
    let mut request = super::client()
        .post(&settings.url)
        .timeout(settings.timeout)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(secret) = &settings.secret {
        request = request.header(SIGNATURE_HEADER, signature_now(secret, &body));
    }
    let response = request.body(body).send().await.map_err(|e| {
        if e.is_timeout() {
            "no answer in time".to_owned()
        } else {
            format!("unreachable: {e}")
        }
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(queue_bytes: usize) -> WebhookSettings {
        WebhookSettings {
            url: "http://127.0.0.1:9/".to_owned(),
            events: Vec::new(),
            secret: None,
            batch_max: 10,
            batch_interval: Duration::from_secs(60),
            queue_bytes,
            timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_events() {
        let hook = Webhook::start(settings(10));
        for e in ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"] {
            hook.push(Bytes::from_static(e.as_bytes()));
        }
        assert_eq!(hook.stats().dropped.load(Ordering::Relaxed), 2);
        // One event larger than the whole queue is dropped itself.
        hook.push(Bytes::from(vec![b' '; 11]));
        assert_eq!(hook.stats().dropped.load(Ordering::Relaxed), 3);
        assert_eq!(hook.take(10), vec![Bytes::from_static(b"{\"n\":3}")]);
    }

    #[tokio::test]
    async fn a_batch_taken_frees_its_bytes_and_goes_as_one_body() {
        let hook = Webhook::start(settings(16));
        for e in ["{\"n\":1}", "{\"n\":2}"] {
            hook.push(Bytes::from_static(e.as_bytes()));
        }
        let batch = hook.take(10);
        hook.push(Bytes::from_static(b"{\"n\":3}"));
        hook.push(Bytes::from_static(b"{\"n\":4}"));
        assert_eq!(hook.stats().dropped.load(Ordering::Relaxed), 0);
        let sent: serde_json::Value = serde_json::from_slice(&body(&batch)).unwrap();
        assert_eq!(sent["events"], serde_json::json!([{"n": 1}, {"n": 2}]));
        assert!(sent["time_ms"].as_u64().unwrap() > 1_700_000_000_000);
    }
}
