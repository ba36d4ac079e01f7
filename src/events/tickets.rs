//! Short-lived, single-use tickets that let a browser open the events WebSocket without an
//! Authorization header. Each tenant may hold a bounded number: one tenant issuing tickets in
//! a loop is refused past its own limit and cannot push out another tenant's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

pub struct Tickets {
    ttl: Duration,
    per_tenant: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Ticket → its tenant and expiry.
    live: HashMap<String, (String, Instant)>,
    /// Live tickets per tenant.
    held: HashMap<String, usize>,
}

impl State {
    fn forget(&mut self, tenant: &str) {
        if let Some(n) = self.held.get_mut(tenant) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(tenant);
            }
        }
    }

    fn purge(&mut self, now: Instant) {
        let expired: Vec<String> = (self.live.iter())
            .filter(|(_, (_, exp))| *exp <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            if let Some((tenant, _)) = self.live.remove(&k) {
                self.forget(&tenant);
            }
        }
    }
}

/// A fresh ticket: 24 random bytes, hex.
pub fn new_ticket() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("tkt_{}", hex::encode(bytes))
}

/// The tenant already holds its limit of unredeemed tickets.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0} unredeemed tickets are outstanding, the most a tenant may hold; redeem or let some expire"
)]
pub struct TooManyTickets(pub usize);

impl Tickets {
    pub fn new(ttl: Duration, per_tenant: usize) -> Self {
        Self {
            ttl,
            per_tenant,
            state: Mutex::new(State::default()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Unredeemed tickets one tenant may hold.
    pub fn per_tenant(&self) -> usize {
        self.per_tenant
    }

    pub fn issue(&self, tenant: &str) -> Result<String, TooManyTickets> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.held.get(tenant).copied().unwrap_or(0) >= self.per_tenant {
            state.purge(now);
            if state.held.get(tenant).copied().unwrap_or(0) >= self.per_tenant {
                return Err(TooManyTickets(self.per_tenant));
            }
        }
        let ticket = new_ticket();
        state
            .live
            .insert(ticket.clone(), (tenant.to_owned(), now + self.ttl));
        *state.held.entry(tenant.to_owned()).or_default() += 1;
        Ok(ticket)
    }

    /// The tenant of a valid ticket, consuming it.
    pub fn redeem(&self, ticket: &str) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tenant, exp) = state.live.remove(ticket)?;
        state.forget(&tenant);
        (exp > Instant::now()).then_some(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_works_once() {
        let t = Tickets::new(Duration::from_secs(30), 10);
        let k = t.issue("dvc").expect("issued");
        assert_eq!(t.redeem(&k).as_deref(), Some("dvc"));
        assert_eq!(t.redeem(&k), None);
    }

    #[test]
    fn an_expired_ticket_is_refused() {
        let t = Tickets::new(Duration::from_millis(150), 10);
        let fresh = t.issue("dvc").expect("issued");
        let late = t.issue("dvc").expect("issued");
        assert_eq!(t.redeem(&fresh).as_deref(), Some("dvc"), "stored and valid");
        // Letting the ticket's lifetime pass is the behaviour under test.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(t.redeem(&late), None, "the same kind of ticket, expired");
    }

    #[test]
    fn a_tenant_at_its_limit_is_refused_until_a_ticket_is_redeemed_or_expires() {
        let t = Tickets::new(Duration::from_secs(30), 2);
        let first = t.issue("dvc").expect("first");
        t.issue("dvc").expect("second");
        assert!(t.issue("dvc").is_err(), "a third is refused");
        assert!(t.issue("other").is_ok(), "another tenant is not");
        t.redeem(&first);
        assert!(t.issue("dvc").is_ok(), "a redeemed ticket frees its place");
        let expiring = Tickets::new(Duration::from_millis(0), 1);
        expiring.issue("dvc").expect("first");
        assert!(
            expiring.issue("dvc").is_ok(),
            "an expired ticket frees its place"
        );
    }
}
