//! The statement that writes status changes inside a writer batch: the rows locked in id
//! order, then every change of the run in one `unnest` UPDATE that only touches sessions still
//! in their expected status.

use chrono::Utc;
use sqlx::PgConnection;

use super::{Change, Done};
use crate::store::{ms, StoreError};

/// Status changes of distinct sessions in one UPDATE; `Unchanged` where a session no longer
/// had its expected status.
pub(super) async fn apply_many(
    tx: &mut PgConnection,
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
        }
    }
    // Row locks in id order, as lease releases take them, so two writers never wait on each
    // other in a cycle.
    let mut sorted = c.ids.clone();
    sorted.sort_unstable();
    // Prepared, as every statement here: the connections run with `enable_seqscan = off`
    // (see `PgStore::open`), so the generic plan cached while `sessions` was small is an
    // index scan too.
    sqlx::query("SELECT 1 FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&sorted)
        .execute(&mut *tx)
        .await?;
    let updated: Vec<String> = sqlx::query_scalar(
        // A callback that came while this change was in flight makes the next check due
        // now rather than at the scheduled time.
        "UPDATE sessions s SET status = v.status, body = v.body,
             next_check_at = CASE WHEN s.woken AND v.next IS NOT NULL
                                  THEN LEAST(v.next, $7) ELSE v.next END,
             work = v.work, lease_owner = NULL, lease_until = NULL, woken = FALSE
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])
              AS v(id, expected, status, body, next, work)
         WHERE s.id = v.id AND s.status = v.expected
         RETURNING s.id",
    )
    .bind(&c.ids)
    .bind(&c.expected)
    .bind(&c.statuses)
    .bind(&c.bodies)
    .bind(&c.next)
    .bind(&c.work)
    .bind(ms(Utc::now()))
    .fetch_all(&mut *tx)
    .await?;
    let updated: std::collections::HashSet<&str> = updated.iter().map(String::as_str).collect();
    Ok(changes
        .iter()
        .map(|change| match change {
            Change::Apply(w) if updated.contains(w.session.id.as_str()) => {
                Done::event(&w.session, w.body.clone())
            }
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
}
