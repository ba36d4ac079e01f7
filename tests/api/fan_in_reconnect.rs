//! Issue 16 item 4: after its LISTEN connection is lost, an instance catches up from the outbox
//! — for a tenant it has never seen, from that tenant's first event. The new tenant's events
//! are written without `pg_notify`, as commits made while the listener was away are heard by
//! nobody: only the catch-up can publish them.

use std::time::Duration;

use kyso::domain::SessionId;
use sqlx::Connection;

use crate::helpers::{new_session as new, smartca_session as session};
use crate::pg::fresh_db;
use crate::store_story::fan_in::Pair;

#[tokio::test]
async fn a_new_tenants_first_events_are_published_after_a_listener_reconnect() {
    let Some(db) = fresh_db("fan-in-reconnect").await else {
        return;
    };
    let Pair {
        one,
        mut rx,
        stop_tx,
        listener,
        ..
    } = Pair::open(&db.url).await;
    // Once an event of another tenant is heard, the first catch-up is over.
    let mut heard = None;
    for _ in 0..50 {
        let s = session("old", "001099012345", "r");
        one.create(&new(&s, None, 1, true)).await.expect("create");
        if let Ok(Ok(ev)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            heard = Some(ev);
            break;
        }
    }
    assert_eq!(heard.expect("the listener hears").tenant.as_ref(), "old");
    while rx.try_recv().is_ok() {}

    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let ids: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
    for (i, id) in ids.iter().enumerate() {
        sqlx::query(
            "INSERT INTO outbox (tenant, seq, session_id, status, frame, created_at)
             VALUES ('fresh', $1, $2, 'pending', $3, 0)",
        )
        .bind(i as i64 + 1)
        .bind(id.as_str())
        .bind(format!("frame {}", i + 1))
        .execute(&mut conn)
        .await
        .expect("outbox");
    }
    sqlx::query("INSERT INTO tenant_seq (tenant, last_seq) VALUES ('fresh', 3)")
        .execute(&mut conn)
        .await
        .expect("tenant_seq");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'listen%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("terminate");
    assert_eq!(killed, [true], "one LISTEN connection terminated");

    let mut got = Vec::new();
    while got.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Ok(ev)) if ev.tenant.as_ref() == "fresh" => got.push((ev.seq, ev.session_id)),
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    let want: Vec<(i64, SessionId)> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| (i as i64 + 1, id))
        .collect();
    assert_eq!(
        got, want,
        "the new tenant's events, published after the reconnect"
    );
    let _ = stop_tx.send(true);
    let _ = listener.await;
}
