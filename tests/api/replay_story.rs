//! A replay of an idempotent create is read without writing, on SQLite and PostgreSQL alike:
//! the session its key made, a mismatch for a different request, nothing for a new key.

use std::sync::Arc;

use kyso::store::{Created, Store};

use crate::helpers::{new_session as new, smartca_session as session};
use crate::store_story::{on_both_stores, postgres_store, sqlite_store};

async fn replays(store: Arc<dyn Store>) {
    let a = session("t1", "001099019101", "r1");
    assert!(store
        .replay(&new(&a, Some("k1"), 1, false))
        .await
        .expect("replay")
        .is_none());
    let created = store
        .create(&new(&a, Some("k1"), 1, false))
        .await
        .expect("create");
    assert!(matches!(created, Created::New(_)));

    // The same key and request, under a fresh id: the first session.
    let retry = session("t1", "001099019101", "r1");
    let replayed = store.replay(&new(&retry, Some("k1"), 1, false)).await;
    assert!(
        matches!(replayed.expect("replay"), Some(Created::Existing(s)) if s.id == a.id),
        "the session the key made"
    );
    let changed = store.replay(&new(&retry, Some("k1"), 2, false)).await;
    assert!(matches!(
        changed.expect("replay"),
        Some(Created::IdempotencyMismatch)
    ));
    // Another key, no key, another tenant: nothing to replay, and nothing was written.
    for (s, key) in [
        (&retry, Some("k2")),
        (&retry, None),
        (&session("t2", "001099019101", "r1"), Some("k1")),
    ] {
        let found = store.replay(&new(s, key, 1, false)).await.expect("replay");
        assert!(found.is_none(), "{key:?} of {}", s.tenant);
    }
    assert!(store.get("t1", &retry.id).await.expect("get").is_none());
}

on_both_stores!(
    replays,
    a_replay_is_read_without_writing_on_sqlite,
    a_replay_is_read_without_writing_on_postgres
);
