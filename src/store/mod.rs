//! Persistence behind one object-safe trait. A session's state change and its outbox event are
//! written in one transaction; the outbox gives every tenant a gap-free, durable sequence that
//! the WebSocket replays from. SQLite is the embedded backend (one instance); PostgreSQL lets
//! many instances share the work: due sessions are leased to one instance at a time, and
//! committed events are announced to every instance with `pg_notify`.

pub mod claim;
mod lease;
mod postgres;
pub mod prune;
mod schema;
pub mod shared;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Publish, Session, SessionId, Status};

pub use claim::{Claim, Queue};
pub use lease::{Held, CREATED_EPOCH};
pub use postgres::PgStore;
pub use schema::Migrations;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Another instance took the session's lease over (this one's lapsed): the write was
    /// refused, and this instance must not work on the session any more.
    #[error("the lease of session {0} was taken over by another claim")]
    LeaseLost(SessionId),
    /// A failure shared by every write of one batch (a group commit, or pushes claimed
    /// together): the batch's error is logged once, and each of its callers gets this copy
    /// of its text (`sqlx::Error` cannot be cloned).
    #[error("in a batch of writes: {0}")]
    Batch(String),
    /// The database's schema is not the one this binary was built for (see `schema`).
    #[error("schema: {0}")]
    Schema(String),
    #[error("unsupported database url `{0}` (use sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
}

pub(crate) use crate::domain::render_frame;
/// The store makes events; their type lives below it, with the session's.
pub use crate::domain::Event;

#[derive(Debug, Clone)]
pub struct NewSession {
    pub session: Session,
    pub idempotency_key: Option<String>,
    pub request_hash: [u8; 32],
    /// When false, a signer with an unfinished session of the same tenant is refused.
    pub allow_concurrent: bool,
    /// Claimed by this instance until then: its creator starts it at once, without a
    /// scheduler pass. `None`: due now, for the scheduler to claim.
    pub lease_until: Option<DateTime<Utc>>,
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
    /// The claim's lease epoch (see [`Held`]).
    pub epoch: i64,
}

impl Work {
    /// A claimed row's `body`, `work` and `lease_epoch` columns.
    pub(crate) fn from_row(
        body: &str,
        work: Option<String>,
        epoch: i64,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            session: decode(body)?,
            work,
            epoch,
        })
    }

    /// The lease this claim holds.
    pub fn held(&self) -> Held {
        Held {
            id: self.session.id.clone(),
            epoch: self.epoch,
        }
    }
}

/// What a provider push would change, as read before any write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushTarget {
    /// No unfinished session of that provider has the id: nothing to do.
    Missing,
    /// Due now and nobody works on it, or already marked by an earlier push: the push adds
    /// nothing.
    Pending,
    /// Waiting for a later check, or held by a step: the push needs [`Store::wake`].
    Waiting,
}

/// What a provider push did to a session.
#[derive(Debug)]
pub enum Woken {
    /// No unfinished session of that provider has the id.
    Missing,
    /// Due now, or marked to be due as soon as the step in flight writes.
    Marked,
    /// Claimed for this instance (only when asked to claim).
    Claimed(Box<Work>),
}

impl Woken {
    /// The push named an unfinished session of its provider.
    pub fn found(&self) -> bool {
        !matches!(self, Woken::Missing)
    }
}

/// A state change: the new session, the status it must still have in the database (so a
/// concurrent cancel wins cleanly), the engine state to keep, and the lease the writer holds.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub session: &'a Session,
    pub expected: Status,
    pub next_check_at: Option<DateTime<Utc>>,
    pub work: Option<&'a str>,
    /// The step's lease: the write is refused with [`StoreError::LeaseLost`] once another
    /// claim took the session over. `None` for a write that holds no lease (an API cancel),
    /// which only needs the expected status.
    pub lease: Option<&'a Held>,
}

/// A [`Change`] as the writers queue it: owned, the session's JSON encoded once, and no next
/// check for a terminal status.
#[derive(Debug)]
pub(crate) struct StatusWrite {
    pub session: Box<Session>,
    pub body: String,
    pub expected: Status,
    pub next_check_at: Option<i64>,
    pub work: Option<String>,
    /// The lease's epoch, when the write holds one.
    pub epoch: Option<i64>,
}

impl StatusWrite {
    pub(crate) fn of(change: &Change<'_>) -> Result<Self, StoreError> {
        let s = change.session;
        Ok(Self {
            session: Box::new(s.clone()),
            body: encode(s)?,
            expected: change.expected,
            next_check_at: if s.status.is_terminal() {
                None
            } else {
                change.next_check_at.map(ms)
            },
            work: change.work.map(str::to_owned),
            epoch: change.lease.map(|l| l.epoch),
        })
    }
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
    /// What `create` would answer a repeat of an earlier create with `new`'s idempotency key
    /// (`Existing` or `IdempotencyMismatch`), read without writing; `None` when the key is
    /// new or absent. Lets a replay be answered before it is charged as a new request.
    async fn replay(&self, new: &NewSession) -> Result<Option<Created>, StoreError>;
    async fn get(&self, tenant: &str, id: &SessionId) -> Result<Option<Session>, StoreError>;
    async fn list(&self, tenant: &str, filter: &ListFilter) -> Result<Vec<Session>, StoreError>;
    /// Claims unfinished sessions whose `next_check_at` has come, earliest first, among those
    /// `claim` names (see [`Claim`]). On a shared database each is leased to this instance
    /// until `apply`, `reschedule` or `release`, or until the lease expires (the instance died).
    async fn due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim: Claim<'_>,
    ) -> Result<Vec<Work>, StoreError>;
    /// The queues of `provider`: per tenant with unfinished sessions not leased, the earliest
    /// next check (at most [`claim::MAX_QUEUES`], by tenant id).
    async fn queues(&self, provider: &str) -> Result<Vec<Queue>, StoreError>;
    /// The earliest deadline among `provider`'s unfinished sessions.
    async fn next_expiry(&self, provider: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Extends the leases this instance still works on, from the database's clock. Returns
    /// the ones it no longer holds (another claim took them over): their steps must not write.
    async fn renew(&self, held: &[Held]) -> Result<Vec<SessionId>, StoreError>;
    /// Gives claimed sessions back without working on them (only leases still held).
    async fn release(&self, held: &[Held]) -> Result<(), StoreError>;
    /// Publishes to `hub` the events other instances commit, until `shutdown`. A single-instance
    /// backend has none and only waits for `shutdown`: returning earlier means it failed.
    async fn fan_in(&self, hub: Arc<dyn Publish>, shutdown: tokio::sync::watch::Receiver<bool>);
    /// The store's own background tasks (writers, waker), named, for the application to
    /// supervise: each runs as long as the store. Handed out once; later calls get none.
    fn take_tasks(&self) -> Vec<(&'static str, tokio::task::JoinHandle<()>)>;
    /// Applies a status change with its event; `None` when the session no longer had
    /// `expected` (someone else changed it first).
    async fn apply(&self, change: Change<'_>) -> Result<Option<Event>, StoreError>;
    /// Moves the next check without changing the status (no event), ending the lease;
    /// `Ok(false)` when the session no longer had `expected`, [`StoreError::LeaseLost`] when
    /// another claim took it over.
    async fn reschedule(
        &self,
        held: &Held,
        expected: Status,
        next_check_at: DateTime<Utc>,
        work: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Makes an unfinished session due now (a provider callback arrived).
    /// Only a session of `provider`: a push on one provider's callback URL cannot wake
    /// another provider's sessions. With `claim`, a session nobody is working on is claimed
    /// for this instance in the same write, so its check can start at once; one already in
    /// flight is marked so that its step's write leaves it due now.
    async fn wake(&self, id: &SessionId, provider: &str, claim: bool) -> Result<Woken, StoreError>;
    /// Reads, without writing, whether a push for `id` would change anything (see
    /// [`PushTarget`]): pushes for unknown or finished sessions, and repeated ones, then cost
    /// a read instead of a place in the writer's queue.
    async fn push_target(&self, id: &SessionId, provider: &str) -> Result<PushTarget, StoreError>;
    async fn events_after(
        &self,
        tenant: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;
    /// The seq of the tenant's newest committed event (0 before its first): where a subscriber
    /// that asked for live events only starts, so that an event published out of order just
    /// after it joined is still waited for instead of skipped.
    async fn last_seq(&self, tenant: &str) -> Result<i64, StoreError>;
    /// The oldest seq of `tenant` still kept (`None`: none is, either none was ever written or
    /// retention pruned them all).
    async fn oldest_seq(&self, tenant: &str) -> Result<Option<i64>, StoreError>;
    /// Deletes one batch of what retention lets go (see [`prune`]).
    async fn prune(&self, cut: prune::Cutoffs) -> Result<prune::Pruned, StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    /// Stores a certificate bundle (JSON) under `digest` (its name, see `engine::bundles`),
    /// durably, before a session's work names it; storing a digest already there only marks
    /// it as stored now (retention keeps bundles stored recently).
    async fn put_bundle(&self, digest: &str, bundle: &str) -> Result<(), StoreError>;
    /// The bundle stored under `digest`.
    async fn bundle(&self, digest: &str) -> Result<Option<String>, StoreError>;
    /// Limits and single-use secrets shared with the other instances, on a store several
    /// instances share; `None` on a store one instance owns (see [`shared`]).
    fn shared(&self) -> Option<&dyn shared::Shared> {
        None
    }
}

/// Opens the backend named by the URL and applies its migrations.
pub async fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open_with(url, options).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::open(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Settings that matter only to a shared database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Names this instance in leases and notifications.
    pub instance: String,
    /// How long a claimed session stays with this instance without renewal.
    pub lease: std::time::Duration,
    pub max_connections: u32,
    /// SQLite: WAL bytes at which the checkpointer makes the log start over.
    pub wal_limit: u64,
    /// Whether this start may migrate an existing database (a fresh one is always set up).
    pub migrations: Migrations,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            instance: format!("kyso-{}", ulid::Ulid::new()),
            lease: std::time::Duration::from_secs(30),
            max_connections: 16,
            wal_limit: 64 << 20,
            migrations: Migrations::FreshOnly,
        }
    }
}

/// Sends `op` (made around its reply channel) to a store's task and waits for the answer; a
/// task that is gone reads as a closed pool.
pub(crate) async fn request<O, T>(
    task: &tokio::sync::mpsc::Sender<O>,
    op: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, StoreError>>) -> O,
) -> Result<T, StoreError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let gone = || StoreError::Database(sqlx::Error::PoolClosed);
    task.send(op(reply)).await.map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

pub(crate) fn decode(body: &str) -> Result<Session, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The columns of a new session's row, in the order [`bind_session`] binds them.
pub(crate) const SESSION_COLUMNS: &str = "id, tenant, provider, signer, status, reference, \
     idempotency_key, request_hash, created_at, expires_at, next_check_at, body";

/// Binds a new session's [`SESSION_COLUMNS`] to the next twelve parameters of `q`. A leased
/// session's next check is its lease's end: due again only if its creator never wrote it.
pub(crate) fn bind_session<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    new: &'q NewSession,
    body: &'q str,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let s = &new.session;
    q.bind(s.id.as_str())
        .bind(s.tenant.as_str())
        .bind(s.provider.as_str())
        .bind(s.signer.as_str())
        .bind(s.status.as_str())
        .bind(s.reference.as_deref())
        .bind(new.idempotency_key.as_deref())
        .bind(new.request_hash.as_slice())
        .bind(ms(s.created_at))
        .bind(ms(s.expires_at))
        .bind(ms(new.lease_until.unwrap_or(s.created_at)))
        .bind(body)
}

pub(crate) fn encode(session: &Session) -> Result<String, StoreError> {
    serde_json::to_string(session).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Both backends' query for a page of a tenant's events: `$1` tenant, `$2` after, `$3` limit
/// (SQLite reads `$N` as numbered parameters too). A terminal event's frame is not stored (see
/// [`stored_frame`]); the session's body, which a terminal state never changes, is read with it.
pub(crate) const EVENTS_AFTER: &str = "SELECT o.seq, o.session_id, o.status, o.frame, s.body
     FROM outbox o LEFT JOIN sessions s ON o.frame IS NULL AND s.id = o.session_id
     WHERE o.tenant = $1 AND o.seq > $2 ORDER BY o.seq LIMIT $3";

/// An outbox row as both backends read it ([`EVENTS_AFTER`]).
pub(crate) fn event_from_row<R: sqlx::Row>(tenant: &Arc<str>, r: &R) -> Result<Event, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let seq: i64 = r.try_get("seq")?;
    let session_id: String = r.try_get("session_id")?;
    let status: String = r.try_get("status")?;
    let frame = match (
        r.try_get::<Option<String>, _>("frame")?,
        r.try_get::<Option<String>, _>("body")?,
    ) {
        (Some(frame), _) => frame,
        (None, Some(body)) => render_frame(seq, &body),
        (None, None) => {
            return Err(StoreError::Corrupt(format!(
                "event {seq} has no frame and session {session_id} no body"
            )))
        }
    };
    Ok(Event {
        tenant: tenant.clone(),
        seq,
        session_id: SessionId::parse(&session_id)
            .ok_or_else(|| StoreError::Corrupt(format!("session id {session_id}")))?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
        frame: frame.into(),
    })
}

/// What the outbox stores as an event's frame: nothing for a terminal state. Its frame would
/// repeat the session's final body (certificate, chain and identity: about 5 KB), which a
/// terminal state never changes (SPEC §2.2), so [`EVENTS_AFTER`] renders it from the session
/// row instead; that halves the bytes a completed session writes.
pub(crate) fn stored_frame(event: &Event) -> Option<&str> {
    (!event.status.is_terminal()).then_some(&*event.frame)
}
