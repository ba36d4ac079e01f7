//! Provider pushes. A push is a hint, untrusted, and may come in floods: one for an unknown or
//! finished session, or for a session already due or already marked by an earlier push, is
//! settled by a read and costs no write; only a push that changes something (claims the
//! session, or marks one that waits for a later check) is written.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{slot, Engine};
use crate::domain::SessionId;
use crate::store::{PushTarget, StoreError, Woken};

/// What a push did.
/// Ordered by how much it did, so a callback naming several sessions reports the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pushed {
    /// No unfinished session of that provider has the id.
    Missing,
    /// The session was already due or already marked: nothing written.
    Coalesced,
    /// The session was noted, marked or claimed for a check.
    Woken,
}

impl Pushed {
    /// The push named an unfinished session of its provider.
    pub fn found(self) -> bool {
        self != Pushed::Missing
    }
}

impl Engine {
    /// A provider pushed news of session `id`. When the session's step is running here, the
    /// push is only noted and the session is checked again as that step ends, without a
    /// database write: a crash before then brings the session back at its lease's end, or, once
    /// the step's own write has given the lease back, at its next scheduled check (the poll
    /// interval) — a push is a hint, and the provider is polled anyway. Otherwise the session
    /// is read first: unknown, finished, or (when the provider cannot take a call now) already
    /// due or marked, the push changes nothing and writes nothing. Else, when the provider can
    /// take a call now (and the engine is not stopping), the session is claimed in the same
    /// write that wakes it and its check starts here, without waiting for a scheduler pass;
    /// else it is only made due.
    pub async fn push(
        self: &Arc<Self>,
        id: &SessionId,
        provider: &str,
    ) -> Result<Pushed, StoreError> {
        if self.note_push(id.as_str(), provider) {
            metrics::counter!("kyso_pushes_during_step_total").increment(1);
            return Ok(Pushed::Woken);
        }
        let target = self.store.push_target(id, provider).await?;
        if target == PushTarget::Missing {
            return Ok(Pushed::Missing);
        }
        let entry = self.providers.get(provider).cloned();
        let permit = entry
            .as_ref()
            .filter(|_| !self.stopping.load(Ordering::Relaxed))
            .and_then(|e| slot(e, 1));
        if target == PushTarget::Pending && permit.is_none() {
            // Marking it again would change nothing; the scheduler takes it when it can.
            self.wake();
            return Ok(Pushed::Coalesced);
        }
        let woken = self.store.wake(id, provider, permit.is_some()).await?;
        let found = woken.found();
        match (woken, entry, permit) {
            (Woken::Claimed(work), Some(entry), Some(permit))
                if !self.in_flight_contains(id.as_str()) =>
            {
                self.start_claimed(entry, *work, permit).await;
            }
            (Woken::Claimed(work), ..) => self.give_back(work.held()).await,
            (Woken::Marked, ..) => self.wake(),
            (Woken::Missing, ..) => {}
        }
        Ok(if found {
            Pushed::Woken
        } else {
            Pushed::Missing
        })
    }
}
