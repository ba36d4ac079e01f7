//! The statement that writes status changes inside a writer batch: the rows locked in id
//! order, then every change of the run in one `unnest` UPDATE that only touches sessions still
//! in their expected status and, for a change made under a lease, still leased to this
//! instance with the change's epoch (see `store::lease`).

use std::collections::HashMap;

use chrono::Utc;
use sqlx::{PgConnection, Row};

use super::{Change, Done};
use crate::store::{ms, StoreError};

/// Status changes of distinct sessions in one UPDATE; `Unchanged` where a session no longer
/// had its expected status, `LeaseLost` where it had but another claim took its lease over.
pub(super) async fn apply_many(
    tx: &mut PgConnection,
    instance: &str,
    changes: &[&Change],
) -> Result<Vec<Done>, StoreError> {
    let mut c = ApplyColumns::default();
    for change in changes {
        if let Change::Apply(w) = change {
            c.ids.push(w.session.id.as_str());
            c.expected.push(w.expected.as_str());
            c.statuses.push(w.session.status.as_str());
            c.bodies.push(&w.body);
            c.next.push(w.next_check_at);
            c.work.push(w.work.as_deref());
            c.epochs.push(w.epoch);
        }
    }
    // Row locks in id order, as lease releases take them, so two writers never wait on each
    // other in a cycle.
    let mut sorted = c.ids.clone();
    sorted.sort_unstable();
    // Prepared, as every statement here: the connections run with `enable_seqscan = off`
    // (see `PgStore::open`), so the generic plan cached while `sessions` was small is an
    // index scan too.
    // What the locks found, by id: whether the session is still leased to this instance, and
    // with which epoch (a refused change is told apart from one whose status moved on).
    let locked: HashMap<String, (String, Option<i64>)> = sqlx::query(
        "SELECT id, status, CASE WHEN lease_owner = $2 THEN lease_epoch END AS epoch
         FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&sorted)
    .bind(instance)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("id")?,
            (r.try_get("status")?, r.try_get("epoch")?),
        ))
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let updated: Vec<String> = sqlx::query_scalar(
        // A callback that came while this change was in flight makes the next check due
        // now rather than at the scheduled time, from the session's creation: ahead of every
        // session created after it (see the waker).
        "UPDATE sessions s SET status = v.status, body = v.body,
             next_check_at = CASE WHEN s.woken AND v.next IS NOT NULL
                                  THEN LEAST(v.next, $7, s.created_at) ELSE v.next END,
             work = v.work, lease_owner = NULL, lease_until = NULL, woken = FALSE
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                     $8::bigint[])
              AS v(id, expected, status, body, next, work, epoch)
         WHERE s.id = v.id AND s.status = v.expected
           -- fenced: a lapsed holder's change leaves the new holder's session alone
           AND (v.epoch IS NULL OR (s.lease_owner = $9 AND s.lease_epoch = v.epoch))
         RETURNING s.id",
    )
    .bind(&c.ids)
    .bind(&c.expected)
    .bind(&c.statuses)
    .bind(&c.bodies)
    .bind(&c.next)
    .bind(&c.work)
    .bind(ms(Utc::now()))
    .bind(&c.epochs)
    .bind(instance)
    .fetch_all(&mut *tx)
    .await?;
    let updated: std::collections::HashSet<&str> = updated.iter().map(String::as_str).collect();
    Ok(changes
        .iter()
        .map(|change| match change {
            Change::Apply(w) if updated.contains(w.session.id.as_str()) => {
                Done::event(&w.session, w.body.clone())
            }
            Change::Apply(w) if w.epoch.is_some() => match locked.get(w.session.id.as_str()) {
                Some((status, epoch)) if status == w.expected.as_str() && *epoch != w.epoch => {
                    Done::LeaseLost(w.session.id.clone())
                }
                _ => Done::Unchanged,
            },
            _ => Done::Unchanged,
        })
        .collect())
}

#[derive(Default)]
struct ApplyColumns<'a> {
    ids: Vec<&'a str>,
    expected: Vec<&'a str>,
    statuses: Vec<&'a str>,
    bodies: Vec<&'a str>,
    next: Vec<Option<i64>>,
    work: Vec<Option<&'a str>>,
    epochs: Vec<Option<i64>>,
}
