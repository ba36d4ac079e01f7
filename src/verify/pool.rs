//! Where CPU-heavy verification runs: on tokio's blocking threads, at most one job per core at
//! once, never on the async workers that answer `/healthz` and every other tenant. A hostile
//! chain then slows only the requests queued behind it for a verification slot, and path
//! building ([`super::path`]) bounds how long each job holds its slot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

#[derive(Debug)]
pub(crate) struct Pool {
    slots: Arc<Semaphore>,
    /// Jobs run so far; tests read it to see which work went through the pool.
    runs: AtomicU64,
}

impl Pool {
    /// One slot per core the process may use.
    pub(crate) fn sized_to_cores() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_slots(cores)
    }

    pub(crate) fn with_slots(slots: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            runs: AtomicU64::new(0),
        }
    }

    /// Runs `job` on a blocking thread once a slot is free. A panic in `job` resumes here.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let waited = std::time::Instant::now();
        // The semaphore is never closed, so acquiring fails only if it were.
        let _slot = Arc::clone(&self.slots).acquire_owned().await;
        metrics::histogram!("kyso_verify_queue_seconds").record(waited.elapsed().as_secs_f64());
        self.runs.fetch_add(1, Ordering::Relaxed);
        match tokio::task::spawn_blocking(job).await {
            Ok(value) => value,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    pub(crate) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// On a one-thread runtime a job that ran on the async worker would wait for a message the
    /// worker can never send: the job would time out instead of hearing it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_job_runs_off_the_async_worker_so_the_worker_keeps_serving() {
        let pool = Pool::with_slots(1);
        let (tx, rx) = mpsc::channel::<()>();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(()).expect("job listening");
        });
        let heard = pool
            .run(move || rx.recv_timeout(Duration::from_secs(10)).is_ok())
            .await;
        sender.await.expect("sender");
        assert!(heard, "the async worker was blocked by the job");
        assert_eq!(pool.runs(), 1);
    }

    #[tokio::test]
    async fn jobs_beyond_the_slots_wait_for_a_free_one() {
        let pool = Arc::new(Pool::with_slots(1));
        let (tx, rx) = mpsc::channel::<()>();
        let first = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move {
                pool.run(move || rx.recv_timeout(Duration::from_secs(10)))
                    .await
            }
        });
        while pool.runs() == 0 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.run(|| ()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            pool.runs(),
            1,
            "the second job started while the only slot was taken"
        );
        tx.send(()).expect("first job listening");
        first.await.expect("first").expect("released");
        second.await.expect("second");
        assert_eq!(pool.runs(), 2);
    }
}
