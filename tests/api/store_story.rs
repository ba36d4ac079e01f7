//! One story of the store contract, run against SQLite and PostgreSQL alike, plus what only a
//! shared database must do: exclusive leases, takeover after a lease expires, fan-in of other
//! instances' events.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kyso::domain::{Session, SessionId, Status};
use kyso::events::Hub;
use kyso::store::{
    self, Change, Created, Event, Held, ListFilter, NewSession, Store, StoreError, StoreOptions,
    Woken, Work,
};
use sqlx::Connection;

use crate::helpers::{new_session as new, smartca_session as session};
use crate::pg::{fresh_db, TestDb};

/// Whether a push (without a claim) found an unfinished session of `provider`.
async fn woke(store: &dyn Store, id: &SessionId, provider: &str) -> bool {
    store.wake(id, provider, false).await.expect("wake").found()
}

/// Creates `s` (a busy signer refused) and claims it with the next look at due work; returns
/// everything that look claimed.
async fn create_claimed(store: &dyn Store, s: &Session, hash: u8) -> Vec<Work> {
    store
        .create(&new(s, None, hash, false))
        .await
        .expect("create");
    let claimed = store.due(Utc::now(), 10, &[], false).await.expect("due");
    assert!(claimed.iter().any(|w| w.session.id == s.id));
    claimed
}

async fn release_all(store: &dyn Store, claimed: &[Work]) {
    let held: Vec<Held> = claimed.iter().map(Work::held).collect();
    store.release(&held).await.expect("release");
}

/// Gives back the claim of `id` among `claimed`.
async fn release_one(store: &dyn Store, claimed: &[Work], id: &SessionId) {
    let held: Vec<Held> = claimed
        .iter()
        .filter(|w| w.session.id == *id)
        .map(Work::held)
        .collect();
    assert_eq!(held.len(), 1, "{id} was claimed");
    store.release(&held).await.expect("release");
}

/// Claims what is due now (up to 10); the claimed sessions' references, sorted.
async fn claim_due(store: &dyn Store) -> Vec<String> {
    let mut refs: Vec<String> = store
        .due(Utc::now(), 10, &[], false)
        .await
        .expect("due")
        .into_iter()
        .filter_map(|w| w.session.reference)
        .collect();
    refs.sort();
    refs
}

/// A fresh SQLite store with default options: the directory holding it (keep it), its URL.
pub(crate) async fn sqlite_store() -> (tempfile::TempDir, String, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = store::open(&url, &StoreOptions::default())
        .await
        .expect("sqlite");
    (dir, url, store)
}

/// A fresh PostgreSQL database (keep it) and a store on it with default options; `None`, with
/// [`fresh_db`]'s notice, when there is no server.
pub(crate) async fn postgres_store(test: &str) -> Option<(TestDb, Arc<dyn Store>)> {
    let db = fresh_db(test).await?;
    let store = store::open(&db.url, &StoreOptions::default())
        .await
        .expect("postgres");
    Some((db, store))
}

/// The two tests running `$story` on a fresh SQLite store and on a fresh PostgreSQL database
/// (that one skipped, with [`fresh_db`]'s notice, when there is no server).
macro_rules! on_both_stores {
    ($story:ident, $on_sqlite:ident, $on_postgres:ident) => {
        #[tokio::test]
        async fn $on_sqlite() {
            let (_dir, _, store) = sqlite_store().await;
            $story(store).await;
        }

        #[tokio::test]
        async fn $on_postgres() {
            if let Some((_db, store)) = postgres_store(stringify!($on_postgres)).await {
                $story(store).await;
            }
        }
    };
}
pub(crate) use on_both_stores;

async fn story(store: Arc<dyn Store>) {
    // Creating writes the session and its first event.
    let a = session("t1", "001099012345", "r1");
    let Created::New(ev) = store
        .create(&new(&a, Some("k1"), 1, false))
        .await
        .expect("create")
    else {
        panic!("a new session");
    };
    assert_eq!((ev.seq, ev.status), (1, Status::Pending));

    // Idempotency, signer_busy, tenant isolation.
    let retry = session("t1", "001099012345", "r1");
    assert!(
        matches!(store.create(&new(&retry, Some("k1"), 1, false)).await.expect("c"), Created::Existing(s) if s.id == a.id)
    );
    assert!(matches!(
        store
            .create(&new(&retry, Some("k1"), 2, false))
            .await
            .expect("c"),
        Created::IdempotencyMismatch
    ));
    assert!(matches!(
        store.create(&new(&retry, None, 3, false)).await.expect("c"),
        Created::SignerBusy
    ));
    let b = session("t1", "001099012345", "r2");
    assert!(matches!(
        store.create(&new(&b, None, 4, true)).await.expect("c"),
        Created::New(_)
    ));
    assert!(store.get("t2", &a.id).await.expect("get").is_none());
    assert_eq!(
        store.get("t1", &a.id).await.expect("get").map(|s| s.id),
        Some(a.id.clone())
    );

    // Due work is claimed, then moved on by a state change with its event.
    // A claim for another provider leaves these alone.
    let other = store
        .due(Utc::now(), 10, &["another-provider".to_owned()], false)
        .await
        .expect("due");
    assert!(other.is_empty());
    let due = store
        .due(Utc::now(), 10, &["vnpt-smartca".to_owned()], false)
        .await
        .expect("due");
    assert_eq!(due.len(), 2);
    let mut a2 = a.clone();
    assert!(a2.become_(Status::AwaitingUser, Utc::now()));
    let next = Utc::now() + chrono::Duration::seconds(60);
    let change = Change {
        session: &a2,
        expected: Status::Pending,
        next_check_at: Some(next),
        work: Some("{\"provider\":1}"),
        lease: None,
    };
    let ev = store.apply(change).await.expect("apply").expect("event");
    assert_eq!((ev.seq, ev.status), (3, Status::AwaitingUser));
    let stale = Change {
        session: &a2,
        expected: Status::Pending,
        next_check_at: None,
        work: None,
        lease: None,
    };
    assert!(
        store.apply(stale).await.expect("apply").is_none(),
        "a stale change is refused"
    );
    release_one(&*store, &due, &b.id).await;

    // Not due until its time, or until a callback wakes it.
    let due = store.due(Utc::now(), 10, &[], false).await.expect("due");
    let ids: Vec<_> = due.iter().map(|w| w.session.id.clone()).collect();
    assert_eq!(ids, vec![b.id.clone()]);
    release_all(&*store, &due).await;
    assert!(
        !woke(&*store, &a.id, "viettel-sim").await,
        "only by its own provider"
    );
    assert!(woke(&*store, &a.id, "vnpt-smartca").await);
    let due = store.due(Utc::now(), 10, &[], false).await.expect("due");
    let woken = due
        .iter()
        .find(|w| w.session.id == a.id)
        .expect("woken session is due");
    assert_eq!(woken.work.as_deref(), Some("{\"provider\":1}"));
    release_all(&*store, &due).await;

    // A terminal state is final: never due again, never changed.
    let mut a3 = a2.clone();
    assert!(a3.become_(Status::Signed, Utc::now()));
    let done = Change {
        session: &a3,
        expected: Status::AwaitingUser,
        next_check_at: None,
        work: None,
        lease: None,
    };
    let signed = store.apply(done).await.expect("apply").expect("an event");
    assert!(!woke(&*store, &a.id, "vnpt-smartca").await);
    let mut a4 = a2.clone();
    a4.become_(Status::Rejected, Utc::now());
    let late = Change {
        session: &a4,
        expected: Status::AwaitingUser,
        next_check_at: None,
        work: None,
        lease: None,
    };
    assert!(store.apply(late).await.expect("apply").is_none());
    let due = store.due(Utc::now(), 10, &[], false).await.expect("due");
    assert!(due.iter().all(|w| w.session.id != a.id));
    assert_eq!(
        store.get("t1", &a.id).await.expect("get").map(|s| s.status),
        Some(Status::Signed)
    );

    // Reschedule (under the lease that look took) moves the next check without an event.
    let ids: Vec<_> = due.iter().map(|w| w.session.id.clone()).collect();
    assert_eq!(ids, vec![b.id.clone()]);
    assert!(store
        .reschedule(
            &due[0].held(),
            Status::Pending,
            Utc::now() + chrono::Duration::seconds(60),
            None
        )
        .await
        .expect("resched"));

    // The outbox has every event, gap-free, in order, per tenant.
    let events = store.events_after("t1", 0, 100).await.expect("events");
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert!(events[3].frame.contains("\"status\":\"signed\""));
    // A terminal event's frame is rendered from the session's row on replay (it is not stored
    // twice): the same bytes as the frame sent live.
    assert_eq!(events[3].frame, signed.frame);
    assert!(events[..3].iter().all(|e| !e.frame.contains("\"signed\"")));
    assert_eq!(
        store
            .events_after("t1", 2, 100)
            .await
            .expect("events")
            .len(),
        2
    );
    assert!(store
        .events_after("t2", 0, 100)
        .await
        .expect("events")
        .is_empty());

    // Listing: newest first, filtered, paginated.
    let all = store
        .list(
            "t1",
            &ListFilter {
                limit: 10,
                ..ListFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        all.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![b.id.clone(), a.id.clone()]
    );
    let signed = store
        .list(
            "t1",
            &ListFilter {
                status: Some(Status::Signed),
                limit: 10,
                ..ListFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(signed.len(), 1);
    let r2 = store
        .list(
            "t1",
            &ListFilter {
                reference: Some("r2".into()),
                limit: 10,
                ..ListFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(r2.len(), 1);
    let older = store
        .list(
            "t1",
            &ListFilter {
                before: Some(b.id.clone()),
                limit: 10,
                ..ListFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(
        older.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![a.id.clone()]
    );
    // A callback that lands while a step is writing its change is not lost: the session is
    // due at once rather than at the time the step scheduled.
    let c = session("t1", "001099012347", "r3");
    create_claimed(&*store, &c, 5).await;
    assert!(woke(&*store, &c.id, "vnpt-smartca").await);
    let mut c2 = c.clone();
    c2.become_(Status::AwaitingUser, Utc::now());
    let later = Utc::now() + chrono::Duration::seconds(60);
    let step = Change {
        session: &c2,
        expected: Status::Pending,
        next_check_at: Some(later),
        work: None,
        lease: None,
    };
    assert!(store.apply(step).await.expect("apply").is_some());
    let due = store.due(Utc::now(), 10, &[], false).await.expect("due");
    assert!(
        due.iter().any(|w| w.session.id == c.id),
        "the callback's wake survived the step"
    );
    release_all(&*store, &due).await;

    // A push may claim the session it wakes, so its check starts without a scheduler pass;
    // a session already claimed is only marked, and is claimed by nobody else meanwhile.
    let d = session("t1", "001099012348", "r4");
    // On the phone, next checked in a minute.
    let claimed = create_claimed(&*store, &d, 6).await;
    to_awaiting(&*store, &d).await;
    let others: Vec<_> = claimed
        .iter()
        .filter(|w| w.session.id != d.id)
        .map(Work::held)
        .collect();
    store.release(&others).await.expect("release");
    let pushed = match store.wake(&d.id, "vnpt-smartca", true).await.expect("wake") {
        Woken::Claimed(w) => *w,
        other => panic!("expected a claim, got {other:?}"),
    };
    assert_eq!(pushed.session.id, d.id);
    // A pushed session whose claim is given back unstarted is due at once, not at its
    // scheduled check a minute away: the push is not lost.
    release_all(&*store, std::slice::from_ref(&pushed)).await;
    let due = store.due(Utc::now(), 10, &[], false).await.expect("due");
    assert!(
        due.iter().any(|w| w.session.id == d.id),
        "a released pushed session is due now"
    );
    // Claimed (by that look at due work): a push only marks it, and nobody else takes it.
    assert!(matches!(
        store.wake(&d.id, "vnpt-smartca", true).await.expect("wake"),
        Woken::Marked
    ));
    let again = store.due(Utc::now(), 10, &[], false).await.expect("due");
    assert!(
        again.iter().all(|w| w.session.id != d.id),
        "a claimed session is nobody else's"
    );
    let all: Vec<_> = due.iter().chain(&again).map(Work::held).collect();
    store.release(&all).await.expect("release");
    assert!(matches!(
        store.wake(&d.id, "viettel-sim", true).await.expect("wake"),
        Woken::Missing
    ));

    store.ping().await.expect("ping");
}

#[tokio::test]
async fn the_store_story_holds_on_sqlite() {
    let (_dir, url, store) = sqlite_store().await;
    story(store).await;
    let pool = sqlx::SqlitePool::connect(&url).await.expect("reopen");
    assert_eq!(
        sqlx::query_scalar::<_, String>(BARE_FRAMES)
            .fetch_all(&pool)
            .await
            .expect("outbox"),
        ["signed"]
    );
}

/// Creates queued together (SQLite writes a run of plain ones with one statement per piece):
/// each is its own session with its own event, numbered in queue order, a keyed create among
/// them included.
async fn creates_queued_together(store: Arc<dyn Store>) {
    let sessions: Vec<Session> = (0..70)
        .map(|i| session("t1", &format!("0010990{i:05}"), &format!("r{i}")))
        .collect();
    let mut news: Vec<NewSession> = sessions.iter().map(|s| new(s, None, 1, true)).collect();
    news[40].idempotency_key = Some("keyed".into());
    let created = futures_util::future::join_all(news.iter().map(|n| store.create(n))).await;
    let mut seqs = Vec::new();
    for (s, c) in sessions.iter().zip(created) {
        let Created::New(ev) = c.expect("create") else {
            panic!("a new session");
        };
        assert_eq!(ev.session_id, s.id);
        assert!(ev.frame.contains(s.id.as_str()));
        seqs.push(ev.seq);
        let stored = store.get("t1", &s.id).await.expect("get").expect("stored");
        assert_eq!(
            (stored.signer, stored.reference),
            (s.signer.clone(), s.reference.clone())
        );
    }
    assert_eq!(seqs, (1..=70).collect::<Vec<i64>>());
    let replayed: Vec<SessionId> = store
        .events_after("t1", 0, 100)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.session_id)
        .collect();
    let ids: Vec<SessionId> = sessions.iter().map(|s| s.id.clone()).collect();
    assert_eq!(replayed, ids);
    let retry = new(
        &session("t1", "001099000040", "again"),
        Some("keyed"),
        1,
        true,
    );
    assert!(
        matches!(store.create(&retry).await.expect("retry"), Created::Existing(s) if s.id == sessions[40].id)
    );
}

/// Claiming wakes queued together (SQLite claims a run of them with one statement per
/// piece, PostgreSQL a batch with one statement): each gets its own answer — claimed, only
/// marked (its session is leased), missing (unknown id, or another provider's session).
async fn wakes_queued_together(store: Arc<dyn Store>) {
    let sessions = created(&*store, 4, "0010991", "w").await;
    let claimed = store.due(Utc::now(), 10, &[], false).await.expect("due");
    assert_eq!(claimed.len(), 4);
    // The last stays leased.
    release_all(&*store, &claimed[..3]).await;
    let stranger = SessionId::generate();
    let pushes = [
        (&sessions[0].id, "vnpt-smartca", true),
        (&sessions[1].id, "vnpt-smartca", true),
        (&sessions[2].id, "viettel-sim", true),
        (&sessions[3].id, "vnpt-smartca", true),
        (&stranger, "vnpt-smartca", true),
        // A second push of a session the batch claims is news it already has; one naming
        // the wrong provider is nobody's; one that only marks finds its session.
        (&sessions[0].id, "vnpt-smartca", true),
        (&sessions[1].id, "viettel-sim", true),
        (&sessions[2].id, "vnpt-smartca", false),
    ];
    let woken = futures_util::future::join_all(
        pushes
            .iter()
            .map(|(id, provider, claim)| store.wake(id, provider, *claim)),
    )
    .await;
    let got: Vec<String> = woken
        .into_iter()
        .map(|w| match w.expect("wake") {
            Woken::Claimed(work) => {
                format!("claimed {}", work.session.reference.unwrap_or_default())
            }
            Woken::Marked => "marked".to_owned(),
            Woken::Missing => "missing".to_owned(),
        })
        .collect();
    assert_eq!(
        got,
        [
            "claimed w0",
            "claimed w1",
            "missing",
            "marked",
            "missing",
            "marked",
            "missing",
            "marked"
        ]
    );
    // Claimed means leased: the next look at due work skips them; w2 is still due.
    assert_eq!(claim_due(&*store).await, ["w2"]);
}

on_both_stores!(
    wakes_queued_together,
    wakes_queued_together_on_sqlite,
    wakes_queued_together_on_postgres
);

/// The PostgreSQL waker takes the pushes queued together in one batch (one claim statement):
/// read from its batch-size histogram, a batch of more than one push must have run. Other
/// tests' batches only add to both sums, and if pushes stopped being grouped every batch
/// anywhere would hold exactly one.
#[tokio::test]
async fn pushes_queued_together_are_claimed_in_one_batch_on_postgres() {
    let Some((_db, store)) = postgres_store("pushes_grouped").await else {
        return;
    };
    let metrics = kyso::telemetry::metrics_handle();
    let sessions = created(&*store, 32, "0010994", "g").await;
    let before = batch_wakes(&metrics.render());
    let woken = wake_all(&*store, &sessions).await;
    assert!(woken
        .into_iter()
        .all(|w| matches!(w.expect("wake"), Woken::Claimed(_))));
    let after = batch_wakes(&metrics.render());
    let (pushes, batches) = (after.0 - before.0, after.1 - before.1);
    assert!(batches >= 1.0, "the waker recorded no batch: {after:?}");
    assert!(
        pushes > batches,
        "{pushes} pushes in {batches} batches: one statement per push"
    );
}

/// `kyso_postgres_batch_wakes`' sum (pushes) and count (batches) in a Prometheus rendering.
fn batch_wakes(rendered: &str) -> (f64, f64) {
    let value = |name: &str| {
        rendered
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("kyso_postgres_batch_wakes_sum "),
        value("kyso_postgres_batch_wakes_count "),
    )
}

/// A session its creator starts at once is written claimed: the scheduler leaves it alone
/// until the lease runs out (the creator never wrote it), then takes it — keyed or not.
async fn leased_creates(store: Arc<dyn Store>) {
    let lease = Utc::now() + chrono::Duration::milliseconds(600);
    let plain = session("t1", "001099200001", "plain");
    let keyed = session("t1", "001099200002", "keyed");
    let open = session("t1", "001099200003", "open");
    let mut news = [
        new(&plain, None, 1, true),
        new(&keyed, Some("lease-key"), 1, true),
        new(&open, None, 1, true),
    ];
    news[0].lease_until = Some(lease);
    news[1].lease_until = Some(lease);
    for n in &news {
        assert!(matches!(
            store.create(n).await.expect("create"),
            Created::New(_)
        ));
    }
    assert_eq!(claim_due(&*store).await, ["open"]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(claim_due(&*store).await, ["keyed", "plain"]);

    // A leased create given back (its creator could not start it after all) is due at once,
    // not at its lease's end.
    let given = session("t1", "001099200004", "given");
    let mut n = new(&given, None, 1, true);
    n.lease_until = Some(Utc::now() + chrono::Duration::seconds(60));
    store.create(&n).await.expect("create");
    assert!(claim_due(&*store).await.is_empty());
    let held = Held {
        id: given.id.clone(),
        epoch: store::CREATED_EPOCH,
    };
    store
        .release(std::slice::from_ref(&held))
        .await
        .expect("release");
    assert_eq!(claim_due(&*store).await, ["given"]);
}

on_both_stores!(
    leased_creates,
    leased_creates_on_sqlite,
    leased_creates_on_postgres
);

on_both_stores!(
    creates_queued_together,
    creates_queued_together_on_sqlite,
    creates_queued_together_on_postgres
);

/// The statuses of the story's events stored without a frame: only the terminal one keeps no
/// copy of the session's body (it is rendered from the session row on replay).
const BARE_FRAMES: &str =
    "SELECT status FROM outbox WHERE tenant = 't1' AND frame IS NULL ORDER BY seq";

#[tokio::test]
async fn the_store_story_holds_on_postgres() {
    let Some((db, store)) = postgres_store("the_store_story_holds_on_postgres").await else {
        return;
    };
    story(store).await;
    let pool = sqlx::PgPool::connect(&db.url).await.expect("reconnect");
    assert_eq!(
        sqlx::query_scalar::<_, String>(BARE_FRAMES)
            .fetch_all(&pool)
            .await
            .expect("outbox"),
        ["signed"]
    );
}

/// PostgreSQL writes queued together share one transaction; a change that fails must fail
/// alone, and the others still commit with gap-free event numbers.
#[tokio::test]
async fn one_bad_change_in_a_postgres_batch_fails_alone() {
    let Some((_db, store)) = postgres_store("one_bad_change_in_a_postgres_batch_fails_alone").await
    else {
        return;
    };
    let a = session("t1", "001099012345", "r1");
    let mut twin = session("t1", "001099012346", "r2");
    twin.id = a.id.clone(); // the same primary key: its insert must fail
    let b = session("t1", "001099012347", "r3");
    // Queued in one poll, so the writer takes them as one batch.
    let (na, ntwin, nb) = (
        new(&a, None, 1, true),
        new(&twin, None, 2, true),
        new(&b, None, 3, true),
    );
    let (ra, rtwin, rb) = tokio::join!(store.create(&na), store.create(&ntwin), store.create(&nb));
    assert!(matches!(ra.expect("a"), Created::New(_)));
    assert!(
        rtwin.is_err(),
        "a second session with the same id is refused"
    );
    assert!(matches!(rb.expect("b"), Created::New(_)));
    let seqs: Vec<i64> = store
        .events_after("t1", 0, 10)
        .await
        .expect("events")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2]);
    assert!(store.get("t1", &b.id).await.expect("get").is_some());
}

/// SQLite's writer never checkpoints (a checkpoint's sync would stall every queued write);
/// the checkpointer copies the WAL into the database file beside it.
#[tokio::test]
async fn sqlite_checkpoints_the_wal_beside_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.db");
    let store = store::open(
        &format!("sqlite://{}", file.display()),
        &StoreOptions::default(),
    )
    .await
    .expect("sqlite");
    let before = std::fs::metadata(&file).expect("db file").len();
    for i in 0..300 {
        let s = session("t1", &format!("0010990{i:05}"), "r");
        store.create(&new(&s, None, 1, true)).await.expect("create");
    }
    // The sessions reach the database file itself within a few checkpoint periods.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let grown = loop {
        let len = std::fs::metadata(&file).expect("db file").len();
        if len > before + 100_000 || tokio::time::Instant::now() > deadline {
            break len;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        grown > before + 100_000,
        "database file {before} → {grown} bytes: the WAL was not checkpointed"
    );
}

/// Under writes that never pause, a PASSIVE checkpoint never lets the writer start the WAL
/// over, and the log grows for as long as the load lasts; once it passes `wal_limit` the
/// checkpointer forces a restart. Each restart bumps the checkpoint sequence number in the
/// WAL header (bytes 12..16), read here while the writers are still busy.
#[tokio::test]
async fn sqlite_restarts_the_wal_under_constant_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.db");
    let wal = dir.path().join("s.db-wal");
    let options = StoreOptions {
        wal_limit: 1 << 20,
        ..StoreOptions::default()
    };
    let store = store::open(&format!("sqlite://{}", file.display()), &options)
        .await
        .expect("sqlite");
    let restarts = || {
        let header = std::fs::read(&wal).unwrap_or_default();
        header
            .get(12..16)
            .map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
    };
    // 16 writers back to back: the writer's queue is never empty until they stop.
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (store, busy) = (store.clone(), busy.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while busy.load(std::sync::atomic::Ordering::Relaxed) {
                    let s = session("t1", &format!("001{w:02}{i:07}"), "r");
                    store.create(&new(&s, None, 1, true)).await.expect("create");
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = restarts();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last = first;
    while last < first + 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = restarts();
    }
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    assert!(
        last >= first + 3,
        "the WAL started over {} times in 10 s of constant writes",
        last - first
    );
}

/// A reader that keeps an old snapshot open (a backup, the sqlite3 shell) keeps the WAL from
/// starting over; the restart must give up quickly instead of holding every write back for the
/// busy timeout (5 s).
#[tokio::test]
async fn a_long_reader_does_not_stall_sqlite_writes_at_a_wal_restart() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let options = StoreOptions {
        wal_limit: 1 << 20,
        ..StoreOptions::default()
    };
    let store = store::open(&url, &options).await.expect("sqlite");
    let s = session("t1", "001099000001", "r");
    store.create(&new(&s, None, 1, true)).await.expect("create");
    let mut reader = sqlx::SqliteConnection::connect(&url).await.expect("reader");
    sqlx::query("BEGIN")
        .execute(&mut reader)
        .await
        .expect("begin");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&mut reader)
        .await
        .expect("snapshot");
    assert_eq!(n, 1);
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let (mut i, mut slowest) = (0, Duration::ZERO);
                while tokio::time::Instant::now() < until {
                    let s = session("t1", &format!("002{w:02}{i:07}"), "r");
                    let started = tokio::time::Instant::now();
                    store.create(&new(&s, None, 1, true)).await.expect("create");
                    slowest = slowest.max(started.elapsed());
                    i += 1;
                }
                slowest
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for w in writers {
        slowest = slowest.max(w.await.expect("writer"));
    }
    sqlx::query("COMMIT")
        .execute(&mut reader)
        .await
        .expect("end");
    assert!(
        slowest < Duration::from_secs(1),
        "a write waited {slowest:?} behind a WAL restart"
    );
}

pub(crate) fn instance(name: &str, lease_ms: u64) -> StoreOptions {
    StoreOptions {
        instance: name.into(),
        lease: Duration::from_millis(lease_ms),
        max_connections: 4,
        ..StoreOptions::default()
    }
}

#[tokio::test]
async fn a_leased_session_goes_to_one_instance_and_moves_on_when_the_lease_expires() {
    let Some(db) = fresh_db("leases").await else {
        return;
    };
    let one = store::open(&db.url, &instance("one", 800))
        .await
        .expect("one");
    let two = store::open(&db.url, &instance("two", 800))
        .await
        .expect("two");
    let s = session("t1", "001099012345", "r");
    one.create(&new(&s, None, 1, false)).await.expect("create");
    let claimed = one.due(Utc::now(), 10, &[], false).await.expect("due");
    assert_eq!(claimed.len(), 1);
    assert!(
        two.due(Utc::now(), 10, &[], false)
            .await
            .expect("due")
            .is_empty(),
        "leased to one"
    );
    // Renewal keeps it; without renewal (the instance died) it moves on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lost = one.renew(&[claimed[0].held()]).await.expect("renew");
    assert!(lost.is_empty(), "still held");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        two.due(Utc::now(), 10, &[], false)
            .await
            .expect("due")
            .is_empty(),
        "renewed"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        two.due(Utc::now(), 10, &[], false)
            .await
            .expect("due")
            .len(),
        1,
        "taken over"
    );
}

#[tokio::test]
async fn each_instance_hears_the_events_another_instance_commits() {
    let Some(db) = fresh_db("fan-in").await else {
        return;
    };
    let one = store::open(&db.url, &instance("one", 5000))
        .await
        .expect("one");
    let two = store::open(&db.url, &instance("two", 5000))
        .await
        .expect("two");
    let hub = Hub::new(64);
    let mut rx = hub.subscribe();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let listener = {
        let two = two.clone();
        tokio::spawn(async move { two.fan_in(Arc::new(hub), stop).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
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

/// The sessions table's (rows read by sequential scans and through indexes, rows updated), as
/// PostgreSQL's statistics have them once they count `updates` updates (they arrive late: a
/// backend reports within about ten seconds of going idle); at most 20 s.
async fn table_reads_after(conn: &mut sqlx::PgConnection, updates: i64) -> (i64, i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now: (i64, i64) = sqlx::query_as(
            "SELECT seq_tup_read + COALESCE(idx_tup_fetch, 0), n_tup_upd
             FROM pg_stat_user_tables WHERE relname = 'sessions'",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("pg_stat_user_tables");
        assert!(now.1 <= updates, "more updates than expected: {now:?}");
        if now.1 == updates {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the statistics never counted {updates} updates: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `n` sessions of tenant t1 created (claimable), signers `{signers}00000`…, references
/// `{reference}0`….
async fn created(store: &dyn Store, n: usize, signers: &str, reference: &str) -> Vec<Session> {
    let mut sessions = Vec::with_capacity(n);
    for i in 0..n {
        let s = session(
            "t1",
            &format!("{signers}{i:05}"),
            &format!("{reference}{i}"),
        );
        store.create(&new(&s, None, 1, true)).await.expect("create");
        sessions.push(s);
    }
    sessions
}

/// Claiming pushes for every one of `sessions`, queued together (one task, one thread: all
/// are queued before the waker runs).
async fn wake_all(store: &dyn Store, sessions: &[Session]) -> Vec<Result<Woken, StoreError>> {
    let wakes = sessions
        .iter()
        .map(|s| store.wake(&s.id, "vnpt-smartca", true));
    futures_util::future::join_all(wakes).await
}

/// Moves `s` from pending to awaiting_user (next checked in ten seconds, within a lease), alone
/// in its write.
async fn to_awaiting(store: &dyn Store, s: &Session) {
    assert!(apply_awaiting(store, s).await.expect("apply").is_some());
}

/// Writes `s` moved from pending to awaiting_user (next checked in ten seconds).
async fn apply_awaiting(store: &dyn Store, s: &Session) -> Result<Option<Event>, StoreError> {
    let mut next = s.clone();
    assert!(next.become_(Status::AwaitingUser, Utc::now()));
    let change = Change {
        session: &next,
        expected: Status::Pending,
        next_check_at: Some(Utc::now() + chrono::Duration::seconds(10)),
        work: None,
        lease: None,
    };
    store.apply(change).await
}

/// A deployment starts with an empty `sessions` table and keeps its connections while the table
/// grows. A statement kept prepared switches to a cached generic plan after five runs, and one
/// planned on a tiny table may read it whole (a sequential scan, or a whole index: the status
/// change's UPDATE once joined every row, a push's claim read the whole primary key). After
/// 24 status changes, push claims and marks, looks at due work, renewals and releases on a
/// tiny table (enough for each pooled connection to cache its plans) and 4,000 more open
/// sessions, one more of each must read a handful of rows, not the table.
#[tokio::test]
async fn a_grown_table_is_not_scanned_on_postgres() {
    let Some((db, store)) = postgres_store("a_grown_table_is_not_scanned_on_postgres").await else {
        return;
    };
    // No statistics are gathered meanwhile: the plans cached on the tiny table stay cached
    // when it grows (an ANALYZE would make PostgreSQL plan again, and the test pass by luck).
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query("ALTER TABLE sessions SET (autovacuum_enabled = false)")
        .execute(&mut conn)
        .await
        .expect("autovacuum off");
    // Status change, push claim, push mark, release; a look at due work, a renewal, a
    // release: seven updates per session.
    let story = |s: Session| {
        let store = store.clone();
        async move {
            store.create(&new(&s, None, 1, true)).await.expect("create");
            to_awaiting(&*store, &s).await;
            let claimed = match store.wake(&s.id, "vnpt-smartca", true).await.expect("wake") {
                Woken::Claimed(w) => w.held(),
                other => panic!("expected a claim, got {other:?}"),
            };
            let marked = store
                .wake(&s.id, "vnpt-smartca", false)
                .await
                .expect("wake");
            assert!(matches!(marked, Woken::Marked));
            store
                .release(std::slice::from_ref(&claimed))
                .await
                .expect("release");
            // The oldest due session (released ones stay due), renewed and given back.
            let due = store
                .due(Utc::now(), 1, &["vnpt-smartca".to_owned()], false)
                .await
                .expect("due");
            let held: Vec<Held> = due.iter().map(Work::held).collect();
            assert_eq!(held.len(), 1);
            store.renew(&held).await.expect("renew");
            store.release(&held).await.expect("release");
        }
    };
    for i in 0..24 {
        story(session(
            "t1",
            &format!("00109930{i:04}"),
            &format!("small-{i}"),
        ))
        .await;
    }
    // Open sessions far from due: in every index, the partial ones too.
    sqlx::query(
        "INSERT INTO sessions (id, tenant, provider, signer, status, created_at, expires_at,
                               next_check_at, body)
         SELECT 'grown-' || g, 't2', 'vnpt-smartca', '001099000001', 'awaiting_user', 0,
                9000000000000000, 9000000000000000, '{}'
         FROM generate_series(1, 4000) AS g",
    )
    .execute(&mut conn)
    .await
    .expect("grow the table");

    // Each reading waits for the count of updates it expects: 168 before, 175 after.
    let before = table_reads_after(&mut conn, 168).await;
    story(session("t1", "001099310000", "grown")).await;
    let after = table_reads_after(&mut conn, 175).await;
    let read = after.0 - before.0;
    assert!(
        read < 1_000,
        "a status change, a push claim and mark, a look at due work, a renewal and releases \
         read {read} rows"
    );
}

/// Session bodies, work states and event frames are compressed with lz4 where the server has it (this
/// server's build is asked, so the test holds on one without it too).
#[tokio::test]
async fn bodies_are_compressed_with_lz4_on_postgres() {
    let Some((db, _store)) = postgres_store("bodies_are_compressed_with_lz4_on_postgres").await
    else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let version: String = sqlx::query_scalar("SHOW server_version_num")
        .fetch_one(&mut conn)
        .await
        .expect("version");
    if version.parse::<u32>().expect("a number") < 140_000 {
        eprintln!("notice: PostgreSQL {version} has no per-column compression; nothing to check");
        return;
    }
    let has_lz4 = sqlx::query("CREATE TEMP TABLE probe (t text COMPRESSION lz4)")
        .execute(&mut conn)
        .await
        .is_ok();
    let methods: Vec<(String, String)> = sqlx::query_as(
        "SELECT attname::text, attcompression::text FROM pg_attribute
         WHERE (attrelid, attname) IN (('sessions'::regclass, 'body'),
                                       ('sessions'::regclass, 'work'),
                                       ('outbox'::regclass, 'frame'))
         ORDER BY attname",
    )
    .fetch_all(&mut conn)
    .await
    .expect("pg_attribute");
    let expected = if has_lz4 { "l" } else { "" };
    assert_eq!(
        methods,
        ["body", "frame", "work"].map(|c| (c.to_owned(), expected.to_owned()))
    );
}

/// A connection is handed out without a ping only when it went back to the pool moments ago:
/// connections the server dropped while they sat idle longer are found dead by the ping and
/// replaced, so no caller sees their error.
#[tokio::test]
async fn connections_dropped_while_idle_are_replaced_on_postgres() {
    let Some((db, store)) =
        postgres_store("connections_dropped_while_idle_are_replaced_on_postgres").await
    else {
        return;
    };
    let a = session("t1", "001099320000", "before");
    store
        .create(&new(&a, None, 1, false))
        .await
        .expect("create");
    // Several pooled connections, each used once (both pools: reads and hints).
    let reads = (0..4).map(|_| store.get("t1", &a.id));
    for got in futures_util::future::join_all(reads).await {
        assert!(got.expect("get").is_some());
    }
    store
        .release(&[Held {
            id: a.id.clone(),
            epoch: 0,
        }])
        .await
        .expect("release");

    let mut admin = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let dropped: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .expect("terminate");
    assert!(
        dropped.len() >= 3,
        "the store held {} connections",
        dropped.len()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;

    // Each call below would take a dead connection if none were checked.
    for _ in 0..4 {
        assert!(store.get("t1", &a.id).await.expect("get").is_some());
    }
    store
        .release(&[Held {
            id: a.id.clone(),
            epoch: 0,
        }])
        .await
        .expect("release");
    let b = session("t1", "001099320001", "after");
    store
        .create(&new(&b, None, 1, false))
        .await
        .expect("create after");
    let claimed = store.wake(&b.id, "vnpt-smartca", true).await.expect("wake");
    assert!(matches!(claimed, Woken::Claimed(_)));
}

/// A push's claim on a session checked later keeps that next check, so the claim changes no
/// indexed column and PostgreSQL writes it as a heap-only tuple (no new entry in any index); a
/// session already due moves to its lease's end instead, out of the due index's head.
#[tokio::test]
async fn a_push_claim_keeps_a_later_next_check_on_postgres() {
    let Some((db, store)) =
        postgres_store("a_push_claim_keeps_a_later_next_check_on_postgres").await
    else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let next_check = |id: SessionId| {
        sqlx::query_scalar::<_, Option<i64>>("SELECT next_check_at FROM sessions WHERE id = $1")
            .bind(id.to_string())
    };
    let later = session("t1", "001099330000", "later");
    store
        .create(&new(&later, None, 1, false))
        .await
        .expect("create");
    to_awaiting(&*store, &later).await;
    let before = next_check(later.id.clone())
        .fetch_one(&mut conn)
        .await
        .expect("read");
    let claimed = store
        .wake(&later.id, "vnpt-smartca", true)
        .await
        .expect("wake");
    assert!(matches!(claimed, Woken::Claimed(_)));
    let after = next_check(later.id.clone())
        .fetch_one(&mut conn)
        .await
        .expect("read");
    assert_eq!(before, after, "the claim moved a later next check");

    // Two updates so far (status change, claim); the statistics arrive late.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let hot = loop {
        let (updates, hot): (i64, i64) = sqlx::query_as(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'sessions'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_user_tables");
        if updates >= 2 {
            break hot;
        }
        assert!(tokio::time::Instant::now() < deadline, "no statistics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(hot >= 1, "the claim was not a heap-only update");

    // Pending and due now: claimed until its lease's end, and due then.
    let due = session("t1", "001099330001", "due");
    store
        .create(&new(&due, None, 1, false))
        .await
        .expect("create");
    let claimed = store
        .wake(&due.id, "vnpt-smartca", true)
        .await
        .expect("wake");
    assert!(matches!(claimed, Woken::Claimed(_)));
    let (next, lease): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT next_check_at, lease_until FROM sessions WHERE id = $1")
            .bind(due.id.to_string())
            .fetch_one(&mut conn)
            .await
            .expect("read");
    assert!(lease.is_some() && next == lease, "{next:?} / {lease:?}");
}

/// A certificate bundle is stored once under its digest and read back by it.
async fn bundles_story(store: Arc<dyn Store>) {
    assert_eq!(store.bundle("ab").await.expect("read"), None);
    store
        .put_bundle("ab", r#"{"certificate":"AA=="}"#)
        .await
        .expect("put");
    // A second put of the digest changes nothing (another session of the same signer).
    store
        .put_bundle("ab", r#"{"other":true}"#)
        .await
        .expect("put again");
    let got = store.bundle("ab").await.expect("read");
    assert_eq!(got.as_deref(), Some(r#"{"certificate":"AA=="}"#));
}

on_both_stores!(
    bundles_story,
    bundles_are_stored_once_on_sqlite,
    bundles_are_stored_once_on_postgres
);

/// A change PostgreSQL refuses fails alone: the writer's batch of status changes and the
/// waker's batch of push claims each fail as a whole when one row is refused, and are then run
/// change by change, so the refused one's neighbours still succeed. A trigger refuses one
/// session's updates (the writer's first; then the waker's).
#[tokio::test]
async fn a_refused_change_fails_alone_on_postgres() {
    let Some((db, store)) = postgres_store("a_refused_change_fails_alone_on_postgres").await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let sessions = created(&*store, 8, "0010995", "r").await;
    let refuse = |id: &SessionId| {
        format!(
            "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.id = '{id}' THEN RAISE EXCEPTION 'refused by the test'; END IF;
                 RETURN NEW;
             END $$"
        )
    };
    sqlx::query(&refuse(&sessions[3].id))
        .execute(&mut conn)
        .await
        .expect("function");
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");

    // One task, one thread: every change is queued before the writer runs.
    let applied =
        futures_util::future::join_all(sessions.iter().map(|s| apply_awaiting(&*store, s))).await;
    for (i, result) in applied.iter().enumerate() {
        match (i, result) {
            (3, Err(_)) => {}
            (3, Ok(_)) => panic!("the refused change succeeded"),
            (_, Ok(Some(_))) => {}
            (_, other) => panic!("change {i} failed with its refused neighbour: {other:?}"),
        }
    }

    // Now the waker: session 5's claim is refused.
    sqlx::query(&refuse(&sessions[5].id))
        .execute(&mut conn)
        .await
        .expect("function");
    let woken = wake_all(&*store, &sessions).await;
    for (i, result) in woken.iter().enumerate() {
        match (i, result) {
            (5, Err(_)) => {}
            (5, Ok(w)) => panic!("the refused claim succeeded: {w:?}"),
            (_, Ok(Woken::Claimed(_))) => {}
            (_, other) => panic!("push {i} failed with its refused neighbour: {other:?}"),
        }
    }
}
