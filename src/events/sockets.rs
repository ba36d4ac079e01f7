//! Open event WebSockets per tenant, bounded: each costs memory for as long as it lives, so one
//! tenant opening sockets in a loop is refused past its own limit instead of growing the
//! process for everyone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Sockets {
    per_tenant: usize,
    open: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

/// One open socket, counted until dropped.
pub struct SocketSlot {
    tenant: Arc<str>,
    open: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

impl Sockets {
    pub fn new(per_tenant: usize) -> Self {
        Self {
            per_tenant,
            open: Arc::default(),
        }
    }

    pub fn limit(&self) -> usize {
        self.per_tenant
    }

    /// A slot for one more socket of `tenant`, unless it has its limit open.
    pub fn open(&self, tenant: &Arc<str>) -> Option<SocketSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(Arc::clone(tenant)).or_default();
        if *n >= self.per_tenant {
            return None;
        }
        *n += 1;
        metrics::gauge!("kyso_ws_open", "tenant" => tenant.to_string()).set(*n as f64);
        Some(SocketSlot {
            tenant: Arc::clone(tenant),
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            metrics::gauge!("kyso_ws_open", "tenant" => self.tenant.to_string()).set(*n as f64);
            if *n == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_socket_frees_its_tenants_slot() {
        let sockets = Sockets::new(1);
        let (dvc, other): (Arc<str>, Arc<str>) = ("dvc".into(), "other".into());
        let slot = sockets.open(&dvc).expect("first");
        assert!(sockets.open(&dvc).is_none(), "a second is refused");
        assert!(sockets.open(&other).is_some(), "another tenant is not");
        drop(slot);
        assert!(sockets.open(&dvc).is_some(), "the slot came back");
    }
}
