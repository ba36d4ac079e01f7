//! The schema guard on real databases: a database with part of this release's migrations (made
//! by running the first migrations only, as an older kyso did), one with a migration this binary
//! does not know, and on PostgreSQL a migration that needs a stop while a lease is live.

use std::path::Path;

use kyso::store::{self, Migrations, StoreError, StoreOptions};
use sqlx::Connection;

use crate::pg::fresh_db;

fn options(migrations: Migrations) -> StoreOptions {
    StoreOptions {
        migrations,
        ..StoreOptions::default()
    }
}

/// A directory holding the first `n` migration files of `backend` (an older release's set).
fn older_release(backend: &str, n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut files: Vec<_> = std::fs::read_dir(&source)
        .expect("migrations")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in files.iter().take(n) {
        std::fs::copy(f, dir.path().join(f.file_name().expect("name"))).expect("copy");
    }
    dir
}

/// The refusal's text, panicking if the open succeeded or failed otherwise.
async fn refused(url: &str, migrations: Migrations) -> String {
    match store::open(url, &options(migrations)).await {
        Err(StoreError::Schema(why)) => why,
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("opened"),
    }
}

#[tokio::test]
async fn sqlite_starts_only_on_its_own_schema_unless_told_to_migrate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    {
        let old = older_release("sqlite", 3);
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .expect("connect");
        let migrator = sqlx::migrate::Migrator::new(old.path())
            .await
            .expect("older");
        migrator.run(&mut conn).await.expect("older schema");
    }
    let why = refused(&url, Migrations::FreshOnly).await;
    assert!(
        why.contains("0004_cert_bundles") && why.contains("kyso migrate"),
        "{why}"
    );
    drop(
        store::open(&url, &options(Migrations::Apply))
            .await
            .expect("migrated"),
    );
    drop(
        store::open(&url, &options(Migrations::FreshOnly))
            .await
            .expect("current"),
    );

    // A schema newer than this binary: refused whatever was asked.
    {
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'from the future', TRUE, x'00', 0)",
        )
        .execute(&mut conn)
        .await
        .expect("insert");
    }
    for allowed in [Migrations::FreshOnly, Migrations::Apply] {
        let why = refused(&url, allowed).await;
        assert!(why.contains("migration 9999"), "{why}");
    }
}

#[tokio::test]
async fn postgres_waits_for_leases_to_lapse_before_a_migration_that_needs_a_stop() {
    let Some(db) = fresh_db("schema_guard").await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let old = older_release("postgres", 4);
    let migrator = sqlx::migrate::Migrator::new(old.path())
        .await
        .expect("older");
    migrator.run(&mut conn).await.expect("older schema");
    // An older instance is working on a session: its lease runs another minute.
    sqlx::query(
        "INSERT INTO sessions (id, tenant, provider, signer, status, created_at, expires_at,
                               next_check_at, body, lease_owner, lease_until)
         VALUES ('ses_old', 't1', 'vnpt-smartca', '001099012345', 'pending', 0, 0, 0, '{}',
                 'kyso-old', (extract(epoch FROM now()) * 1000)::bigint + 60000)",
    )
    .execute(&mut conn)
    .await
    .expect("a leased session");

    let why = refused(&db.url, Migrations::FreshOnly).await;
    assert!(
        why.contains("0005_cert_bundles") && why.contains("kyso migrate"),
        "{why}"
    );
    let why = refused(&db.url, Migrations::Apply).await;
    assert!(
        why.contains("0005_cert_bundles") && why.contains("1 sessions are leased"),
        "{why}"
    );
    // The older instance stopped and its lease lapsed: the migration runs.
    sqlx::query("UPDATE sessions SET lease_until = 0")
        .execute(&mut conn)
        .await
        .expect("lapse");
    drop(
        store::open(&db.url, &options(Migrations::Apply))
            .await
            .expect("migrated"),
    );
    drop(
        store::open(&db.url, &options(Migrations::FreshOnly))
            .await
            .expect("current"),
    );

    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(&mut conn)
    .await
    .expect("insert");
    let why = refused(&db.url, Migrations::Apply).await;
    assert!(why.contains("migration 9999"), "{why}");
}
