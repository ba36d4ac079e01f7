//! One WebSocket subscriber: replay from the outbox after `?after=`, then live events, with
//! gaps (a lagging broadcast, an event published out of order) filled from the outbox. Written
//! over a generic sink and stream so it runs without a socket in tests.
//!
//! Concurrent commits publish from their own tasks, so under load neighbouring events reach
//! the broadcast a little out of order. An event that arrives ahead of its predecessors is
//! held for up to [`GAP_WAIT`] while they come; only a gap still open then is read from the
//! outbox. (Reading it at once cost a query per inversion, ~5 % of the gateway's CPU at
//! 2,000 sessions/s.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};

use crate::domain::SessionId;
use crate::store::{Event, Store};

const PAGE: u32 = 500;

/// How long events that arrived ahead of a missing one wait for it on the broadcast.
const GAP_WAIT: Duration = Duration::from_millis(20);
/// Events held while waiting; one more and the outbox is read at once.
const GAP_HELD: usize = 1024;
/// Live events already published when one is received, taken before the socket is written:
/// under load several frames go out in one write.
const BURST: usize = 256;

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
    /// `?after` asked for events retention has pruned: closed with [`PRUNED_CLOSE`].
    #[error("events after {after} were pruned (retention); oldest kept: {oldest}")]
    Pruned { after: i64, oldest: String },
}

/// The close code of a stream whose `?after` is older than what is kept (a 4xxx private code;
/// the reason says which seq is the oldest kept). The portal re-reads its sessions from the
/// API and reconnects without `?after` (or after the oldest kept).
pub const PRUNED_CLOSE: u16 = 4410;

/// `Some(End::Pruned)` when events just after `after` are no longer kept.
///
/// The tenant's last seq is read first: when it is past `after`, event `after + 1` was
/// committed by then, and only retention removes a committed event, so the oldest kept
/// (read next) says whether it is still there. Read the other way round, an event committed
/// between the two reads made a fresh stream look pruned (oldest: none, last: 1) and closed
/// it before its first event.
async fn pruned(store: &dyn Store, tenant: &str, after: i64) -> Result<Option<End>, End> {
    if after >= store.last_seq(tenant).await? {
        return Ok(None);
    }
    let oldest = store.oldest_seq(tenant).await?;
    if oldest.is_some_and(|o| o <= after + 1) {
        return Ok(None);
    }
    Ok(Some(End::Pruned {
        after,
        oldest: oldest.map_or_else(|| "none".to_owned(), |o| o.to_string()),
    }))
}

struct Cursor<'a, S> {
    sink: S,
    sub: &'a Subscription,
    /// The seq of the last event sent (or skipped as another session's).
    last: i64,
    /// Live events past a gap, by seq, and when the outbox is read if the gap stays open.
    ahead: BTreeMap<i64, Event>,
    gap_deadline: Option<tokio::time::Instant>,
    /// Frames fed to the sink and not yet flushed.
    unflushed: bool,
}

impl<S: Sink<Message> + Unpin> Cursor<'_, S> {
    /// Queues a frame in the sink; [`Self::flush`] writes it.
    async fn feed(&mut self, msg: Message) -> Result<(), End> {
        self.unflushed = true;
        within(self.sub.send_timeout, self.sink.feed(msg)).await
    }

    async fn flush(&mut self) -> Result<(), End> {
        if !std::mem::take(&mut self.unflushed) {
            return Ok(());
        }
        within(self.sub.send_timeout, self.sink.flush()).await
    }

    async fn deliver(&mut self, ev: &Event) -> Result<(), End> {
        self.last = ev.seq;
        if self
            .sub
            .session
            .as_ref()
            .is_some_and(|s| *s != ev.session_id)
        {
            return Ok(());
        }
        metrics::counter!("kyso_ws_frames_sent_total").increment(1);
        self.feed(Message::Text(ev.frame.as_ref().into())).await
    }

    /// Sends every stored event after the cursor, up to `until` when given.
    async fn catch_up(&mut self, store: &dyn Store, until: Option<i64>) -> Result<(), End> {
        loop {
            let page = store
                .events_after(&self.sub.tenant, self.last, PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            for ev in &page {
                if until.is_some_and(|u| ev.seq > u) {
                    return Ok(());
                }
                self.deliver(ev).await?;
            }
            self.flush().await?;
            if !full {
                return Ok(());
            }
        }
    }

    async fn on_received(
        &mut self,
        store: &dyn Store,
        received: Result<Event, RecvError>,
    ) -> Result<(), End> {
        match received {
            Ok(ev) => self.on_live(store, &ev).await,
            Err(RecvError::Lagged(_)) => {
                self.catch_up(store, None).await?;
                self.deliver_ahead(false).await
            }
            Err(RecvError::Closed) => Err(End::Closed),
        }
    }

    async fn on_live(&mut self, store: &dyn Store, ev: &Event) -> Result<(), End> {
        if *ev.tenant != *self.sub.tenant {
            return Ok(());
        }
        match self.last {
            last if ev.seq <= last => Ok(()),
            last if ev.seq == last + 1 => {
                self.deliver(ev).await?;
                self.deliver_ahead(false).await
            }
            // Past a gap (its predecessor may be a moment behind it): held.
            _ => {
                self.ahead.insert(ev.seq, ev.clone());
                if self.ahead.len() > GAP_HELD {
                    return self.fill_gap(store).await;
                }
                self.gap_deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + GAP_WAIT);
                Ok(())
            }
        }
    }

    /// Sends held events that now follow on; with `skip_gaps`, all of them in order.
    async fn deliver_ahead(&mut self, skip_gaps: bool) -> Result<(), End> {
        while let Some(entry) = self.ahead.first_entry() {
            let seq = *entry.key();
            if seq <= self.last {
                entry.remove();
                continue;
            }
            let follows = seq == self.last + 1;
            if !(follows || skip_gaps) {
                break;
            }
            let ev = entry.remove();
            self.deliver(&ev).await?;
        }
        if self.ahead.is_empty() {
            self.gap_deadline = None;
        }
        Ok(())
    }

    /// Reads the missing events from the outbox, up to the last one held.
    async fn fill_gap(&mut self, store: &dyn Store) -> Result<(), End> {
        let until = self.ahead.last_key_value().map(|(seq, _)| *seq);
        self.catch_up(store, until).await?;
        // Whatever the outbox did not have (it has every committed event) goes out in order.
        self.deliver_ahead(true).await
    }
}

/// A sink operation that must finish within `limit`: a client that cannot take it is slow.
async fn within<E>(
    limit: Duration,
    op: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), End> {
    match tokio::time::timeout(limit, op).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Closed),
        Err(_) => Err(End::Slow),
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
        last: sub.after.unwrap_or(0),
        sub: &sub,
        ahead: BTreeMap::new(),
        gap_deadline: None,
        unflushed: false,
    };
    metrics::gauge!("kyso_ws_connections").increment(1.0);
    let end = run(&mut cur, &mut incoming, store.as_ref(), &mut live).await;
    metrics::gauge!("kyso_ws_connections").decrement(1.0);
    if let Err(e) = end {
        tracing::info!(tenant = %sub.tenant, reason = %e, "event stream ended");
        if matches!(e, End::Slow) {
            metrics::counter!("kyso_ws_dropped_slow_total").increment(1);
        }
        if matches!(e, End::Pruned { .. }) {
            let frame = axum::extract::ws::CloseFrame {
                code: PRUNED_CLOSE,
                reason: e.to_string().into(),
            };
            let _ = within(sub.send_timeout, cur.sink.send(Message::Close(Some(frame)))).await;
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
    match cur.sub.after {
        Some(after) => {
            if let Some(end) = pruned(store, &cur.sub.tenant, after).await? {
                return Err(end);
            }
            cur.catch_up(store, None).await?
        }
        // Live only: from the tenant's newest committed event, read after `live` subscribed,
        // so every later event comes through the broadcast or the outbox, and one published
        // out of order is waited for (and read from the outbox) like any gap.
        None => cur.last = store.last_seq(&cur.sub.tenant).await?,
    }
    let mut ping = tokio::time::interval(cur.sub.ping_every);
    ping.tick().await;
    loop {
        tokio::select! {
            ev = live.recv() => {
                cur.on_received(store, ev).await?;
                for _ in 1..BURST {
                    let ev = match live.try_recv() {
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                        Err(TryRecvError::Closed) => Err(RecvError::Closed),
                        Ok(ev) => Ok(ev),
                    };
                    cur.on_received(store, ev).await?;
                }
            },
            msg = incoming.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(End::Closed),
                Some(Ok(Message::Text(t))) => note_ack(&t),
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => cur.feed(Message::Ping(Vec::new().into())).await?,
            _ = tokio::time::sleep_until(
                cur.gap_deadline.unwrap_or_else(tokio::time::Instant::now)
            ), if cur.gap_deadline.is_some() => cur.fill_gap(store).await?,
        }
        cur.flush().await?;
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
#[path = "ws_tests.rs"]
mod tests;
