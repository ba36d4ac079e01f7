//! Connections that do not authenticate cannot be held: slow or idle ones are closed after the
//! header-read timeout, and past `server.max_connections` new ones wait.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app_overriding;

/// Reads until the server closes the connection; how long that took, if within `limit`.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn a_connection_that_sent_half_a_request_line_is_closed_after_the_header_read_timeout() {
    let app =
        spawn_app_overriding(500, vec![("server.header_read_timeout_s".into(), json!(1))]).await;
    let mut tcp = TcpStream::connect(app.addr).await.expect("connect");
    tcp.write_all(b"GET /heal").await.expect("write");
    let closed = closed_within(&mut tcp, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "still open after 5 s");
    // An idle keep-alive connection is closed the same way after its response.
    let mut idle = TcpStream::connect(app.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: kyso\r\n\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.expect("response");
    assert_eq!(&head, b"HTTP/1.1 200");
    let closed = closed_within(&mut idle, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "an idle connection still open after 5 s");
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_waits_until_one_closes() {
    let app = spawn_app_overriding(500, vec![("server.max_connections".into(), json!(2))]).await;
    let held = [
        TcpStream::connect(app.addr).await.expect("connect"),
        TcpStream::connect(app.addr).await.expect("connect"),
    ];
    let health = || async {
        reqwest::Client::new()
            .get(app.url("/healthz"))
            .timeout(Duration::from_millis(700))
            .send()
            .await
    };
    assert!(health().await.is_err(), "a third connection was served");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match health().await {
            Ok(r) => break assert_eq!(r.status(), 200),
            Err(e) => assert!(Instant::now() < deadline, "never served: {e}"),
        }
    }
}
