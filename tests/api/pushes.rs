//! Provider pushes under a flood: unknown, finished and repeated pushes cost no write (they are
//! answered while another connection holds SQLite's write lock), and each provider's pushes
//! are bounded by its `callback_rate_per_s`.

use std::sync::Arc;
use std::time::Duration;

use kyso::domain::{SessionId, Status};
use kyso::engine::registry::Registry;
use kyso::engine::{Engine, EngineConfig, Pushed};
use kyso::events::Hub;
use kyso::store::StoreOptions;
use serde_json::{json, Value};
use sqlx::Connection as _;

use crate::helpers::{new_session, smartca_session, spawn_app_overriding, spawn_app_with, TestApp};

/// Another connection's write transaction on the gateway's SQLite file: while it is open,
/// anything the gateway writes waits.
async fn hold_writes(db: &std::path::Path) -> sqlx::SqliteConnection {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open db");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .expect("take the write lock");
    conn
}

async fn smartca_push(app: &TestApp, transaction_id: &str) -> reqwest::Result<reqwest::Response> {
    app.http
        .post(app.url("/callbacks/vnpt-smartca"))
        .timeout(Duration::from_millis(1500))
        .json(
            &json!({"sp_id": "kyso-dev", "status_code": 200, "message": "ok",
            "transaction_id": transaction_id, "signed_files": []}),
        )
        .send()
        .await
}

#[tokio::test]
async fn pushes_for_unknown_and_finished_sessions_are_answered_without_a_write() {
    let app = spawn_app_with(100).await;
    let s = app.start("001099031001", json!({})).await;
    let id = s["id"].as_str().expect("id");
    assert_eq!(app.finish(id, 20).await["status"], "signed");
    let mut lock = hold_writes(&app.dir.path().join("kyso.db")).await;
    for tx in [
        format!("kyso-{id}"),
        format!("kyso-{}", SessionId::generate()),
    ] {
        let answered = smartca_push(&app, &tx).await;
        assert!(
            answered.as_ref().is_ok_and(|r| r.status() == 200),
            "{tx}: {answered:?}"
        );
    }
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("rollback");
}

#[tokio::test]
async fn a_push_for_a_session_already_due_or_already_marked_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("kyso.db");
    let url = format!("sqlite://{}", db.display());
    let store = kyso::store::open(&url, &StoreOptions::default())
        .await
        .expect("store");
    // No provider entries: no push can claim, so each one only marks its session (a write)
    // or, now, finds it already due or marked (none).
    let engine = Engine::new(
        Arc::clone(&store),
        Hub::new(16),
        Arc::new(Registry::default()),
        EngineConfig {
            tick: Duration::from_millis(100),
            lease: Duration::from_secs(15),
        },
    );
    let s = smartca_session("dvc-portal", "001099031002", "due");
    store
        .create(&new_session(&s, None, 1, false))
        .await
        .expect("create");
    let push = |id: SessionId| {
        let engine = Arc::clone(&engine);
        async move {
            tokio::time::timeout(Duration::from_secs(1), engine.push(&id, "vnpt-smartca"))
                .await
                .map(|pushed| pushed.expect("push"))
        }
    };

    let mut lock = hold_writes(&db).await;
    assert_eq!(push(s.id.clone()).await, Ok(Pushed::Coalesced), "due now");
    assert_eq!(
        push(SessionId::generate()).await,
        Ok(Pushed::Missing),
        "unknown"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("rollback");

    // Waiting for a later check, the first push marks it (a write); the next ones add nothing.
    let later = chrono::Utc::now() + chrono::Duration::seconds(60);
    // SQLite: one instance, so the lease's epoch is not compared.
    let held = kyso::store::Held {
        id: s.id.clone(),
        epoch: 0,
    };
    store
        .reschedule(&held, Status::Pending, later, None)
        .await
        .expect("reschedule");
    assert_eq!(push(s.id.clone()).await, Ok(Pushed::Woken));
    let mut lock = hold_writes(&db).await;
    assert_eq!(
        push(s.id.clone()).await,
        Ok(Pushed::Coalesced),
        "already marked"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("rollback");
}

#[tokio::test]
async fn pushes_past_a_providers_callback_rate_do_nothing_and_are_counted() {
    let app = spawn_app_overriding(
        500,
        vec![
            (
                "providers.vnpt-smartca.callback_rate_per_s".into(),
                json!(5),
            ),
            ("providers.vnpt-sim.callback_rate_per_s".into(), json!(1)),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let tx = format!("kyso-{}", SessionId::generate());
        let r = smartca_push(&app, &tx).await.expect("answered");
        let status = r.status().as_u16();
        if status == 429 {
            let body: Value = r.json().await.expect("json");
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        }
        statuses.push(status);
    }
    let acted = statuses.iter().filter(|s| **s == 200).count();
    assert!((5..=8).contains(&acted), "{statuses:?}");
    assert_eq!(acted + statuses.iter().filter(|s| **s == 429).count(), 20);
    // An MSSP expects its receipt whatever happens: past the rate it still gets one.
    let notification = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
        xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#"><env:Body><MSS_Notification>
        <mss:MSS_StatusResp MajorVersion="1" MinorVersion="1" MSSP_TransID="t1">
        <mss:AP_Info AP_ID="kyso-dev-ap" AP_PWD="" AP_TransID="K01J00000000000000000000000" Instant="2026-01-01T00:00:00Z"/>
        <mss:MSSP_Info><mss:MSSP_ID><mss:URI>http://mssp</mss:URI></mss:MSSP_ID></mss:MSSP_Info>
        <mss:MobileUser><mss:MSISDN>84912349999</mss:MSISDN></mss:MobileUser>
        <mss:MSS_Signature><mss:Base64Signature>AQIDBA==</mss:Base64Signature></mss:MSS_Signature>
        <mss:Status><mss:StatusCode Value="500"/><mss:StatusMessage>SIGNATURE</mss:StatusMessage></mss:Status>
        </mss:MSS_StatusResp></MSS_Notification></env:Body></env:Envelope>"#;
    for _ in 0..3 {
        let r = app
            .http
            .post(app.url("/callbacks/vnpt-sim"))
            .header("content-type", "application/soap+xml; charset=utf-8")
            .body(notification)
            .send()
            .await
            .expect("notify");
        assert_eq!(r.status(), 200);
        assert!(!r.text().await.unwrap_or_default().is_empty(), "a receipt");
    }
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for provider in ["vnpt-smartca", "vnpt-sim"] {
        let line =
            format!(r#"kyso_callbacks_total{{provider="{provider}",result="rate_limited"}}"#);
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}
