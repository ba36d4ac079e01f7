//! A per-provider circuit breaker: after a run of transport failures the engine stops calling a
//! provider for a while instead of hammering it, then lets calls through again to probe it.
//! `/readyz` and the `kyso_provider_circuit_open` gauge show an open circuit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may be made now (closed, or open long enough to probe).
    pub fn allows(&self) -> bool {
        self.lock().open_until.is_none_or(|t| Instant::now() >= t)
    }

    /// How long until an open circuit lets a probe through (zero when it allows calls now).
    pub fn closed_in(&self) -> Duration {
        self.lock().open_until.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        })
    }

    pub fn is_open(&self) -> bool {
        !self.allows()
    }

    /// Records a call's outcome: `true` when the provider answered (whatever it said).
    pub fn record(&self, answered: bool) -> bool {
        let mut s = self.lock();
        if answered {
            s.failures = 0;
            s.open_until = None;
            return false;
        }
        s.failures += 1;
        if s.failures >= self.threshold {
            s.open_until = Some(Instant::now() + self.open_for);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_opens_the_circuit_and_an_answer_closes_it() {
        let b = Breaker::new(3, Duration::from_secs(60));
        assert!(!b.record(false) && !b.record(false));
        assert!(b.allows());
        assert!(b.record(false));
        assert!(b.is_open());
        b.record(true);
        assert!(b.allows());
    }

    #[test]
    fn an_open_circuit_lets_a_probe_through_after_its_time() {
        let b = Breaker::new(1, Duration::from_millis(150));
        assert!(b.record(false), "one failure opens a threshold-1 circuit");
        assert!(!b.allows(), "an open circuit refuses calls before its time");
        let left = b.closed_in();
        assert!(
            left > Duration::ZERO && left <= Duration::from_millis(150),
            "{left:?}"
        );
        // Waiting for the open time to pass is the behaviour under test; 150 ms is the time.
        std::thread::sleep(Duration::from_millis(200));
        assert!(b.allows(), "a probe goes through after its time");
        assert_eq!(b.closed_in(), Duration::ZERO);
        assert!(b.record(false), "a failed probe opens it again");
        assert!(!b.allows());
    }
}
