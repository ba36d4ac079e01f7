//! The statements behind a push's wake: claim the pushed session when nobody works on it,
//! otherwise mark it woken for the step that holds it.

use std::collections::HashMap;

use sqlx::{Row, SqliteConnection};

use super::super::super::StoreError;
use super::pieces;
use crate::domain::SessionId;

/// What a wake did, as the writer read it: claimed a session (its body and work), marked an
/// unfinished session of the provider woken, or found none.
#[derive(Debug)]
pub(in crate::store::sqlite) enum Woke {
    Claimed { body: String, work: Option<String> },
    Marked,
    Missing,
}

/// A push that claims its session, if nobody works on it, until `until`.
pub(in crate::store::sqlite) struct WakeClaim {
    pub id: SessionId,
    pub provider: String,
    pub until: i64,
}

/// Claims each pushed session nobody works on (one statement per piece of [`PIECES`] rows);
/// the others are only marked woken, see [`mark_woken`].
pub(in crate::store::sqlite) async fn wake_many(
    conn: &mut SqliteConnection,
    wakes: &[WakeClaim],
) -> Result<Vec<Woke>, StoreError> {
    let mut claimed = HashMap::with_capacity(wakes.len());
    for piece in pieces(wakes) {
        let values = vec!["(?, ?, ?)"; piece.len()].join(", ");
        let sql = format!(
            "UPDATE sessions SET next_check_at = v.column3, claimed = 1, woken = 0
             FROM (VALUES {values}) AS v
             WHERE sessions.id = v.column1 AND sessions.provider = v.column2
               AND sessions.next_check_at IS NOT NULL AND sessions.claimed = 0
             RETURNING sessions.id, sessions.body, sessions.work"
        );
        let mut q = sqlx::query(&sql);
        for w in piece {
            q = q.bind(w.id.as_str()).bind(&w.provider).bind(w.until);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let id: String = row.try_get("id")?;
            let (body, work) = (row.try_get("body")?, row.try_get("work")?);
            claimed.insert(id, Woke::Claimed { body, work });
        }
    }
    let mut woke = Vec::with_capacity(wakes.len());
    for w in wakes {
        woke.push(match claimed.remove(w.id.as_str()) {
            Some(claimed) => claimed,
            None => mark_woken(conn, &w.id, &w.provider).await?,
        });
    }
    Ok(woke)
}

/// Makes the session due (from its creation: a woken session goes ahead of every session
/// created after it, so under a backlog started sessions finish before new ones start) and
/// marks it woken for the step in flight: `Marked`, or `Missing`
/// when no unfinished session of `provider` has the id.
pub(in crate::store::sqlite) async fn mark_woken(
    conn: &mut SqliteConnection,
    id: &SessionId,
    provider: &str,
) -> Result<Woke, StoreError> {
    let n = sqlx::query(
        // A claimed session keeps its lease (its step's write makes it due now).
        "UPDATE sessions
         SET next_check_at = CASE WHEN claimed = 1 THEN next_check_at
                                  ELSE MIN(next_check_at, created_at) END,
             woken = 1
         WHERE id = ? AND provider = ? AND next_check_at IS NOT NULL",
    )
    .bind(id.as_str())
    .bind(provider)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(if n > 0 { Woke::Marked } else { Woke::Missing })
}
