//! The [`Store`] trait for PostgreSQL: creates (batched through the writer, or in their own
//! transaction under a signer's advisory lock), reads, due-session claims and leases,
//! reschedules, wakes, the event backlog and certificate bundles.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::lease::{placeholder, UNLEASED};
use super::{by_key, existing, waker, writer, PgStore};
use crate::domain::Publish;
use crate::domain::{Session, SessionId, Status};
use crate::store::claim::{next_expiry_sql, queues_from, queues_sql, MAX_QUEUES};
use crate::store::prune::{Cutoffs, Pruned};
use crate::store::{
    decode, event_from_row, from_ms, ms, Change, Claim, Created, Event, Held, ListFilter,
    NewSession, PushTarget, Queue, StatusWrite, Store, StoreError, Woken, Work, EVENTS_AFTER,
};

#[async_trait]
impl Store for PgStore {
    async fn create(&self, new: &NewSession) -> Result<Created, StoreError> {
        if new.allow_concurrent {
            let change = writer::Change::Create(Box::new(new.clone()));
            return self.write(change, writer::Reply::Created).await;
        }
        // The busy check takes an advisory lock per signer; such creates keep their own
        // transaction, so a batch never holds those locks in an order another instance's
        // batch could cross.
        let s = &new.session;
        let mut tx = self.pool.begin().await?;
        if !new.allow_concurrent {
            // Serialises creates for one signer across instances, so two portals' requests
            // cannot both pass the busy check.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
                .bind(format!("{}\u{1f}{}", s.tenant, s.signer))
                .execute(&mut *tx)
                .await?;
        }
        let found = writer::by_key(&mut tx, new).await?;
        if found.is_none() {
            let busy: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM sessions WHERE tenant = $1 AND signer = $2
                 AND next_check_at IS NOT NULL LIMIT 1",
            )
            .bind(&s.tenant)
            .bind(&s.signer)
            .fetch_optional(&mut *tx)
            .await?;
            if busy.is_some() {
                return Ok(Created::SignerBusy);
            }
        }
        let done = match found {
            Some(done) => done,
            None => writer::insert(&mut tx, &self.instance, new).await?,
        };
        match done {
            writer::Done::Event { .. } => {
                let events = writer::number(&mut tx, &self.instance, std::slice::from_ref(&done));
                let event = events.await?.pop().flatten();
                tx.commit().await?;
                event
                    .map(Created::New)
                    .ok_or_else(|| StoreError::Corrupt("a created session got no event".into()))
            }
            writer::Done::Existing(session) => Ok(Created::Existing(session)),
            writer::Done::Mismatch => Ok(Created::IdempotencyMismatch),
            // Another instance inserted the same idempotency key meanwhile.
            writer::Done::Conflict | writer::Done::Unchanged | writer::Done::LeaseLost(_) => {
                drop(tx);
                existing(&self.pool, new).await
            }
        }
    }

    async fn replay(&self, new: &NewSession) -> Result<Option<Created>, StoreError> {
        by_key(&self.pool, new).await
    }

    async fn get(&self, tenant: &str, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM sessions WHERE id = $1 AND tenant = $2")
                .bind(id.as_str())
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await?;
        body.as_deref().map(decode).transpose()
    }

    async fn list(&self, tenant: &str, f: &ListFilter) -> Result<Vec<Session>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM sessions WHERE tenant = $1
               AND ($2::text IS NULL OR reference = $2)
               AND ($3::text IS NULL OR status = $3)
               AND ($4::text IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5",
        )
        .bind(tenant)
        .bind(&f.reference)
        .bind(f.status.map(Status::as_str))
        .bind(f.before.as_ref().map(SessionId::as_str))
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|b| decode(b)).collect()
    }

    async fn due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim: Claim<'_>,
    ) -> Result<Vec<Work>, StoreError> {
        self.claim_due(now, limit, claim).await
    }

    async fn queues(&self, provider: &str) -> Result<Vec<Queue>, StoreError> {
        let rows = sqlx::query_as(&queues_sql(placeholder, UNLEASED))
            .bind(provider)
            .bind(i64::from(MAX_QUEUES))
            .fetch_all(&self.pool)
            .await?;
        Ok(queues_from(rows))
    }

    async fn next_expiry(&self, provider: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(&next_expiry_sql(placeholder))
            .bind(provider)
            .fetch_optional(&self.pool)
            .await?;
        Ok(at.map(from_ms))
    }

    async fn renew(&self, held: &[Held]) -> Result<Vec<SessionId>, StoreError> {
        self.renew_held(held).await
    }

    async fn release(&self, held: &[Held]) -> Result<(), StoreError> {
        self.release_held(held).await
    }

    async fn apply(&self, change: Change<'_>) -> Result<Option<Event>, StoreError> {
        let change = writer::Change::Apply(StatusWrite::of(&change)?);
        self.write(change, writer::Reply::Applied).await
    }

    async fn reschedule(
        &self,
        held: &Held,
        expected: Status,
        next_check_at: DateTime<Utc>,
        work: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.reschedule_held(held, expected, next_check_at, work)
            .await
    }

    async fn wake(&self, id: &SessionId, provider: &str, claim: bool) -> Result<Woken, StoreError> {
        let wake = |reply| waker::Wake {
            id: id.clone(),
            provider: provider.to_owned(),
            claim,
            reply,
        };
        crate::store::request(&self.wakes, wake).await
    }

    async fn push_target(&self, id: &SessionId, provider: &str) -> Result<PushTarget, StoreError> {
        waker::push_target(&self.pool, id, provider).await
    }

    async fn events_after(
        &self,
        tenant: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(EVENTS_AFTER)
            .bind(tenant)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let tenant: Arc<str> = tenant.into();
        rows.iter().map(|r| event_from_row(&tenant, r)).collect()
    }

    async fn last_seq(&self, tenant: &str) -> Result<i64, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM tenant_seq WHERE tenant = $1")
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn oldest_seq(&self, tenant: &str) -> Result<Option<i64>, StoreError> {
        super::prune::oldest_seq(&self.pool, tenant).await
    }

    async fn prune(&self, cut: Cutoffs) -> Result<Pruned, StoreError> {
        super::prune::run(&self.pool, cut).await
    }

    async fn fan_in(&self, hub: Arc<dyn Publish>, shutdown: watch::Receiver<bool>) {
        self.listen(hub, shutdown).await
    }

    fn take_tasks(&self) -> Vec<(&'static str, tokio::task::JoinHandle<()>)> {
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn shared(&self) -> Option<&dyn crate::store::shared::Shared> {
        Some(self)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn put_bundle(&self, digest: &str, bundle: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cert_bundles (digest, bundle, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO UPDATE SET created_at = excluded.created_at",
        )
        .bind(digest)
        .bind(bundle)
        .bind(ms(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn bundle(&self, digest: &str) -> Result<Option<String>, StoreError> {
        let bundle = sqlx::query_scalar("SELECT bundle FROM cert_bundles WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        Ok(bundle)
    }
}
