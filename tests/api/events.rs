//! The events WebSocket: live events, replay after reconnect, session filter, browser tickets.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, KEY, OTHER_KEY};

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
    app.start("0101234567", json!({})).await;
    let events = only_a.until_terminal(a_id, 20).await;
    assert!(events.iter().all(|e| e["session"]["id"] == a_id));
    assert_eq!(
        other_tenant.next_event(2).await,
        None,
        "no events of another tenant"
    );
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

#[tokio::test]
async fn a_stalled_client_does_not_delay_events_to_other_clients() {
    let app = spawn_app().await;
    // The stalled client never reads; the gateway must not block on it.
    let _stalled = app.ws("?after=0", Some(KEY)).await;
    let mut reader = app.ws("", Some(KEY)).await;
    let mut last = None;
    for i in 0..5 {
        let s = app
            .start(
                &format!("00109901400{i}"),
                json!({"display_text": "x".repeat(200)}),
            )
            .await;
        last = s["id"].as_str().map(str::to_owned);
    }
    let id = last.expect("id");
    let events = reader.until_terminal(&id, 30).await;
    assert!(statuses(&events, &id).contains(&"signed".to_owned()));
}
