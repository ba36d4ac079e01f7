//! One WebSocket subscriber: replay from the outbox after `?after=`, then live events, with
//! gaps (a lagging broadcast, an event published out of order) filled from the outbox. Written
//! over a generic sink and stream so it runs without a socket in tests.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::domain::SessionId;
use crate::store::{Event, Store};

const PAGE: u32 = 500;

pub struct Subscription {
    pub tenant: Arc<str>,
    /// Replay every event with a larger seq first; `None` starts with live events.
    pub after: Option<i64>,
    pub session: Option<SessionId>,
    pub ping_every: Duration,
    /// A client that cannot take a frame within this time is dropped.
    pub send_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
enum End {
    #[error("client went away")]
    Closed,
    #[error("client too slow")]
    Slow,
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

struct Cursor<'a, S> {
    sink: S,
    sub: &'a Subscription,
    last: Option<i64>,
}

impl<S: Sink<Message> + Unpin> Cursor<'_, S> {
    async fn send(&mut self, msg: Message) -> Result<(), End> {
        match tokio::time::timeout(self.sub.send_timeout, self.sink.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Closed),
            Err(_) => Err(End::Slow),
        }
    }

    async fn deliver(&mut self, ev: &Event) -> Result<(), End> {
        self.last = Some(ev.seq);
        if self
            .sub
            .session
            .as_ref()
            .is_some_and(|s| *s != ev.session_id)
        {
            return Ok(());
        }
        metrics::counter!("kyso_ws_frames_sent_total").increment(1);
        self.send(Message::Text(ev.frame.as_ref().into())).await
    }

    /// Sends every stored event after the cursor, up to `until` when given.
    async fn catch_up(&mut self, store: &dyn Store, until: Option<i64>) -> Result<(), End> {
        loop {
            let after = self.last.unwrap_or(0);
            let page = store.events_after(&self.sub.tenant, after, PAGE).await?;
            let full = page.len() == PAGE as usize;
            for ev in &page {
                if until.is_some_and(|u| ev.seq > u) {
                    return Ok(());
                }
                self.deliver(ev).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn on_live(&mut self, store: &dyn Store, ev: &Event) -> Result<(), End> {
        if *ev.tenant != *self.sub.tenant {
            return Ok(());
        }
        match self.last {
            Some(last) if ev.seq <= last => Ok(()),
            Some(last) if ev.seq > last + 1 => self.catch_up(store, Some(ev.seq)).await,
            _ => self.deliver(ev).await,
        }
    }
}

pub async fn pump<S, R>(
    sink: S,
    mut incoming: R,
    store: Arc<dyn Store>,
    mut live: broadcast::Receiver<Event>,
    sub: Subscription,
) where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let mut cur = Cursor {
        sink,
        last: sub.after,
        sub: &sub,
    };
    metrics::gauge!("kyso_ws_connections").increment(1.0);
    let end = run(&mut cur, &mut incoming, store.as_ref(), &mut live).await;
    metrics::gauge!("kyso_ws_connections").decrement(1.0);
    if let Err(e) = end {
        tracing::info!(tenant = %sub.tenant, reason = %e, "event stream ended");
        if matches!(e, End::Slow) {
            metrics::counter!("kyso_ws_dropped_slow_total").increment(1);
        }
    }
    let _ = cur.sink.close().await;
}

async fn run<S, R>(
    cur: &mut Cursor<'_, S>,
    incoming: &mut R,
    store: &dyn Store,
    live: &mut broadcast::Receiver<Event>,
) -> Result<(), End>
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    if cur.last.is_some() {
        cur.catch_up(store, None).await?;
    }
    let mut ping = tokio::time::interval(cur.sub.ping_every);
    ping.tick().await;
    loop {
        tokio::select! {
            ev = live.recv() => match ev {
                Ok(ev) => cur.on_live(store, &ev).await?,
                Err(RecvError::Lagged(_)) => {
                    if cur.last.is_some() {
                        cur.catch_up(store, None).await?;
                    }
                }
                Err(RecvError::Closed) => return Err(End::Closed),
            },
            msg = incoming.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(End::Closed),
                Some(Ok(Message::Text(t))) => note_ack(&t),
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => cur.send(Message::Ping(Vec::new().into())).await?,
        }
    }
}

/// Acks are accepted for clients that send them; delivery does not depend on them because the
/// client resumes with `?after=`.
fn note_ack(text: &str) {
    #[derive(serde::Deserialize)]
    struct Ack {
        r#type: String,
    }
    if serde_json::from_str::<Ack>(text).is_ok_and(|a| a.r#type == "ack") {
        metrics::counter!("kyso_ws_acks_total").increment(1);
    }
}

#[cfg(test)]
mod tests {
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
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("store"));
        store
            .create(&NewSession {
                session: session("t"),
                idempotency_key: None,
                request_hash: [0; 32],
                allow_concurrent: true,
            })
            .await
            .expect("create");
        let (_tx, rx) = broadcast::channel(4);
        let sub = Subscription {
            tenant: "t".into(),
            after: Some(0),
            session: None,
            ping_every: Duration::from_secs(60),
            send_timeout: Duration::from_millis(200),
        };
        let incoming = futures_util::stream::pending::<Result<Message, axum::Error>>();
        let ended = tokio::time::timeout(
            Duration::from_secs(5),
            pump(Stalled, incoming, store, rx, sub),
        )
        .await;
        assert!(ended.is_ok(), "the stalled client was dropped");
    }
}
