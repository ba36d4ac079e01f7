//! A write that the database refuses inside a group commit reaches its caller as the store's
//! batch error (the batch's text, copied to each of its writes), never dressed as a database
//! protocol error it did not have. The refusal is real: a trigger in the real database.

use kyso::store::{Store, StoreError};
use sqlx::Connection;

use crate::helpers::{new_session, smartca_session};
use crate::store_story::{postgres_store, sqlite_store};

/// Creates a session the trigger refuses; the answer must be the batch error naming the cause.
async fn refused_create_is_a_batch_error(store: &dyn Store) {
    let s = smartca_session("t-batch", "MST:0100000001", "refused");
    let answer = store.create(&new_session(&s, None, 1, true)).await;
    match answer {
        Err(StoreError::Batch(why)) => {
            assert!(why.contains("refused by the test"), "{why}")
        }
        other => panic!("expected the batch error, got {other:?}"),
    }
    // The store keeps working for the next write.
    let fine = smartca_session("t-batch", "MST:0100000002", "fine");
    store
        .create(&new_session(&fine, None, 2, true))
        .await
        .expect("a later create");
}

#[tokio::test]
async fn sqlite_refused_write_in_a_batch_is_a_batch_error() {
    let (_dir, url, store) = sqlite_store().await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open");
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON sessions WHEN NEW.reference = 'refused' \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");
    conn.close().await.expect("close");
    refused_create_is_a_batch_error(&*store).await;
}

#[tokio::test]
async fn postgres_refused_write_in_a_batch_is_a_batch_error() {
    let Some((db, store)) = postgres_store("batch_error").await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("open");
    for sql in [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.reference = 'refused' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
         RETURN NEW; END $$",
        "CREATE TRIGGER refuse BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION refuse()",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect("trigger");
    }
    conn.close().await.expect("close");
    refused_create_is_a_batch_error(&*store).await;
}
