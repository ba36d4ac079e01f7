//! The scheduler's statements read through their indexes on SQLite (`EXPLAIN QUERY PLAN`), so
//! a look at due work costs what it returns, not the backlog: no statement scans `sessions`,
//! none sorts it (a "TEMP B-TREE" would mean reading every due row to order them).

use sqlx::Connection;

use super::sql::placeholder;
use crate::store::claim::{claim_where, next_expiry_sql, queues_sql, Claim};
use crate::store::{SqliteStore, StoreOptions};

async fn plan(conn: &mut sqlx::SqliteConnection, sql: &str, params: usize) -> String {
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
    for _ in 0..params {
        q = q.bind(1_i64);
    }
    let rows = q.fetch_all(&mut *conn).await.expect("explain");
    rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
}

fn assert_indexed(plan: &str, index: &str) {
    assert!(plan.contains(index), "{index} unused:\n{plan}");
    // The recursive CTE's own rows ("SCAN t", a constant row) are not the table.
    let scans = plan
        .lines()
        .filter(|l| l.starts_with("SCAN ") && !l.starts_with("SCAN t") && !l.contains("CONSTANT"))
        .count();
    assert_eq!(scans, 0, "a scan:\n{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "a sort:\n{plan}");
}

#[tokio::test]
async fn the_scheduler_reads_due_work_through_its_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqliteStore::open_with(&url, &StoreOptions::default())
        .await
        .expect("open");
    drop(store);
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let one = ["p".to_owned()];
    let list = |n: String| format!("provider IN (SELECT value FROM json_each({n}))");

    let queues = plan(&mut conn, &queues_sql(placeholder, "1"), 2).await;
    assert_indexed(&queues, "sessions_provider_tenant_due");

    let expiry = plan(&mut conn, &next_expiry_sql(placeholder), 1).await;
    assert_indexed(&expiry, "sessions_provider_expiry");

    let tenant = Claim::provider(&one).tenant("t");
    let sql = format!(
        "SELECT id FROM sessions WHERE {}",
        claim_where(&tenant, placeholder, 1, list, "1")
    );
    assert_indexed(
        &plan(&mut conn, &sql, 4).await,
        "sessions_provider_tenant_due",
    );

    let expired = Claim::provider(&one).expired();
    let sql = format!(
        "SELECT id FROM sessions WHERE {}",
        claim_where(&expired, placeholder, 1, list, "1")
    );
    assert_indexed(&plan(&mut conn, &sql, 3).await, "sessions_provider_expiry");
}
