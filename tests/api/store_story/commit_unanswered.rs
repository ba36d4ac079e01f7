//! A COMMIT whose answer is lost: a proxy between the store and PostgreSQL forwards the COMMIT
//! and closes the store's connection before the answer comes back (the change was written), or
//! closes it instead of forwarding the COMMIT (nothing was written). The writer reads the
//! outbox back and answers its caller with what really happened.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use kyso::domain::Status;
use kyso::store::{self, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{instance, move_from_pending};
use crate::helpers::{new_session as new, smartca_session as session};
use crate::pg::fresh_db;

const IDLE: u8 = 0;
/// The next COMMIT reaches the server; its answer does not reach the client.
const LOSE_ANSWER: u8 = 1;
/// The next COMMIT never reaches the server (the connection closes: PostgreSQL rolls back).
const LOSE_COMMIT: u8 = 2;

/// A TCP proxy to `upstream`; `mode` arms it for one COMMIT; `dropped` counts the answer
/// bytes it kept from the client.
async fn proxy(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicU8>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mode = Arc::new(AtomicU8::new(IDLE));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (armed, counted) = (Arc::clone(&mode), Arc::clone(&dropped));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            tokio::spawn(relay(
                client,
                server,
                Arc::clone(&armed),
                Arc::clone(&counted),
            ));
        }
    });
    (addr, mode, dropped)
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    mode: Arc<AtomicU8>,
    dropped: Arc<AtomicUsize>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Set before the COMMIT goes on: from then on nothing the server says reaches the client.
    let discard = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(tokio::sync::Notify::new());
    let (discard_up, cut_up) = (Arc::clone(&discard), Arc::clone(&cut));
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            if chunk.windows(7).any(|w| w == b"COMMIT\0") {
                match mode.swap(IDLE, Ordering::SeqCst) {
                    LOSE_ANSWER => {
                        discard_up.store(true, Ordering::SeqCst);
                        let _ = server_write.write_all(chunk).await;
                        // The server side stays open until its answer is read and dropped.
                        return;
                    }
                    LOSE_COMMIT => {
                        discard_up.store(true, Ordering::SeqCst);
                        cut_up.notify_one();
                        return;
                    }
                    _ => {}
                }
            }
            if server_write.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                read = server_read.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) if discard.load(Ordering::SeqCst) => {
                        dropped.fetch_add(n, Ordering::SeqCst);
                        let _ = client_write.shutdown().await;
                        return;
                    }
                    Ok(n) => {
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                },
                _ = cut.notified() => {
                    let _ = client_write.shutdown().await;
                    return;
                }
            }
        }
    };
    tokio::join!(up, down);
}

/// The store through a proxy, and a session created through it (a COMMIT answered).
async fn through_proxy(test: &str) -> Option<Proxied> {
    let db = fresh_db(test).await?;
    let rest = db
        .url
        .strip_prefix("postgres://")
        .expect("a postgres:// url");
    let (auth, tail) = rest.split_once('@').expect("user@host");
    let (host, name) = tail.split_once('/').expect("host/db");
    let upstream: SocketAddr = tokio::net::lookup_host(host)
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let (addr, mode, dropped) = proxy(upstream).await;
    let url = format!("postgres://{auth}@{addr}/{name}?sslmode=disable");
    let store = store::open(&url, &instance(test, 5000))
        .await
        .expect("open");
    let s = session("t1", "001099500001", "r");
    store.create(&new(&s, None, 1, true)).await.expect("create");
    Some(Proxied {
        _db: db,
        store,
        mode,
        dropped,
        session: s,
    })
}

struct Proxied {
    _db: crate::pg::TestDb,
    store: Arc<dyn Store>,
    mode: Arc<AtomicU8>,
    dropped: Arc<AtomicUsize>,
    session: kyso::domain::Session,
}

#[tokio::test]
async fn a_commit_written_but_unanswered_is_reported_as_written() {
    let Some(Proxied {
        store,
        mode,
        dropped,
        session: s,
        _db: _keep_the_database,
        ..
    }) = through_proxy("commit_lost_answer").await
    else {
        return;
    };
    mode.store(LOSE_ANSWER, Ordering::SeqCst);
    let signed = move_from_pending(&*store, &s, Status::Signed, None).await;
    let ev = signed
        .expect("the change was written, so it is reported written")
        .expect("with its event");
    assert_eq!(mode.load(Ordering::SeqCst), IDLE, "the COMMIT was cut");
    assert!(dropped.load(Ordering::SeqCst) > 0, "its answer was dropped");
    assert_eq!((ev.seq, ev.status), (2, Status::Signed));
    let now = store.get("t1", &s.id).await.expect("get").expect("session");
    assert_eq!(now.status, Status::Signed);
}

#[tokio::test]
async fn a_commit_never_written_is_reported_failed() {
    let Some(Proxied {
        store,
        mode,
        session: s,
        _db: _keep_the_database,
        ..
    }) = through_proxy("commit_lost").await
    else {
        return;
    };
    mode.store(LOSE_COMMIT, Ordering::SeqCst);
    let signed = move_from_pending(&*store, &s, Status::Signed, None).await;
    assert!(signed.is_err(), "nothing was written");
    assert_eq!(mode.load(Ordering::SeqCst), IDLE, "the COMMIT was cut");
    let now = store.get("t1", &s.id).await.expect("get").expect("session");
    assert_eq!(now.status, Status::Pending);
    assert_eq!(store.last_seq("t1").await.expect("last"), 1);
}
