//! A token bucket, used for per-provider request rates and per-tenant API rates.

use std::sync::Mutex;
use std::time::Instant;

pub struct TokenBucket {
    rate_per_s: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate_per_s: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate_per_s: f64::from(rate_per_s.max(1)),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Whole tokens available now, without taking any.
    pub fn available(&self) -> u32 {
        let guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (tokens, last) = *guard;
        let refilled = tokens + last.elapsed().as_secs_f64() * self.rate_per_s;
        refilled.min(self.burst).floor() as u32
    }

    /// Takes a token if one is available.
    pub fn try_take(&self) -> bool {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (tokens, last) = &mut *guard;
        let now = Instant::now();
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.rate_per_s).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let b = TokenBucket::new(1, 3);
        assert!(b.try_take() && b.try_take() && b.try_take());
        assert!(!b.try_take());
        assert_eq!(b.available(), 0);
    }

    #[test]
    fn available_tokens_are_counted_without_being_taken() {
        let b = TokenBucket::new(1, 3);
        assert_eq!(b.available(), 3);
        assert_eq!(b.available(), 3);
    }
}
