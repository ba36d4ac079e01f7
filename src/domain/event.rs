//! A tenant's event: one state change of a session, numbered in the tenant's gap-free sequence
//! and rendered once, when it is written, as the WebSocket frame of SPEC §2.4. The store makes
//! events; whatever publishes them to live subscribers takes them through [`Publish`], so the
//! store never knows who listens.

use std::sync::Arc;

use super::{SessionId, Status};

/// One event of a tenant's stream, already rendered as the WebSocket frame.
#[derive(Debug, Clone)]
pub struct Event {
    pub tenant: Arc<str>,
    pub seq: i64,
    pub session_id: SessionId,
    pub status: Status,
    pub frame: Arc<str>,
}

/// The WebSocket frame of SPEC §2.4 for the session (its JSON) at `seq`.
pub fn render_frame(seq: i64, session_json: &str) -> String {
    format!(r#"{{"type":"session.updated","seq":{seq},"session":{session_json}}}"#)
}

/// Where committed events go to reach live subscribers (the event hub). The outbox keeps every
/// event, so a publisher may drop one for a subscriber that is too slow.
pub trait Publish: Send + Sync {
    fn publish(&self, event: Event);
}
