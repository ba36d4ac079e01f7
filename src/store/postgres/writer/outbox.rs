//! The events of a writer batch (or of one create's own transaction): numbered per tenant
//! through `tenant_seq`, written to the outbox in one `unnest` INSERT and announced with one
//! `pg_notify` per tenant.

use std::collections::BTreeMap;

use chrono::Utc;
use sqlx::PgConnection;

use super::super::{Notice, CHANNEL};
use super::Done;
use crate::store::{ms, render_frame, stored_frame, Event, StoreError};

/// The batch's outbox rows, column by column (inserted with one `unnest`).
#[derive(Default)]
struct OutboxRows<'a> {
    tenants: Vec<&'a str>,
    seqs: Vec<i64>,
    ids: Vec<&'a str>,
    statuses: Vec<&'a str>,
    /// `None` for a terminal event (see [`stored_frame`]).
    frames: Vec<Option<String>>,
}

/// Numbers the batch's events per tenant, writes them to the outbox and announces them.
/// Returns each change's event (in the order of `done`).
pub(in crate::store::postgres) async fn number(
    tx: &mut PgConnection,
    instance: &str,
    done: &[Done],
) -> Result<Vec<Option<Event>>, StoreError> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for d in done {
        if let Done::Event { tenant, .. } = d {
            *counts.entry(tenant.as_str()).or_default() += 1;
        }
    }
    // Each tenant's first number in this batch; tenants locked in sorted order.
    let mut next: BTreeMap<&str, i64> = BTreeMap::new();
    let mut notices = Vec::with_capacity(counts.len());
    let now = ms(Utc::now());
    for (&tenant, &count) in &counts {
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO tenant_seq (tenant, last_seq) VALUES ($1, $2)
             ON CONFLICT (tenant) DO UPDATE SET last_seq = tenant_seq.last_seq + $2
             RETURNING last_seq",
        )
        .bind(tenant)
        .bind(count)
        .fetch_one(&mut *tx)
        .await?;
        next.insert(tenant, last - count + 1);
        let notice = Notice {
            i: instance.to_owned(),
            t: tenant.to_owned(),
            f: Some(last - count + 1),
            s: last,
            at: now,
        };
        notices
            .push(serde_json::to_string(&notice).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    }
    let mut events = Vec::with_capacity(done.len());
    let mut rows = OutboxRows::default();
    for d in done {
        let Done::Event {
            tenant,
            id,
            status,
            body,
        } = d
        else {
            events.push(None);
            continue;
        };
        let slot = next
            .get_mut(tenant.as_str())
            .expect("every event's tenant was counted");
        let seq = *slot;
        *slot += 1;
        let frame = render_frame(seq, body);
        rows.tenants.push(tenant);
        rows.seqs.push(seq);
        rows.ids.push(id.as_str());
        rows.statuses.push(status.as_str());
        let event = Event {
            tenant: tenant.as_str().into(),
            seq,
            session_id: id.clone(),
            status: *status,
            frame: frame.into(),
        };
        rows.frames.push(stored_frame(&event).map(str::to_owned));
        events.push(Some(event));
    }
    if rows.tenants.is_empty() {
        return Ok(events);
    }
    sqlx::query(
        "INSERT INTO outbox (tenant, seq, session_id, status, frame, created_at)
         SELECT t, s, i, st, f, $6
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[])
              AS r(t, s, i, st, f)",
    )
    .bind(&rows.tenants)
    .bind(&rows.seqs)
    .bind(&rows.ids)
    .bind(&rows.statuses)
    .bind(&rows.frames)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n")
        .bind(CHANNEL)
        .bind(&notices)
        .execute(&mut *tx)
        .await?;
    Ok(events)
}
