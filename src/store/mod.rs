//! Persistence behind one object-safe trait. A session's state change and its outbox event are
//! written in one transaction; the outbox gives every tenant a gap-free, durable sequence that
//! the WebSocket replays from. SQLite is the embedded backend.

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Session, SessionId, Status};

pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database url `{0}` (use sqlite://…)")]
    UnsupportedUrl(String),
}

/// One event of a tenant's stream, already rendered as the WebSocket frame.
#[derive(Debug, Clone)]
pub struct Event {
    pub tenant: Arc<str>,
    pub seq: i64,
    pub session_id: SessionId,
    pub status: Status,
    pub frame: Arc<str>,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub session: Session,
    pub idempotency_key: Option<String>,
    pub request_hash: [u8; 32],
    /// When false, a signer with an unfinished session of the same tenant is refused.
    pub allow_concurrent: bool,
}

#[derive(Debug)]
pub enum Created {
    New(Event),
    /// The same idempotency key with the same request: the session made the first time.
    Existing(Box<Session>),
    IdempotencyMismatch,
    SignerBusy,
}

/// A pending session due for work, with the engine's private state.
#[derive(Debug, Clone)]
pub struct Work {
    pub session: Session,
    /// Engine-private JSON (provider state, certificate, attempt count).
    pub work: Option<String>,
}

/// A state change: the new session, the status it must still have in the database (so a
/// concurrent cancel wins cleanly), and the engine state to keep.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub session: &'a Session,
    pub expected: Status,
    pub next_check_at: Option<DateTime<Utc>>,
    pub work: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub reference: Option<String>,
    pub status: Option<Status>,
    /// Sessions older than this id (ids sort by creation time).
    pub before: Option<SessionId>,
    pub limit: u32,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn create(&self, new: &NewSession) -> Result<Created, StoreError>;
    async fn get(&self, tenant: &str, id: &SessionId) -> Result<Option<Session>, StoreError>;
    async fn list(&self, tenant: &str, filter: &ListFilter) -> Result<Vec<Session>, StoreError>;
    /// Unfinished sessions whose `next_check_at` has come, earliest first.
    async fn due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Work>, StoreError>;
    /// The earliest `next_check_at` of any unfinished session.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Applies a status change with its event; `None` when the session no longer had
    /// `expected` (someone else changed it first).
    async fn apply(&self, change: Change<'_>) -> Result<Option<Event>, StoreError>;
    /// Moves the next check without changing the status (no event).
    async fn reschedule(
        &self,
        id: &SessionId,
        expected: Status,
        next_check_at: DateTime<Utc>,
        work: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Makes an unfinished session due now (a provider callback arrived).
    async fn wake(&self, id: &SessionId) -> Result<bool, StoreError>;
    async fn events_after(
        &self,
        tenant: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Opens the backend named by the URL and applies its migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// The WebSocket frame of SPEC §2.4. Rendered once, when the event is written.
pub(crate) fn render_frame(seq: i64, session_json: &str) -> String {
    format!(r#"{{"type":"session.updated","seq":{seq},"session":{session_json}}}"#)
}
