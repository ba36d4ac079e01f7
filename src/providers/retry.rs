//! The one place that uses the `backoff` crate (unmaintained, RUSTSEC-2025-0012, but required):
//! exponential backoff with jitter for transient provider failures, never past a deadline.

use std::future::Future;
use std::time::Duration;

use backoff::ExponentialBackoffBuilder;

use super::ProviderError;

/// Retries `op` while it fails transiently, for at most `budget`. A final answer is returned
/// at once; the last transient error is returned when the budget is spent.
pub async fn with_backoff<T, F, Fut>(budget: Duration, mut op: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let policy = ExponentialBackoffBuilder::new()
        .with_initial_interval(Duration::from_millis(200))
        .with_multiplier(2.0)
        .with_randomization_factor(0.3)
        .with_max_interval(Duration::from_secs(5))
        .with_max_elapsed_time(Some(budget))
        .build();
    backoff::future::retry(policy, || {
        let fut = op();
        async move {
            fut.await.map_err(|e| match e {
                ProviderError::Transient(_) => backoff::Error::transient(e),
                ProviderError::Final(_) => backoff::Error::permanent(e),
            })
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ErrorCode;
    use crate::providers::Failure;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let out = with_backoff(Duration::from_secs(5), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(ProviderError::Transient("503".into())),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(out.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_final_answer_is_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = with_backoff(Duration::from_secs(5), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ProviderError::Final(Failure {
                code: ErrorCode::PinBlocked,
                provider_code: Some("403".into()),
                message: "locked".into(),
            }))
        })
        .await;
        assert!(matches!(out, Err(ProviderError::Final(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn retries_stop_when_the_budget_is_spent() {
        let calls = AtomicU32::new(0);
        let started = std::time::Instant::now();
        let out: Result<(), _> = with_backoff(Duration::from_millis(600), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            Err(ProviderError::Transient(format!("down {n}")))
        })
        .await;
        let calls = calls.load(Ordering::SeqCst);
        // Waits of ~200 ms then ~400 ms (±30 %) fit 600 ms: two or three calls, never one, and
        // never the dozen an unbounded loop would make.
        assert!((2..=4).contains(&calls), "{calls} calls");
        assert!(
            matches!(&out, Err(ProviderError::Transient(m)) if *m == format!("down {}", calls - 1)),
            "the last transient error is returned: {out:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
