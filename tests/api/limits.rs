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

/// The status and JSON body of a refused WebSocket handshake.
async fn refused_upgrade(app: &TestApp, key: &str) -> (u16, Value) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/v1/events", app.addr)
        .into_client_request()
        .expect("ws request");
    let bearer = format!("Bearer {key}").parse().expect("header");
    req.headers_mut().insert("authorization", bearer);
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp.body().clone().unwrap_or_default();
            (
                resp.status().as_u16(),
                serde_json::from_slice(&body).unwrap_or(Value::Null),
            )
        }
        Ok(_) => panic!("the socket was opened"),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

#[tokio::test]
async fn a_tenant_at_its_socket_limit_is_answered_429_before_the_upgrade() {
    let app = spawn_app_overriding(
        500,
        vec![("events.max_sockets_per_tenant".into(), json!(3))],
    )
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.ws("", Some(KEY)).await);
    }
    let (status, body) = refused_upgrade(&app, KEY).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_sockets", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("3 event sockets"),
        "{body}"
    );
    // Another tenant is not affected, and a closed socket frees its place.
    let _theirs = app.ws("", Some(OTHER_KEY)).await;
    let mut first = open.remove(0);
    first.stream.close(None).await.expect("close");
    drop(first);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{}/v1/events", app.addr)
            .into_client_request()
            .expect("ws request");
        req.headers_mut()
            .insert("authorization", format!("Bearer {KEY}").parse().expect("h"));
        if tokio_tungstenite::connect_async(req).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_frame_larger_than_an_ack_is_refused_from_its_header() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let mut tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let handshake = format!(
        "GET /v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {KEY}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        app.addr
    );
    tcp.write_all(handshake.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.expect("read head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // A masked binary frame announcing 1 MiB, of which only the first KiB is sent.
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(1u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[0u8; 1024]);
    tcp.write_all(&frame).await.expect("write frame");
    // The server closes at once (a close frame, then the end of the stream); until then it
    // only pings (every second in the test config).
    let closed = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            // Server frames are unmasked; pings and closes carry under 126 bytes.
            while got.len() >= 2 && got.len() >= 2 + usize::from(got[1] & 0x7f) {
                if got[0] & 0x0f == 0x8 {
                    return;
                }
                got.drain(..2 + usize::from(got[1] & 0x7f));
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the connection stayed open waiting for the rest of the frame"
    );
}
