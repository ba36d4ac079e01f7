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

    /// A bucket for calls to a provider whose limit is "at most `rate_per_s` in any second":
    /// a small burst (a fortieth of the rate, at least `min_burst`: the calls one operation
    /// takes at once, or it could never start) and a refill of the rate less the burst and a
    /// two-hundredth (at least one call), so a full bucket plus one second of refill stays
    /// under the limit with room for calls that leave a little after their token was taken (a
    /// start's second call), while a backlog gets ~97 % of the limit. Under ~4 × the burst
    /// (a few calls per second) the refill stays at 1/s and the first second may see one call
    /// over.
    pub fn per_second_window(rate_per_s: u32, min_burst: u32) -> Self {
        let rate = rate_per_s.max(1);
        let burst = (rate / 40).max(min_burst).max(1);
        let margin = (rate / 200).max(1);
        let mut bucket = Self::new(rate, burst);
        bucket.rate_per_s = f64::from(rate.saturating_sub(burst + margin).max(1));
        bucket
    }

    /// The most tokens it holds.
    pub fn burst(&self) -> u32 {
        self.burst as u32
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

    /// How long until `n` whole tokens are available (at most the burst), without taking any:
    /// what a caller out of tokens sleeps instead of asking again and again.
    pub fn wait_for(&self, n: u32) -> std::time::Duration {
        self.wait_at(n, Instant::now())
    }

    fn wait_at(&self, n: u32, now: Instant) -> std::time::Duration {
        let guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (tokens, last) = *guard;
        let have =
            (tokens + now.duration_since(last).as_secs_f64() * self.rate_per_s).min(self.burst);
        let missing = (f64::from(n).min(self.burst) - have).max(0.0);
        std::time::Duration::from_secs_f64(missing / self.rate_per_s)
    }

    /// Takes a token if one is available.
    pub fn try_take(&self) -> bool {
        self.try_take_n(1)
    }

    /// Takes `n` tokens if that many are available (an operation making `n` calls).
    pub fn try_take_n(&self, n: u32) -> bool {
        self.take_at(n, Instant::now())
    }

    fn take_at(&self, n: u32, now: Instant) -> bool {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (tokens, last) = &mut *guard;
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.rate_per_s).min(self.burst);
        *last = now;
        let n = f64::from(n);
        if *tokens >= n {
            *tokens -= n;
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
    fn a_per_second_bucket_never_allows_more_than_its_rate_in_a_second() {
        // Three seconds on a simulated clock, a start (two calls) tried every millisecond: every
        // one-second window holds at most the rate, and the bucket gives out what its design
        // says (a burst of 2, then the rate less the burst and one per second).
        let b = TokenBucket::per_second_window(100, 2);
        let t0 = b
            .state
            .lock()
            .map(|g| g.1)
            .unwrap_or_else(|p| p.into_inner().1);
        let mut calls = Vec::new();
        for ms in 0..3000u64 {
            let at = t0 + std::time::Duration::from_millis(ms);
            if b.take_at(2, at) {
                calls.extend([ms, ms]);
            }
        }
        for (i, &start) in calls.iter().enumerate() {
            let in_window = calls[i..].iter().take_while(|&&t| t < start + 1000).count();
            assert!(
                in_window <= 100,
                "{in_window} calls in the second from {start} ms"
            );
        }
        let first_second = calls.iter().filter(|&&t| t < 1000).count();
        assert!(
            (96..=100).contains(&first_second),
            "{first_second} calls in the first second (2 burst + 97 refill)"
        );
        // A start every time two tokens are there, on a 1 ms clock: a little under the refill.
        let third_second = calls.iter().filter(|&&t| (2000..3000).contains(&t)).count();
        assert!(
            (93..=98).contains(&third_second),
            "{third_second} calls in the third second: ~95 % of the limit under a backlog"
        );
    }

    #[test]
    fn a_slow_provider_s_bucket_still_holds_a_whole_start() {
        // 20 calls/s: a twentieth is 1, less than a start's 2 calls; a bucket of 1 would never
        // start one (it did: a provider at 20/s never signed).
        let b = TokenBucket::per_second_window(20, 2);
        let t0 = b
            .state
            .lock()
            .map(|g| g.1)
            .unwrap_or_else(|p| p.into_inner().1);
        let mut calls = 0;
        for ms in 0..1000u64 {
            if b.take_at(2, t0 + std::time::Duration::from_millis(ms)) {
                calls += 2;
            }
        }
        assert!(
            (14..=20).contains(&calls),
            "{calls} calls in the first second"
        );
    }

    #[test]
    fn the_wait_for_tokens_is_what_the_refill_needs() {
        let b = TokenBucket::new(100, 10);
        let t0 = b
            .state
            .lock()
            .map(|g| g.1)
            .unwrap_or_else(|p| p.into_inner().1);
        assert_eq!(
            b.wait_at(10, t0),
            std::time::Duration::ZERO,
            "a full bucket"
        );
        assert!(b.take_at(10, t0));
        let ms = |n: u64| std::time::Duration::from_millis(n);
        let near = |d: std::time::Duration, want: u64| d.abs_diff(ms(want)) < ms(1);
        assert!(near(b.wait_at(5, t0), 50), "{:?}", b.wait_at(5, t0));
        assert!(near(b.wait_at(5, t0 + ms(20)), 30));
        assert!(near(b.wait_at(500, t0), 100), "never more than the burst");
        // Waiting that long is enough.
        assert!(b.take_at(
            5,
            t0 + b.wait_at(5, t0) + std::time::Duration::from_micros(1)
        ));
    }

    #[test]
    fn available_tokens_are_counted_without_being_taken() {
        let b = TokenBucket::new(1, 3);
        assert_eq!(b.available(), 3);
        assert_eq!(b.available(), 3);
    }
}

/// Requests per key in a fixed window (e.g. prompts per signer per minute), over a bounded
/// number of keys: when full, keys whose window has passed are dropped, and if none has, the
/// new key is refused rather than memory growing.
pub struct KeyedWindow {
    limit: u32,
    window: std::time::Duration,
    max_keys: usize,
    counts: Mutex<std::collections::HashMap<String, (Instant, u32)>>,
}

impl KeyedWindow {
    pub fn new(limit: u32, window: std::time::Duration, max_keys: usize) -> Self {
        Self {
            limit,
            window,
            max_keys,
            counts: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Counts one request for `key`; false when the key is over its limit.
    pub fn try_take(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if !counts.contains_key(key) && counts.len() >= self.max_keys {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            if counts.len() >= self.max_keys {
                return false;
            }
        }
        let entry = counts.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod keyed_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_key_has_its_own_limit_per_window() {
        let w = KeyedWindow::new(2, Duration::from_secs(60), 10);
        assert!(w.try_take("a") && w.try_take("a"));
        assert!(!w.try_take("a"));
        assert!(w.try_take("b"));
    }

    #[test]
    fn a_full_table_refuses_new_keys_instead_of_growing() {
        let w = KeyedWindow::new(5, Duration::from_secs(60), 2);
        assert!(w.try_take("a") && w.try_take("b"));
        assert!(!w.try_take("c"));
        let expired = KeyedWindow::new(5, Duration::from_millis(0), 1);
        assert!(
            expired.try_take("a") && expired.try_take("b"),
            "stale keys make room"
        );
    }
}
