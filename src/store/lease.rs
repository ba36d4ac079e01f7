//! Lease tokens. On a shared database a claimed session is leased to one instance; every claim
//! moves the session's lease epoch on, and the claimer keeps it as a [`Held`]. Every write the
//! holder makes of that session names it, and the store refuses it with
//! [`StoreError::LeaseLost`](super::StoreError::LeaseLost) once another claim has taken the
//! session over: a holder paused past its lease (a stalled process, a lost network) cannot
//! write over, or wipe the lease of, the instance that took its work.
//!
//! SQLite serves one instance: nobody else can take a lease over, so it accepts the token and
//! ignores its epoch.

use crate::domain::SessionId;

/// The epoch of a session created leased to its creator (see `NewSession::lease_until`): the
/// first claim of its row.
pub const CREATED_EPOCH: i64 = 1;

/// A lease this instance holds: the session and the epoch its claim was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub id: SessionId,
    pub epoch: i64,
}

impl Held {
    /// The ids of `held`, as the statements bind them.
    pub(crate) fn ids(held: &[Held]) -> Vec<&str> {
        held.iter().map(|h| h.id.as_str()).collect()
    }

    /// The epochs of `held`, in the order of [`Held::ids`].
    pub(crate) fn epochs(held: &[Held]) -> Vec<i64> {
        held.iter().map(|h| h.epoch).collect()
    }
}
