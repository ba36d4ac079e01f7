//! Short-lived, single-use tickets that let a browser open the events WebSocket without an
//! Authorization header.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// At most this many live tickets; beyond it the oldest are dropped, so a caller cannot grow
/// memory without bound.
const MAX_TICKETS: usize = 10_000;

pub struct Tickets {
    ttl: Duration,
    live: Mutex<HashMap<String, (String, Instant)>>,
}

impl Tickets {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, tenant: &str) -> String {
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        let ticket = format!("tkt_{}", hex::encode(bytes));
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, (_, exp)| *exp > now);
        if live.len() >= MAX_TICKETS {
            if let Some(oldest) = live
                .iter()
                .min_by_key(|(_, (_, e))| *e)
                .map(|(k, _)| k.clone())
            {
                live.remove(&oldest);
            }
        }
        live.insert(ticket.clone(), (tenant.to_owned(), now + self.ttl));
        ticket
    }

    /// The tenant of a valid ticket, consuming it.
    pub fn redeem(&self, ticket: &str) -> Option<String> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let (tenant, exp) = live.remove(ticket)?;
        (exp > Instant::now()).then_some(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_works_once() {
        let t = Tickets::new(Duration::from_secs(30));
        let k = t.issue("dvc");
        assert_eq!(t.redeem(&k).as_deref(), Some("dvc"));
        assert_eq!(t.redeem(&k), None);
    }

    #[test]
    fn an_expired_ticket_is_refused() {
        let t = Tickets::new(Duration::from_millis(0));
        let k = t.issue("dvc");
        assert_eq!(t.redeem(&k), None);
    }
}
