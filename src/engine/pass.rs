//! One provider's part of a scheduler pass: what it claims, fairly across tenants, and when the
//! scheduler should look at it again.
//!
//! A pass costs what it claims, not the backlog behind it: each tenant's queue is read through
//! the (provider, tenant, next check) index, expired sessions through the (provider, deadline)
//! index, and a provider that cannot take work is not asked again until it can — the scheduler
//! sleeps until its next token (or its circuit's probe), while a free slot wakes it as the step
//! holding it ends.
//!
//! **Fair shares.** A pass splits a provider's free capacity equally among the tenants with
//! sessions due on it; the remainder goes one each to the tenants next in a turn that moves on
//! every pass; what a tenant cannot use (it had fewer due) is split again among those that used
//! all of theirs. Within a tenant, earliest due first. So one tenant's burst of thousands
//! delays another tenant's single session by at most a pass, never by the burst.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::registry::ProviderEntry;
use super::Engine;
use crate::store::{Claim, Queue, StoreError, Work};

/// Expired sessions claimed at once for a provider that cannot take work (they need no call).
const EXPIRY_BATCH: u32 = 256;

/// How long a read of a provider's next deadline is trusted while it lies ahead: sessions
/// created here lower it at once; another instance's, at most this late (on PostgreSQL).
const EXPIRY_REREAD: Duration = Duration::from_secs(1);

/// Rounds of re-splitting what tenants could not use.
const ROUNDS: usize = 4;

/// When the scheduler should look again, the earliest of what each provider asked for.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Wake(Option<tokio::time::Instant>);

impl Wake {
    pub fn by(&mut self, at: tokio::time::Instant) {
        self.0 = Some(self.0.map_or(at, |w| w.min(at)));
    }

    pub fn after(&mut self, d: Duration) {
        self.by(tokio::time::Instant::now() + d);
    }

    /// A time on the wall clock (a session's next check or deadline).
    pub fn at(&mut self, t: DateTime<Utc>) {
        self.after((t - Utc::now()).to_std().unwrap_or(Duration::ZERO));
    }

    pub fn when(&self) -> Option<tokio::time::Instant> {
        self.0
    }
}

/// Splits `capacity` among `tenants` queues: an equal share each, the remainder one each to the
/// queues from position `turn` on (wrapping).
pub(super) fn shares(capacity: u32, tenants: usize, turn: usize) -> Vec<u32> {
    if tenants == 0 {
        return Vec::new();
    }
    let n = u32::try_from(tenants).unwrap_or(u32::MAX);
    let (each, extra) = (capacity / n, (capacity % n) as usize);
    (0..tenants)
        .map(|i| each + u32::from((i + tenants - turn % tenants) % tenants < extra))
        .collect()
}

/// Why a provider cannot take work now.
enum Blocked {
    /// Its circuit is open for this long.
    Circuit(Duration),
    /// Every in-flight slot is taken: the step that frees one wakes the scheduler.
    Slots,
    /// Out of tokens: enough for a few starts come after this long.
    Tokens(Duration),
}

impl Engine {
    /// What `entry` can take now: claims within its capacity, or `Blocked`.
    fn room(entry: &ProviderEntry) -> Result<u32, Blocked> {
        let circuit = entry.breaker.closed_in();
        if !circuit.is_zero() {
            return Err(Blocked::Circuit(circuit));
        }
        if entry.in_flight.available_permits() == 0 {
            return Err(Blocked::Slots);
        }
        // A start takes several tokens (SmartCA: certificate + sign); wait for a few starts'
        // worth rather than waking for every token, but not for a full bucket: tokens past
        // the burst are lost while the pass is late.
        let start = entry.adapter.calls_per_start().max(1);
        let tokens = entry.rate.available();
        if tokens < start {
            let want = (start * 4)
                .min(entry.rate.burst().saturating_sub(1))
                .max(start);
            return Err(Blocked::Tokens(entry.rate.wait_for(want)));
        }
        // Claims are counted in starts' worth of tokens: a claim the rate cannot start is
        // given back, a write for nothing (a status check needs one token, so a pass of them
        // may take fewer than it could; the next pass takes the rest).
        Ok((entry.in_flight.available_permits() as u32)
            .min(tokens.div_ceil(start))
            .min(10_000))
    }

    /// Claims `entry`'s due work for this pass and notes when to look again.
    pub(super) async fn claim_provider(
        &self,
        entry: &ProviderEntry,
        wake: &mut Wake,
    ) -> Result<Vec<Work>, StoreError> {
        let id = [entry.id.to_string()];
        let capacity = match Self::room(entry) {
            Ok(capacity) => capacity,
            Err(blocked) => {
                match blocked {
                    Blocked::Circuit(d) | Blocked::Tokens(d) => wake.after(d),
                    Blocked::Slots => {}
                }
                return self.claim_expired(entry, &id, wake).await;
            }
        };
        let now = Utc::now();
        let queues = self.store.queues(&id[0]).await?;
        self.report_queues(&entry.id, &queues, now);
        let mut due: Vec<&Queue> = Vec::new();
        for q in &queues {
            if q.next <= now {
                due.push(q);
            } else {
                wake.at(q.next);
            }
        }
        let turn = entry.turn.fetch_add(1, Ordering::Relaxed);
        let mut claimed = Vec::new();
        let mut left = capacity;
        for _ in 0..ROUNDS {
            if due.is_empty() || left == 0 {
                break;
            }
            let mut full = Vec::new();
            for (q, share) in due.iter().zip(shares(left, due.len(), turn)) {
                if share == 0 {
                    full.push(*q);
                    continue;
                }
                let claim = Claim::provider(&id).tenant(&q.tenant);
                let got = self.store.due(now, share, claim).await?;
                metrics::counter!("kyso_sessions_claimed_total",
                    "provider" => entry.id.to_string(), "tenant" => q.tenant.clone())
                .increment(got.len() as u64);
                if got.len() as u32 == share {
                    full.push(*q);
                }
                claimed.extend(got);
            }
            left = capacity.saturating_sub(claimed.len() as u32);
            due = full;
        }
        if !due.is_empty() {
            // Some tenant may have more due than this pass could take: look again soon.
            wake.after(Duration::ZERO);
        }
        Ok(claimed)
    }

    /// For a provider that cannot take work: its expired sessions (they need no call), and a
    /// wake at its next deadline. While that deadline, read less than [`EXPIRY_REREAD`] ago,
    /// lies ahead, nothing is read: a provider out of tokens is looked at after every step
    /// that ends, and two statements a look were most of the scheduler's cost under overload.
    async fn claim_expired(
        &self,
        entry: &ProviderEntry,
        id: &[String],
        wake: &mut Wake,
    ) -> Result<Vec<Work>, StoreError> {
        let now = Utc::now();
        let known = *entry.next_expiry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((read, at)) = known {
            if at > now && read.elapsed() < EXPIRY_REREAD {
                wake.at(at);
                return Ok(Vec::new());
            }
        }
        let expired = self
            .store
            .due(now, EXPIRY_BATCH, Claim::provider(id).expired())
            .await?;
        if expired.len() as u32 == EXPIRY_BATCH {
            wake.after(Duration::ZERO);
        } else {
            let next = self.store.next_expiry(&id[0]).await?;
            if let Some(at) = next {
                wake.at(at.max(now));
                *entry.next_expiry.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((std::time::Instant::now(), at));
            }
        }
        Ok(expired)
    }

    /// `kyso_scheduler_queue_wait_seconds{provider,tenant}`: how long the earliest due session
    /// of each queue has been waiting (0 when none is due); queues gone since the last pass
    /// are set to 0.
    fn report_queues(&self, provider: &str, queues: &[Queue], now: DateTime<Utc>) {
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        let seen: HashSet<(String, String)> = queues
            .iter()
            .map(|q| (provider.to_owned(), q.tenant.clone()))
            .collect();
        for gone in reported
            .iter()
            .filter(|k| k.0 == provider && !seen.contains(*k))
        {
            metrics::gauge!("kyso_scheduler_queue_wait_seconds",
                "provider" => gone.0.clone(), "tenant" => gone.1.clone())
            .set(0.0);
        }
        reported.retain(|k| k.0 != provider);
        for q in queues {
            let wait = (now - q.next).to_std().unwrap_or(Duration::ZERO);
            metrics::gauge!("kyso_scheduler_queue_wait_seconds",
                "provider" => provider.to_owned(), "tenant" => q.tenant.clone())
            .set(wait.as_secs_f64());
        }
        reported.extend(seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_split_equally_and_the_remainder_goes_round() {
        assert_eq!(shares(10, 2, 0), [5, 5]);
        assert_eq!(shares(10, 3, 0), [4, 3, 3]);
        assert_eq!(shares(10, 3, 1), [3, 4, 3]);
        assert_eq!(shares(10, 3, 5), [3, 3, 4], "the turn wraps");
        assert!(shares(5, 0, 0).is_empty());
        // More tenants than capacity: over successive passes every tenant gets a turn.
        let mut got = [0u32; 5];
        for turn in 0..5 {
            for (g, s) in got.iter_mut().zip(shares(2, 5, turn)) {
                *g += s;
            }
        }
        assert_eq!(got, [2, 2, 2, 2, 2]);
    }
}
