//! The floor the gateway is compared with, on the same machine and the same load generator:
//! a bare axum `GET /` (what this box's HTTP stack does with no work behind it), and the mock
//! provider alone driven the way the gateway drives it — get_certificate, sign, then status
//! until signed — so "sessions per second" means the same thing on both sides.

use axum::serve::ListenerExt as _;
use mock_carriers::no_delay;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::mock::Mock;
use crate::Ctx;

/// Runs `body` from `concurrency` loops for `secs`; returns completed iterations per second.
async fn closed_loop<F, Fut>(concurrency: usize, secs: Duration, body: F) -> anyhow::Result<f64>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let body = Arc::new(body);
    let done = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + secs;
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (body, done, next) = (body.clone(), done.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < until {
                body(next.fetch_add(1, Ordering::Relaxed)).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Requests per second a bare axum route answers.
pub async fn bare_axum(ctx: &Ctx) -> anyhow::Result<f64> {
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    ctx.mock_rt.spawn(async move {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0").await else {
            return;
        };
        let _ = addr_tx.send(listener.local_addr());
        let app = Router::new().route("/", get(|| async { "ok" }));
        let _ = axum::serve(listener.tap_io(no_delay), app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    let addr = addr_rx.await.context("bare axum did not start")??;
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/");
    let rate = closed_loop(ctx.opts.concurrency, ctx.opts.limit_secs(), move |_| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.get(url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            Ok(())
        }
    })
    .await;
    let _ = stop.send(());
    rate
}

/// Sessions per second the mock provider completes on its own (three calls each).
pub async fn mock_alone(ctx: &Ctx) -> anyhow::Result<f64> {
    let mock = Mock::start(&ctx.mock_rt, &ctx.state, 0).await?;
    let http = reqwest::Client::new();
    let base = mock.smartca_url();
    let signers = Arc::new(ctx.approvers.clone());
    let run = ulid::Ulid::new().to_string();
    let session = move |i: u64| {
        let (http, base, signers, run) = (http.clone(), base.clone(), signers.clone(), run.clone());
        async move {
            let signer = &signers[i as usize % signers.len()];
            let tx = format!("bench-{run}-{i}");
            let creds = |extra: Value| {
                let mut v = json!({"sp_id": "kyso-dev", "sp_password": "kyso-dev-secret"});
                if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                    o.extend(e.clone());
                }
                v
            };
            let post = |path: String, body: Value| {
                let http = http.clone();
                async move {
                    let v: Value = http.post(path).json(&body).send().await?.json().await?;
                    anyhow::ensure!(v["status_code"] == 200, "mock answered {v}");
                    anyhow::Ok(v)
                }
            };
            let certs = post(
                format!("{base}/v1/credentials/get_certificate"),
                creds(json!({"user_id": signer, "transaction_id": format!("{tx}-cert")})),
            )
            .await?;
            let serial = certs["data"]["user_certificates"][0]["serial_number"].clone();
            let digest = hex_digest(&tx);
            post(
                format!("{base}/v1/signatures/sign"),
                creds(json!({
                    "user_id": signer, "transaction_id": tx, "transaction_desc": "bench",
                    "serial_number": serial,
                    "sign_files": [{"data_to_be_signed": digest, "doc_id": "login-0000",
                        "file_type": "json", "sign_type": "hash"}],
                })),
            )
            .await?;
            loop {
                let v = post(format!("{base}/v1/signatures/sign/{tx}/status"), json!({})).await?;
                if !v["data"]["signatures"].is_null() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    closed_loop(ctx.opts.concurrency, ctx.opts.limit_secs(), session).await
}

fn hex_digest(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
