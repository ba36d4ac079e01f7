//! Tests of the WebSocket pump (`ws.rs`): ordering of events published out of order, gaps
//! filled from the outbox, batched writes, and dropping a client that stops reading.

use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::Utc;

use super::*;
use crate::domain::{Format, Purpose, Session, Status};
use crate::store::{NewSession, SqliteStore};

/// A client whose socket never accepts another byte.
struct Stalled;

impl Sink<Message> for Stalled {
    type Error = ();
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Pending
    }
    fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), ()> {
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Pending
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Ready(Ok(()))
    }
}

/// A client that takes every frame; the texts it got, in order, and how many flushes.
#[derive(Clone, Default)]
struct Collect(
    Arc<std::sync::Mutex<Vec<String>>>,
    Arc<std::sync::atomic::AtomicUsize>,
);

impl Collect {
    fn texts(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }
    fn flushes(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Sink<Message> for Collect {
    type Error = ();
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), ()> {
        if let Message::Text(t) = msg {
            self.0.lock().expect("not poisoned").push(t.to_string());
        }
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Ready(Ok(()))
    }
}

async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Arc::new(SqliteStore::open(&url).await.expect("store"))
}

/// Creates a session of tenant `t` and returns its first event.
async fn created(store: &dyn Store) -> Event {
    let new = NewSession {
        session: session("t"),
        idempotency_key: None,
        request_hash: [0; 32],
        allow_concurrent: true,
        lease_until: None,
    };
    match store.create(&new).await.expect("create") {
        crate::store::Created::New(ev) => ev,
        _ => panic!("not created"),
    }
}

/// A subscription to tenant `t`'s events after `after` (`None`: live only).
fn subscription(after: Option<i64>, send_timeout: Duration) -> Subscription {
    Subscription {
        tenant: "t".into(),
        after,
        session: None,
        ping_every: Duration::from_secs(60),
        send_timeout,
    }
}

/// Runs a subscriber of tenant `t` after `after` until `live` is dropped.
fn subscribe(
    store: Arc<dyn Store>,
    live: broadcast::Receiver<Event>,
    after: Option<i64>,
) -> Collect {
    let client = Collect::default();
    let sub = subscription(after, Duration::from_secs(5));
    let incoming = futures_util::stream::pending::<Result<Message, axum::Error>>();
    tokio::spawn(pump(client.clone(), incoming, store, live, sub));
    client
}

/// An event of tenant `t` the outbox does not have: only the broadcast can deliver it.
fn bare(seq: i64) -> Event {
    Event {
        tenant: "t".into(),
        seq,
        session_id: SessionId::generate(),
        status: Status::Pending,
        frame: format!("frame {seq}").into(),
    }
}

async fn wait_for(client: &Collect, n: usize) -> Vec<String> {
    for _ in 0..100 {
        if client.texts().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.texts()
}

#[tokio::test]
async fn neighbours_published_out_of_order_go_out_in_order_from_the_broadcast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    let (tx, rx) = broadcast::channel(16);
    let client = subscribe(store, rx, Some(0));
    tokio::time::sleep(Duration::from_millis(50)).await;
    for seq in [1, 3, 4, 2, 5] {
        tx.send(bare(seq)).expect("send");
    }
    let got = wait_for(&client, 5).await;
    assert_eq!(got, ["frame 1", "frame 2", "frame 3", "frame 4", "frame 5"]);
}

#[tokio::test]
async fn events_already_published_go_out_in_one_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    let (tx, rx) = broadcast::channel(64);
    let client = subscribe(store.clone(), rx, Some(0));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let flushed_before = client.flushes();
    let mut events = Vec::new();
    for _ in 0..10 {
        events.push(created(store.as_ref()).await);
    }
    let want: Vec<String> = events.iter().map(|e| e.frame.to_string()).collect();
    // This (single-threaded) runtime runs the subscriber only when the test waits, so all
    // ten are published before it wakes.
    for ev in events {
        tx.send(ev).expect("send");
    }
    assert_eq!(wait_for(&client, 10).await, want);
    assert_eq!(client.flushes() - flushed_before, 1);
}

#[tokio::test]
async fn a_live_only_subscriber_gets_its_first_events_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    let (tx, rx) = broadcast::channel(16);
    let client = subscribe(store, rx, None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Published a moment apart, the later one first.
    tx.send(bare(8)).expect("send");
    tokio::time::sleep(Duration::from_millis(2)).await;
    tx.send(bare(7)).expect("send");
    tx.send(bare(9)).expect("send");
    assert_eq!(
        wait_for(&client, 3).await,
        ["frame 7", "frame 8", "frame 9"]
    );
}

/// Issue 16 item 3: a subscriber without `?after` starts at the tenant's newest event, so an
/// earlier event published after a later one (past the gap wait) is read from the outbox, not
/// dropped as old once the later one went out.
#[tokio::test]
async fn a_live_only_subscriber_gets_an_earlier_event_published_late() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    for _ in 0..3 {
        created(store.as_ref()).await;
    }
    let (tx, rx) = broadcast::channel(16);
    let client = subscribe(store.clone(), rx, None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (fourth, fifth) = (created(store.as_ref()).await, created(store.as_ref()).await);
    tx.send(fifth.clone()).expect("send");
    // Longer than the gap wait: the later event has gone out before the earlier one comes.
    tokio::time::sleep(GAP_WAIT * 5).await;
    tx.send(fourth.clone()).expect("send");
    tx.send(bare(6)).expect("send");
    let want = [&*fourth.frame, &*fifth.frame, "frame 6"];
    assert_eq!(wait_for(&client, 3).await, want);
}

#[tokio::test]
async fn a_gap_the_broadcast_never_fills_is_read_from_the_outbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    let (tx, rx) = broadcast::channel(16);
    let client = subscribe(store.clone(), rx, Some(0));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let events = [
        created(store.as_ref()).await,
        created(store.as_ref()).await,
        created(store.as_ref()).await,
    ];
    // The second event is never published (another instance wrote it, say).
    tx.send(events[0].clone()).expect("send");
    tx.send(events[2].clone()).expect("send");
    let want: Vec<String> = events.iter().map(|e| e.frame.to_string()).collect();
    assert_eq!(wait_for(&client, 3).await, want);
}

fn session(tenant: &str) -> Session {
    let now = Utc::now();
    Session {
        id: SessionId::generate(),
        tenant: tenant.into(),
        provider: "vnpt-smartca".into(),
        signer: "001099012345".into(),
        purpose: Purpose::Login,
        reference: None,
        status: Status::Pending,
        verification_code: "0000".into(),
        digest: [0; 32],
        display_text: "x".into(),
        document_name: None,
        format: Format::Pkcs1,
        created_at: now,
        expires_at: now + chrono::Duration::seconds(60),
        completed_at: None,
        result: None,
        error: None,
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_the_send_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    created(store.as_ref()).await;
    let (_tx, mut rx) = broadcast::channel(4);
    let sub = subscription(Some(0), Duration::from_millis(200));
    let mut incoming = futures_util::stream::pending::<Result<Message, axum::Error>>();
    let mut cur = Cursor {
        sink: Stalled,
        last: 0,
        sub: &sub,
        ahead: BTreeMap::new(),
        gap_deadline: None,
        unflushed: false,
    };
    let started = tokio::time::Instant::now();
    let ended = tokio::time::timeout(
        Duration::from_secs(5),
        run(&mut cur, &mut incoming, store.as_ref(), &mut rx),
    )
    .await
    .expect("the stalled client was dropped");
    assert!(matches!(ended, Err(End::Slow)), "ended as slow: {ended:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "not before its send timeout"
    );
}
