//! Connecting to PostgreSQL: the two pools (flushed writes and steering hints) with their
//! session settings, the migrations, and the writer and waker tasks [`PgStore::open`] starts.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::{waker, writer, PgStore, QUEUE};
use crate::store::{schema, Migrations, StoreError, StoreOptions};

/// A pooled connection used this recently is handed out without a ping first.
const ALIVE_BYPASS: Duration = Duration::from_millis(500);

/// Pool settings for both pools. sqlx pings every idle connection before handing it out: a
/// round trip (and a TLS record each way) per acquire, ~4 % of the gateway's CPU under load.
/// Like HikariCP's `aliveBypassWindowMs`, a connection that went back to the pool less than
/// [`ALIVE_BYPASS`] ago is taken as alive; an older one is still pinged (and replaced when the
/// ping fails). A connection that died within the window fails its statement, which its caller
/// sees as a database error, as it would a server that died just after a ping.
fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= ALIVE_BYPASS {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl PgStore {
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        // Every statement of the gateway is an index lookup or an index range, and sqlx keeps
        // them prepared, so PostgreSQL soon runs each with a cached generic plan. One cached
        // while `sessions` was small (a new deployment) was a sequential scan over the whole
        // table until something made PostgreSQL plan again. With sequential scans disabled the
        // planner takes an index path wherever there is one, at any table size, and plans each
        // statement once per connection instead of per call (planning had been a fifth of the
        // server's statement time). It could still choose to read a whole index: the test
        // `a_grown_table_is_not_scanned_on_postgres` counts the rows the statements read after
        // the table grows, through scans and indexes alike.
        let tuned = |o: PgConnectOptions| o.options([("enable_seqscan", "off")]);
        let pool = pool_options(options.max_connections)
            .connect_with(tuned(PgConnectOptions::from_str(url)?))
            .await?;
        let hints = pool_options(options.max_connections.clamp(1, 4))
            .connect_with(
                tuned(PgConnectOptions::from_str(url)?).options([("synchronous_commit", "off")]),
            )
            .await?;
        let leases = pool_options(1)
            .connect_with(
                tuned(PgConnectOptions::from_str(url)?).options([("synchronous_commit", "off")]),
            )
            .await?;
        migrate(&pool, options.migrations).await?;
        let (writes, queue) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(writer::run(pool.clone(), options.instance.clone(), queue));
        let lease_ms = options.lease.as_millis() as i64;
        let (wakes, pushes) = mpsc::channel(QUEUE);
        let waker = tokio::spawn(waker::run(
            hints.clone(),
            options.instance.clone(),
            lease_ms,
            pushes,
        ));
        Ok(Self {
            pool,
            hints,
            leases,
            instance: options.instance.clone(),
            lease_ms,
            writes,
            wakes,
            sweeps: Default::default(),
            tasks: std::sync::Mutex::new(vec![
                ("postgres writer", writer),
                ("postgres waker", waker),
            ]),
        })
    }
}

/// PostgreSQL migrations that need every instance stopped (CHANGELOG.md, "Upgrading"):
/// `0002_terminal_frames` and `0005_cert_bundles`.
const NEEDS_STOP: &[i64] = &[2, 5];

/// Runs the schema guard, then the migrations it allows.
async fn migrate(pool: &PgPool, allowed: Migrations) -> Result<(), StoreError> {
    let migrator = sqlx::migrate!("./migrations/postgres");
    // Instances starting together take turns: the guard reads a finished migration, never one
    // half applied by a peer. Released with the connection's session at the end.
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock(hashtext('kyso schema guard'))")
        .execute(&mut *conn)
        .await?;
    let result = guarded(&mut conn, &migrator, allowed).await;
    sqlx::query("SELECT pg_advisory_unlock(hashtext('kyso schema guard'))")
        .execute(&mut *conn)
        .await?;
    result
}

async fn guarded(
    conn: &mut sqlx::PgConnection,
    migrator: &sqlx::migrate::Migrator,
    allowed: Migrations,
) -> Result<(), StoreError> {
    let has_table: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    let applied: Vec<i64> = if has_table {
        sqlx::query_scalar(schema::APPLIED)
            .fetch_all(&mut *conn)
            .await?
    } else {
        Vec::new()
    };
    let live_leases: i64 = if applied.is_empty() {
        0
    } else {
        sqlx::query_scalar(
            "SELECT count(*) FROM sessions WHERE lease_owner IS NOT NULL
             AND lease_until > (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
        )
        .fetch_one(&mut *conn)
        .await?
    };
    let found = schema::Found {
        applied: &applied,
        live_leases,
    };
    schema::check(migrator, NEEDS_STOP, &found, allowed)?;
    migrator.run(&mut *conn).await?;
    Ok(())
}
