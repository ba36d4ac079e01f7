//! PostgreSQL for tests: a fresh database per test on the server named by
//! `KYSO_TEST_POSTGRES_URL` (default: the local trust-auth server). When it is absent the test
//! prints a notice and skips — unless `KYSO_REQUIRE_POSTGRES=1` (set by `.ci/run`), which makes
//! the absence a failure.

use sqlx::{Connection, Executor, PgConnection};

pub struct TestDb {
    pub url: String,
    admin: String,
    name: String,
}

fn server_url() -> String {
    std::env::var("KYSO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_database(url: &str, db: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => format!("{url}/{db}"),
    }
}

/// A new empty database, or `None` (with a printed notice) when PostgreSQL is not reachable.
pub async fn fresh_db(test: &str) -> Option<TestDb> {
    let admin = server_url();
    let mut conn = match PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("KYSO_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL is required (KYSO_REQUIRE_POSTGRES=1) but unreachable at {admin}: {e}");
            }
            eprintln!(
                "notice: skipping the PostgreSQL part of {test}: no PostgreSQL at {admin} ({e})"
            );
            return None;
        }
    };
    let name = format!("kyso_test_{}", ulid::Ulid::new().to_string().to_lowercase());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    Some(TestDb {
        url: with_database(&admin, &name),
        admin,
        name,
    })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs outside any runtime guarantee: use a short-lived thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut c) = PgConnection::connect(&admin).await {
                        let _ = c.execute(sql.as_str()).await;
                    }
                });
            }
        })
        .join();
    }
}
