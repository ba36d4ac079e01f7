//! The events WebSocket: live events, replay after reconnect, session filter, browser tickets.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, spawn_app_overriding, KEY, OTHER_KEY};

fn statuses(events: &[Value], id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["session"]["id"] == id)
        .filter_map(|e| e["session"]["status"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_signed_session_reaches_the_websocket_with_its_identity() {
    let app = spawn_app().await;
    let mut ws = app.ws("", Some(KEY)).await;
    let s = app.start("001099012345", json!({})).await;
    let id = s["id"].as_str().expect("id");
    let events = ws.until_terminal(id, 20).await;
    assert_eq!(
        statuses(&events, id),
        ["pending", "awaiting_user", "signed"]
    );
    let last = events.last().expect("event");
    assert_eq!(last["type"], "session.updated");
    assert_eq!(
        last["session"]["result"]["identity"]["citizen_id"],
        "001099012345"
    );
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[tokio::test]
async fn a_rejected_request_reports_rejected_over_websocket() {
    let app = spawn_app().await;
    let mut ws = app.ws("", Some(KEY)).await;
    let s = app.start("001099012401", json!({})).await;
    let id = s["id"].as_str().expect("id");
    let events = ws.until_terminal(id, 20).await;
    assert_eq!(
        statuses(&events, id).last().map(String::as_str),
        Some("rejected")
    );
}

#[tokio::test]
async fn a_portal_that_reconnects_with_after_loses_nothing() {
    let app = spawn_app().await;
    let a = app.start("001099012345", json!({})).await;
    let a_id = a["id"].as_str().expect("id");
    app.finish(a_id, 20).await;
    // While "disconnected", another session runs to completion.
    let b = app.start("0101234567", json!({})).await;
    let b_id = b["id"].as_str().expect("id");
    app.finish(b_id, 20).await;

    let mut ws = app.ws("?after=3", Some(KEY)).await;
    let mut replay = Vec::new();
    while let Some(ev) = ws.next_event(2).await {
        replay.push(ev);
    }
    let seqs: Vec<i64> = replay.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(seqs, vec![4, 5, 6], "exactly the events after 3, in order");
    assert_eq!(
        statuses(&replay, b_id),
        ["pending", "awaiting_user", "signed"]
    );

    // And then it is live.
    let c = app.start("001099012346", json!({})).await;
    let c_id = c["id"].as_str().expect("id");
    let live = ws.until_terminal(c_id, 20).await;
    assert_eq!(live.first().and_then(|e| e["seq"].as_i64()), Some(7));
}

#[tokio::test]
async fn a_session_filter_and_tenant_isolation_hold_on_the_stream() {
    let app = spawn_app().await;
    let a = app.start("001099012345", json!({})).await;
    let a_id = a["id"].as_str().expect("id");
    let mut only_a = app.ws(&format!("?after=0&session={a_id}"), Some(KEY)).await;
    let mut other_tenant = app.ws("?after=0", Some(OTHER_KEY)).await;
    let b = app.start("0101234567", json!({})).await;
    let b_id = b["id"].as_str().expect("id");
    let events = only_a.until_terminal(a_id, 20).await;
    assert_eq!(
        statuses(&events, a_id),
        ["pending", "awaiting_user", "signed"],
        "the filtered stream carries the whole of session a"
    );
    assert!(events.iter().all(|e| e["session"]["id"] == a_id));
    // Session b (same tenant) finishes too; the filtered stream must stay silent about it.
    app.finish(b_id, 20).await;
    let c = app.start("001099012346", json!({})).await;
    app.finish(c["id"].as_str().expect("id"), 20).await;
    assert_eq!(only_a.next_event(1).await, None, "nothing of b or c");

    // The other tenant's stream is alive (its own session comes through) and its first event is
    // its own: none of the three sessions above reached it.
    let mine = app.start_as(OTHER_KEY, "001099012347", json!({})).await;
    let first = other_tenant
        .next_event(20)
        .await
        .expect("the other tenant's own event");
    assert_eq!(first["session"]["id"], mine["id"], "{first}");
    assert_eq!(first["seq"], 1, "the other tenant's first event: {first}");
}

#[tokio::test]
async fn a_browser_opens_the_stream_with_a_single_use_ticket() {
    let app = spawn_app().await;
    let t: Value = app
        .http
        .post(app.url("/v1/events/tickets"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let ticket = t["ticket"].as_str().expect("ticket");
    let mut ws = app.ws(&format!("?ticket={ticket}"), None).await;
    let s = app.start("001099012345", json!({})).await;
    let events = ws.until_terminal(s["id"].as_str().expect("id"), 20).await;
    assert!(!events.is_empty());
    // The same ticket does not work twice.
    let again =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/events?ticket={ticket}", app.addr))
            .await;
    assert!(again.is_err());
}

/// A client that connects with a tiny receive buffer and never reads.
async fn stalled_client(app: &crate::helpers::TestApp) -> StalledWs {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket.connect(app.addr).await.expect("connect");
    let mut req = format!("ws://{}/v1/events?after=0", app.addr)
        .into_client_request()
        .expect("ws request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {KEY}").parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::client_async(req, tcp)
        .await
        .expect("ws handshake");
    ws
}

type StalledWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A client that stops reading fills its socket buffers (800 sessions make ~8 MB of events; about
/// 2 to 4 MB fit the stalled socket's kernel buffers on loopback); the gateway must keep every other
/// client at pace and drop the stalled one after `events.send_timeout_s` (5 s here), never make
/// the others wait for it. The stall is real: the stalled client gets only part of the stream
/// and then its end, which it would not if everything had fit in the buffers.
#[tokio::test]
async fn a_stalled_client_does_not_delay_events_to_other_clients() {
    const SESSIONS: usize = 800;
    let app = spawn_app_overriding(300, vec![("events.send_timeout_s".into(), json!(5))]).await;
    let dropped_before = app.metric("kyso_ws_dropped_slow_total").await;
    let mut stalled = stalled_client(&app).await;
    let mut reader = app.ws("", Some(KEY)).await;
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut finished = 0;
        while finished < SESSIONS {
            let Some(ev) = reader.next_event(30).await else {
                break;
            };
            if !["pending", "awaiting_user"]
                .contains(&ev["session"]["status"].as_str().unwrap_or_default())
            {
                finished += 1;
            }
            got.push((Instant::now(), ev));
        }
        got
    });
    // The largest fields a portal may send, in three-byte Vietnamese letters: ~3 KB per event with the certificate and identity.
    let text = "ệ".repeat(200);
    futures_util::stream::iter(0..SESSIONS)
        .map(|i| {
            let body = json!({"display_text": text, "reference": format!("{i:0>128}")});
            // The last three digits pick the mock's behaviour: 345 approves.
            let signer = format!("001{:06}345", 100_000 + i);
            let app = &app;
            async move { app.start(&signer, body).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let got = reading.await.expect("reader task");
    let bytes: usize = got.iter().map(|(_, e)| e.to_string().len()).sum();
    let seqs: Vec<i64> = got.iter().filter_map(|(_, e)| e["seq"].as_i64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no gap"
    );
    let signed = got
        .iter()
        .filter(|(_, e)| e["session"]["status"] == "signed")
        .count();
    assert_eq!(signed, SESSIONS, "every session reached the reader signed");
    // Events keep coming (approvals after 300 ms); a gateway blocked on the stalled client
    // would leave a pause of about the 5 s send timeout. 2.5 s leaves room for a slow machine.
    let longest = got
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    assert!(
        longest < Duration::from_millis(2500),
        "the reader waited {longest:?} between two events ({bytes} bytes in all)"
    );

    // Now read the stalled client: part of the stream, then the gateway's end of it.
    let mut stalled_events = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let ended = loop {
        match tokio::time::timeout_at(deadline, stalled.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => stalled_events += 1,
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => break true,
            Ok(Some(Ok(_))) => {}
            Err(_) => break false,
        }
    };
    assert!(
        ended && stalled_events < seqs.len(),
        "the stalled client was not dropped: {stalled_events} of {} events ({bytes} bytes) fit its buffers",
        seqs.len()
    );
    assert!(app.metric("kyso_ws_dropped_slow_total").await > dropped_before);
}

/// A replay asked from before what retention kept is closed with code 4410 and a reason naming
/// the oldest seq kept; one asked from just before that is served.
#[tokio::test]
async fn a_replay_older_than_what_is_kept_is_closed_with_a_reason() {
    use sqlx::Connection as _;
    let app = spawn_app().await;
    let s = app.start("001099012345", json!({})).await;
    app.finish(s["id"].as_str().expect("id"), 20).await;
    // What the pruning task does to old events, done here at once.
    let db = format!("sqlite://{}", app.dir.path().join("kyso.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&db).await.expect("db");
    sqlx::query("DELETE FROM outbox WHERE seq <= 2")
        .execute(&mut conn)
        .await
        .expect("prune");

    let mut ws = app.ws("?after=0", Some(KEY)).await;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.stream.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.expect("a close frame"),
            Ok(Some(Ok(Message::Text(t)))) => panic!("an event was sent: {t}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 4410);
    assert!(close.reason.contains("oldest kept: 3"), "{}", close.reason);

    let mut ws = app.ws("?after=2", Some(KEY)).await;
    let ev = ws.next_event(5).await.expect("the kept event");
    assert_eq!(ev["seq"], 3);
}
