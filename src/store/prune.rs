//! What retention deletes, shared by both backends. One call deletes at most one batch of
//! each kind, oldest first, so the writer and the WebSockets never wait long behind it:
//! - events created before the cutoff;
//! - then, once no event before the cutoff is left, finished sessions that completed an hour
//!   before it (a terminal event's frame is rendered from its session row, so a session goes
//!   only after every one of its events is gone; its terminal event is committed moments after
//!   its completion time, well within the hour);
//! - certificate bundles last stored before their own cutoff (an instance stores a bundle again
//!   at least hourly while sessions use it, and the cutoff is at least two days, longer than
//!   any session may wait), so no unfinished session names one that goes.

use chrono::{DateTime, Utc};

/// Rows one prune call deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub sessions: u64,
    pub bundles: u64,
}

impl std::ops::AddAssign for Pruned {
    fn add_assign(&mut self, other: Self) {
        self.events += other.events;
        self.sessions += other.sessions;
        self.bundles += other.bundles;
    }
}

/// How much earlier than the events' cutoff a session must have completed to go.
pub const SESSION_MARGIN: chrono::Duration = chrono::Duration::hours(1);

/// The cutoffs of one prune call.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    /// Events created before this go (sessions: see [`Cutoffs::sessions`]).
    pub finished: DateTime<Utc>,
    /// Bundles last stored before this go.
    pub bundles: DateTime<Utc>,
    /// Rows of each kind per call.
    pub batch: u32,
}

impl Cutoffs {
    /// Sessions completed (and expired) before this go, once no event before `finished` is left.
    pub fn sessions(&self) -> DateTime<Utc> {
        self.finished - SESSION_MARGIN
    }
}
