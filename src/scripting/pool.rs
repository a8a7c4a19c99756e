//! The threads scripts run on: a few dedicated OS threads with large stacks, fed by a
//! bounded queue. A handler that loops to its operation limit occupies one of them, never a
//! runtime thread that other connections need; a script's data nested as deep as Rhai's
//! size limits allow (up to 20,000 levels of arrays and maps) fits their stacks.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbeam_channel::{Sender, TrySendError, bounded};
use tokio::sync::oneshot;

/// Stack of each script thread: deep data is walked recursively by Rhai's own checks and
/// drops. Address space only; what is touched is what counts.
const STACK_BYTES: usize = 256 * 1024 * 1024;
/// How much less CPU a script thread is given than the threads serving connections when
/// both want it: Linux's nice value of the script threads (the server's threads keep 0).
const NICE: i32 = 19;

/// Script calls that may wait for a thread; more are refused.
pub const QUEUE: usize = 1024;

type Job = Box<dyn FnOnce() + Send>;

/// Every thread is busy and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every script thread is busy")]
pub struct Busy;

/// The pool. Dropping it lets its threads finish what they run and exit.
#[derive(Debug)]
pub struct ScriptPool {
    jobs: Sender<Job>,
    threads: usize,
}

impl ScriptPool {
    /// A pool of `threads` threads (at least one), with [`QUEUE`] calls waiting at most.
    pub fn new(threads: usize) -> ScriptPool {
        ScriptPool::with_queue(threads, QUEUE)
    }

    /// A pool of `threads` threads where at most `waiting` calls wait for one.
    pub fn with_queue(threads: usize, waiting: usize) -> ScriptPool {
        let threads = threads.max(1);
        let (jobs, queue) = bounded::<Job>(waiting);
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("switchboard-script-{n}"))
                .stack_size(STACK_BYTES)
                .spawn(move || {
                    lower_priority();
                    while let Ok(job) = queue.recv() {
                        job();
                    }
                })
                .expect("a script thread starts");
        }
        ScriptPool { jobs, threads }
    }

    /// A pool with one thread per core.
    pub fn per_core() -> ScriptPool {
        ScriptPool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// How many threads run scripts.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `work` on a script thread; await its result (`None` if it panicked).
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<impl Future<Output = Option<T>> + Send + 'static, Busy> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if let Ok(out) = catch_unwind(AssertUnwindSafe(work)) {
                let _ = tx.send(out);
            }
        });
        match self.jobs.try_send(job) {
            Ok(()) => Ok(async move { rx.await.ok() }),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

/// Give this thread less CPU than the runtime's threads when they compete: a script that
/// loops to its limit then slows down the socket that sent the event, not the others.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE) {
        tracing::debug!(error = %e, "Script thread keeps the server's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_off_the_caller_and_panics_stay_there() {
        let pool = ScriptPool::new(2);
        let caller = std::thread::current().id();
        let ran_on = pool.run(|| std::thread::current().id()).unwrap().await;
        assert_ne!(ran_on, Some(caller));
        let panicked = pool
            .run(|| -> u8 { panic!("a broken script") })
            .unwrap()
            .await;
        assert_eq!(panicked, None);
        assert_eq!(
            pool.run(|| 7).unwrap().await,
            Some(7),
            "the thread survived"
        );
    }

    #[tokio::test]
    async fn calls_past_the_queue_are_refused() {
        let pool = ScriptPool::with_queue(1, 1);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let busy = pool.run(move || wait.recv().ok()).unwrap();
        // The thread is taken (or about to be) and one call waits; one more cannot.
        let mut refused = false;
        let mut waiting = Vec::new();
        for _ in 0..3 {
            match pool.run(|| ()) {
                Ok(call) => waiting.push(call),
                Err(Busy) => refused = true,
            }
        }
        assert!(refused, "a full queue refuses");
        release.send(()).unwrap();
        assert_eq!(busy.await, Some(Some(())));
        for call in waiting {
            assert_eq!(call.await, Some(()));
        }
    }

    #[tokio::test]
    async fn deep_recursion_fits_a_script_thread() {
        fn depth(n: u32) -> u32 {
            let pad = [0u8; 512];
            if n == 0 {
                u32::from(pad[0])
            } else {
                depth(n - 1) + 1 + u32::from(pad[(n % 512) as usize])
            }
        }
        let pool = ScriptPool::new(1);
        assert_eq!(pool.run(|| depth(100_000)).unwrap().await, Some(100_000));
    }
}
