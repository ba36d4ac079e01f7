//! What one tenant (or one anonymous client) can hold: tickets, event sockets, connections.
//! Each is bounded so that exhausting it hurts only the one who does.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_overriding, TestApp, KEY, OTHER_KEY};

async fn ticket(app: &TestApp, key: &str) -> (u16, Value) {
    let r = app
        .http
        .post(app.url("/v1/events/tickets"))
        .bearer_auth(key)
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test]
async fn ticket_requests_count_against_the_tenants_rate_like_every_call() {
    let app = spawn_app().await;
    // other-portal: 50 requests/s, a burst of 100.
    let mut answered = Vec::new();
    for _ in 0..300 {
        answered.push(ticket(&app, OTHER_KEY).await);
    }
    let ok = answered.iter().filter(|(s, _)| *s == 200).count();
    let limited: Vec<_> = answered.iter().filter(|(s, _)| *s == 429).collect();
    assert!((100..200).contains(&ok), "{ok} tickets answered 200");
    assert_eq!(limited.len() + ok, 300);
    assert_eq!(
        limited[0].1["error"]["code"], "rate_limited",
        "{:?}",
        limited[0]
    );
}

#[tokio::test]
async fn a_tenant_issuing_tickets_in_a_loop_is_refused_and_cannot_evict_anothers() {
    let app = spawn_app_overriding(
        500,
        vec![("events.max_tickets_per_tenant".into(), json!(5))],
    )
    .await;
    let (status, theirs) = ticket(&app, OTHER_KEY).await;
    assert_eq!(status, 200);
    let mut issued = 0;
    let refusal = loop {
        let (status, body) = ticket(&app, KEY).await;
        if status != 200 {
            break (status, body);
        }
        issued += 1;
        assert!(issued <= 5, "more tickets than the limit");
    };
    assert_eq!(issued, 5);
    assert_eq!(refusal.0, 429);
    assert_eq!(
        refusal.1["error"]["code"], "too_many_tickets",
        "{}",
        refusal.1
    );
    assert!(
        refusal.1["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains('5'),
        "{}",
        refusal.1
    );
    // The other tenant's ticket still opens its socket.
    let t = theirs["ticket"].as_str().expect("ticket");
    let mut ws = app.ws(&format!("?ticket={t}"), None).await;
    assert!(ws.stream.close(None).await.is_ok());
}
