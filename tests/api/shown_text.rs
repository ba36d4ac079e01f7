//! Free text a phone or a portal shows cannot hide or turn around what kyso adds to it: format
//! characters (bidi overrides, zero-width characters, tags…), line separators and controls are
//! refused with a 400 naming the field, and nothing is stored or sent.

use serde_json::{json, Value};

use crate::helpers::{digest_of, spawn_app, KEY};

fn with(field: &str, text: &str) -> Value {
    let mut body = json!({
        "provider": "vnpt-smartca", "signer": "001099017001", "purpose": "login",
        "digest": digest_of(b"shown"),
    });
    body[field] = Value::String(text.to_owned());
    body
}

#[tokio::test]
async fn a_display_text_that_would_reverse_the_verification_code_is_refused() {
    let app = spawn_app().await;
    let resp = app
        .post_signature(&with("display_text", "Dang nhap DVC\u{202e}"), KEY)
        .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    let message = v["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("display_text:") && message.contains("U+202E"),
        "{message}"
    );
    // Nothing was stored: the list is empty and the signer is not busy.
    let list: Value = app
        .http
        .get(app.url("/v1/signatures"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"], json!([]), "{list}");
}

#[tokio::test]
async fn every_shown_field_refuses_format_characters_and_line_separators() {
    let app = spawn_app().await;
    let hidden = [
        "\u{200b}",
        "\u{200e}",
        "\u{200f}",
        "\u{202a}",
        "\u{202d}",
        "\u{2066}",
        "\u{2069}",
        "\u{2060}",
        "\u{feff}",
        "\u{ad}",
        "\u{61c}",
        "\u{180e}",
        "\u{fff9}",
        "\u{e0001}",
        "\u{e0041}",
        "\u{2028}",
        "\u{2029}",
        "\u{1b}",
        "\u{85}",
    ];
    for field in ["display_text", "reference", "document_name"] {
        for h in hidden {
            let text = format!("Hợp đồng{h}số 7");
            let resp = app.post_signature(&with(field, &text), KEY).await;
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.expect("json");
            let message = v["error"]["message"].as_str().unwrap_or_default();
            assert_eq!(status, 400, "{field} with {h:?}: {v}");
            assert!(message.starts_with(&format!("{field}:")), "{message}");
        }
    }
    // Vietnamese text with its diacritics, and other scripts, still pass.
    let mut body = with("display_text", "Đăng nhập Dịch vụ công 合同 عقد");
    body["reference"] = json!("hồ-sơ/2026#7");
    body["document_name"] = json!("Hợp đồng (bản 2).pdf");
    let resp = app.post_signature(&body, KEY).await;
    assert_eq!(resp.status(), 201);
    let s: Value = resp.json().await.expect("json");
    assert_eq!(s["reference"], "hồ-sơ/2026#7");
}
