//! Operations endpoints.

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_readiness_metrics_and_openapi_answer() {
    let app = spawn_app().await;
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["database"], "ok");
    assert_eq!(
        ready["open_circuits"],
        serde_json::json!([]),
        "no provider circuit is open"
    );
    for path in ["/healthz", "/readyz"] {
        let r = app.http.get(app.url(path)).send().await.expect("send");
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers().contains_key("x-request-id"));
    }
    app.start("001099012345", serde_json::json!({})).await;
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("kyso_sessions_created_total"), "{metrics}");
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    for path in [
        "/v1/signatures",
        "/v1/signatures/{id}",
        "/v1/events",
        "/callbacks/{provider}",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi documents {path}");
    }
}

#[tokio::test]
async fn callbacks_for_unknown_sessions_and_garbage_change_nothing() {
    let app = spawn_app().await;
    let url = app.url("/callbacks/vnpt-smartca");
    let unknown = app
        .http
        .post(&url)
        .json(
            &serde_json::json!({"sp_id": "kyso-dev", "status_code": 200, "message": "ok",
            "transaction_id": format!("kyso-{}", kyso::domain::SessionId::generate()),
            "signed_files": []}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status(), 200);
    let garbage = app
        .http
        .post(&url)
        .body("<xml/>")
        .send()
        .await
        .expect("send");
    assert_eq!(garbage.status(), 400);
    let no_provider = app
        .http
        .post(app.url("/callbacks/nope"))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(no_provider.status(), 404);
}

#[tokio::test]
async fn the_demo_page_is_served_only_by_the_dev_stack() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/demo")).send().await.expect("send");
    assert_eq!(r.status(), 404, "not on a configured gateway");

    // The dev stack's own configuration, served for real.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = crate::helpers::root_path(dir.path(), &app.mock);
    let config = kyso::dev::dev_config(
        "127.0.0.1:0".parse().expect("addr"),
        app.mock.addr,
        dir.path(),
        &root,
        "k",
    )
    .expect("dev config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dev = kyso::startup::Application::with_listener(config, listener)
        .await
        .expect("dev gateway");
    let addr = dev.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(dev.run(async {
        let _ = stopped.await;
    }));
    let r = app
        .http
        .get(format!("http://{addr}/demo"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = r.text().await.expect("page");
    assert!(
        page.contains("/v1/signatures"),
        "the page starts signatures: {page}"
    );
    let _ = stop.send(());
    served.await.expect("join").expect("dev gateway ran");
}

#[tokio::test]
async fn pushes_that_fail_the_configured_authentication_are_refused_and_polling_still_finishes() {
    use aws_lc_rs::hmac;
    let auth = serde_json::json!({"kind": "hmac_sha256", "secret": "push-secret", "header": "x-kyso-signature"});
    let app = crate::helpers::spawn_app_overriding(
        300,
        vec![("providers.vnpt-smartca.callback_auth".into(), auth)],
    )
    .await;
    let url = app.url("/callbacks/vnpt-smartca");
    let body = serde_json::json!({"sp_id": "kyso-dev", "status_code": 200, "message": "ok",
        "transaction_id": "kyso-ses_01J00000000000000000000000", "signed_files": []})
    .to_string();
    let unsigned = app
        .http
        .post(&url)
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(unsigned.status(), 401);
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"push-secret");
    let tag = hex::encode(hmac::sign(&key, body.as_bytes()).as_ref());
    let signed = app
        .http
        .post(&url)
        .header("x-kyso-signature", tag)
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(signed.status(), 200);
    // The mock's unsigned webhooks are refused; the session still ends by polling.
    let s = app.start("001099012345", serde_json::json!({})).await;
    let done = app.finish(s["id"].as_str().expect("id"), 20).await;
    assert_eq!(done["status"], "signed", "{done}");
}

#[test]
fn the_shipped_configs_parse() {
    for file in ["config/production.example.toml", "config/local.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let config =
            kyso::config::Config::load(Some(&path)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!config.tenants.is_empty(), "{file} has a tenant");
        assert!(config.providers.contains_key("vnpt-smartca"), "{file}");
    }
}

#[tokio::test]
async fn readiness_lists_a_provider_whose_circuit_opened() {
    let app = crate::helpers::spawn_app_overriding(
        300,
        vec![(
            "providers.vnpt-smartca.circuit_failures".into(),
            serde_json::json!(1),
        )],
    )
    .await;
    let ready = || async {
        let v: Value = app
            .http
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        v
    };
    assert_eq!(ready().await["open_circuits"], serde_json::json!([]));
    // Every call to this signer's provider fails; after one failed call the circuit opens.
    let started = std::time::Instant::now();
    let s = app
        .start("001099012900", serde_json::json!({"timeout_s": 3}))
        .await;
    let mut last = Value::Null;
    for _ in 0..100 {
        last = ready().await;
        if last["open_circuits"] == serde_json::json!(["vnpt-smartca"]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        last["status"], "ready",
        "an open circuit does not make the instance unready"
    );
    assert_eq!(
        last["open_circuits"],
        serde_json::json!(["vnpt-smartca"]),
        "{last}"
    );
    // The open circuit (10 s) does not hold the session past its deadline.
    let done = app.finish(s["id"].as_str().expect("id"), 20).await;
    assert_eq!(done["error"]["code"], "provider_unavailable", "{done}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "ended {:?} after creation",
        started.elapsed()
    );
}
