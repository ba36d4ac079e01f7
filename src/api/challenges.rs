//! Challenges for the USB-token path: a random nonce per request, owned by one tenant, usable
//! once and only until it expires, with a bound on how many a tenant may hold unused. This is
//! the in-memory keeper, for SQLite's one instance (a challenge lost in a restart only means
//! the portal asks for a new one); on PostgreSQL they live in the database, good on every
//! instance (`api::limits`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

pub const NONCE_BYTES: usize = 32;

pub struct Issued {
    pub id: String,
    pub nonce: [u8; NONCE_BYTES],
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
#[error("this tenant already holds {0} unused challenges")]
pub struct TooMany(pub usize);

#[derive(Default)]
struct TenantChallenges {
    /// Issue order, for dropping expired ones from the front; may name used ones.
    order: VecDeque<(String, DateTime<Utc>)>,
    live: HashMap<String, ([u8; NONCE_BYTES], DateTime<Utc>)>,
}

impl TenantChallenges {
    fn purge(&mut self, now: DateTime<Utc>) {
        while let Some((id, expires)) = self.order.front() {
            if *expires > now {
                break;
            }
            self.live.remove(id);
            self.order.pop_front();
        }
        // Challenges used quickly leave names behind in `order`; keep it near `live`'s size.
        if self.order.len() > 2 * self.live.len() + 64 {
            let live = &self.live;
            self.order.retain(|(id, _)| live.contains_key(id));
        }
    }
}

pub struct Challenges {
    ttl: Duration,
    per_tenant: usize,
    tenants: Mutex<HashMap<String, TenantChallenges>>,
}

impl Challenges {
    pub fn new(ttl: std::time::Duration, per_tenant: usize) -> Self {
        Self {
            ttl: Duration::from_std(ttl).unwrap_or_else(|_| Duration::minutes(5)),
            per_tenant: per_tenant.max(1),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> std::time::Duration {
        self.ttl.to_std().unwrap_or_default()
    }

    /// Unused challenges one tenant may hold.
    pub fn per_tenant(&self) -> usize {
        self.per_tenant
    }

    pub fn issue(&self, tenant: &str, now: DateTime<Utc>) -> Result<Issued, TooMany> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let entry = tenants.entry(tenant.to_owned()).or_default();
        entry.purge(now);
        if entry.live.len() >= self.per_tenant {
            return Err(TooMany(self.per_tenant));
        }
        let mut nonce = [0u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let id = format!("chl_{}", ulid::Ulid::new());
        let expires_at = now + self.ttl;
        entry.order.push_back((id.clone(), expires_at));
        entry.live.insert(id.clone(), (nonce, expires_at));
        Ok(Issued {
            id,
            nonce,
            expires_at,
        })
    }

    /// Uses up a challenge: its nonce, if it exists, belongs to `tenant`, is unused and has
    /// not expired. Another tenant's challenge is as unknown as a made-up id.
    pub fn take(&self, tenant: &str, id: &str, now: DateTime<Utc>) -> Option<[u8; NONCE_BYTES]> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let entry = tenants.get_mut(tenant)?;
        let (nonce, expires) = entry.live.remove(id)?;
        (expires > now).then_some(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Challenges {
        Challenges::new(std::time::Duration::from_secs(60), 3)
    }

    #[test]
    fn a_challenge_can_be_used_once() {
        let c = store();
        let now = Utc::now();
        let issued = c.issue("a", now).expect("issued");
        assert_eq!(c.take("a", &issued.id, now), Some(issued.nonce));
        assert_eq!(c.take("a", &issued.id, now), None);
    }

    #[test]
    fn an_expired_challenge_is_refused() {
        let c = store();
        let now = Utc::now();
        let issued = c.issue("a", now).expect("issued");
        assert_eq!(c.take("a", &issued.id, now + Duration::seconds(61)), None);
    }

    #[test]
    fn another_tenant_cannot_use_a_challenge() {
        let c = store();
        let now = Utc::now();
        let issued = c.issue("a", now).expect("issued");
        assert_eq!(c.take("b", &issued.id, now), None);
        assert!(c.take("a", &issued.id, now).is_some());
    }

    #[test]
    fn a_tenant_holds_a_bounded_number_of_unused_challenges() {
        let c = store();
        let now = Utc::now();
        for _ in 0..3 {
            c.issue("a", now).expect("under the bound");
        }
        assert!(c.issue("a", now).is_err());
        assert!(c.issue("b", now).is_ok(), "other tenants are not affected");
        assert!(
            c.issue("a", now + Duration::seconds(61)).is_ok(),
            "expired ones free their places"
        );
    }

    #[test]
    fn used_challenges_do_not_accumulate() {
        let c = store();
        let now = Utc::now();
        for _ in 0..10_000 {
            let issued = c.issue("a", now).expect("issued");
            c.take("a", &issued.id, now);
        }
        let tenants = c.tenants.lock().expect("lock");
        assert!(tenants["a"].order.len() < 200);
    }
}
