//! Fan-in: each instance hears the events another instance commits (PostgreSQL LISTEN).

use std::sync::Arc;
use std::time::Duration;

use kyso::events::Hub;
use kyso::store::{self, Store};

use super::instance;
use crate::helpers::{new_session as new, smartca_session as session};
use crate::pg::fresh_db;

/// Waits until a connection of this database has run LISTEN (the fan-in is subscribed), as
/// `pg_stat_activity` shows; panics after 20 s.
async fn listening(url: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_activity");
        if n > 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no LISTEN in 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two instances on one database; the second's fan-in publishes to `rx`.
pub(crate) struct Pair {
    pub one: Arc<dyn Store>,
    pub two: Arc<dyn Store>,
    pub rx: tokio::sync::broadcast::Receiver<kyso::store::Event>,
    pub stop_tx: tokio::sync::watch::Sender<bool>,
    pub listener: tokio::task::JoinHandle<()>,
}

impl Pair {
    pub(crate) async fn open(url: &str) -> Self {
        let one = store::open(url, &instance("one", 5000)).await.expect("one");
        let two = store::open(url, &instance("two", 5000)).await.expect("two");
        let hub = Hub::new(64);
        let rx = hub.subscribe();
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let listener = {
            let two = two.clone();
            tokio::spawn(async move { two.fan_in(Arc::new(hub), stop).await })
        };
        Self {
            one,
            two,
            rx,
            stop_tx,
            listener,
        }
    }
}

#[tokio::test]
async fn each_instance_hears_the_events_another_instance_commits() {
    let Some(db) = fresh_db("fan-in").await else {
        return;
    };
    let Pair {
        one,
        two,
        mut rx,
        stop_tx,
        listener,
    } = Pair::open(&db.url).await;
    listening(&db.url).await;
    let s = session("t9", "001099012345", "r");
    one.create(&new(&s, None, 1, false)).await.expect("create");
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("in time")
        .expect("event");
    assert_eq!((ev.seq, ev.session_id), (1, s.id.clone()));
    // Its own events are not re-published by the listener (the writer publishes those).
    let own = session("t9", "001099012346", "r");
    two.create(&new(&own, None, 1, false))
        .await
        .expect("create");
    assert!(tokio::time::timeout(Duration::from_millis(500), rx.recv())
        .await
        .is_err());
    let _ = stop_tx.send(true);
    let _ = listener.await;
}
