//! The background tasks the process cannot work without (the scheduler, the event fan-in, the
//! store's writer and waker). One that ends before shutdown was asked for, by panicking or by
//! returning, makes `/readyz` fail and stops the server, and `Application::run` then returns
//! the error so the process exits non-zero: never a healthy-looking instance whose sessions
//! have stopped moving.

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The first background task that died, if any.
#[derive(Default)]
pub struct Supervisor {
    failed: OnceLock<String>,
}

impl Supervisor {
    /// What died and how, once a task has.
    pub fn failure(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    /// Watches `task`: if it ends while `stop` is still false, records the failure and sets
    /// `stop` so the server shuts down.
    pub fn watch(
        self: &Arc<Self>,
        name: &'static str,
        task: JoinHandle<()>,
        stop: Arc<watch::Sender<bool>>,
    ) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let how = match task.await {
                Ok(()) => "returned",
                Err(e) if e.is_panic() => "panicked",
                Err(_) => "was cancelled",
            };
            if *stop.borrow() {
                return;
            }
            let failure = format!("background task `{name}` {how}");
            tracing::error!(task = name, "{failure}; shutting down");
            let _ = this.failed.set(failure);
            let _ = stop.send(true);
        })
    }
}
