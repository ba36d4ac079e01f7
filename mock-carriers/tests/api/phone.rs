//! The virtual phone page and health check.

use crate::helpers::*;

#[tokio::test]
async fn the_phone_lists_pending_requests_with_their_text_escaped() {
    let t = spawn_mock_with(|c| c.approve_delay_ms = 60_000).await;
    let mut body = sign_body("001099012345", "tx-<phone>", &digest_of("a"));
    body["transaction_desc"] = serde_json::json!("Đăng ký <script>alert(1)</script> - mã 4821");
    t.post_ok("/sca/sp769/v1/signatures/sign", &body).await;
    let page = t
        .http
        .get(format!("{}/phone/001099012345", t.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
    assert!(page
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));
    let html = page.text().await.expect("html");
    assert!(html.contains("Đăng ký &lt;script&gt;alert(1)&lt;/script&gt; - mã 4821"));
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("tx-&lt;phone&gt;"));
    assert!(html.contains("register-4821"));
    assert!(html.contains("Approve") && html.contains("Reject"));

    let other = t
        .http
        .get(format!("{}/phone/0101234567?fragment=1", t.base))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("html");
    assert!(other.contains("No pending requests"));
}

#[tokio::test]
async fn healthz_answers_ok() {
    let t = spawn_mock().await;
    let resp = t
        .http
        .get(format!("{}/healthz", t.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
}
