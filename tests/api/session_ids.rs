//! Session ids cannot be guessed from one another: two portals creating sessions in the same
//! millisecond get ids whose random parts are unrelated, not one apart.

use serde_json::Value;

use crate::helpers::{digest_of, spawn_app, TestApp, KEY, OTHER_KEY};

async fn create(app: &TestApp, key: &str, signer: String) -> ulid::Ulid {
    let body = serde_json::json!({
        "provider": "vnpt-smartca", "signer": signer, "purpose": "login",
        "digest": digest_of(signer.as_bytes()),
    });
    let resp = app.post_signature(&body, key).await;
    assert_eq!(resp.status(), 201, "create for {signer}");
    let s: Value = resp.json().await.expect("json");
    let id = s["id"].as_str().expect("id");
    ulid::Ulid::from_string(id.strip_prefix("ses_").expect("ses_ prefix")).expect("a ULID")
}

#[tokio::test]
async fn sessions_created_in_the_same_millisecond_by_two_tenants_are_not_sequential() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    let mut same_ms = 0;
    for round in 0..10 {
        let creates = (0..16).map(|i| {
            let key = if i % 2 == 0 { KEY } else { OTHER_KEY };
            create(&app, key, format!("0010990{round}{i:04}"))
        });
        ids.extend(futures_util::future::join_all(creates).await);
        ids.sort();
        same_ms = 0;
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                if a.timestamp_ms() != b.timestamp_ms() {
                    continue;
                }
                same_ms += 1;
                let gap = a.random().abs_diff(b.random());
                assert!(gap > 1 << 40, "{a} and {b}: random parts {gap} apart");
            }
        }
        if same_ms >= 4 {
            break;
        }
    }
    assert!(
        same_ms > 0,
        "no two of {} ids shared a millisecond",
        ids.len()
    );
}
