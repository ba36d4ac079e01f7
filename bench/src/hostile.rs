//! Hostile input (SPEC §9: no request holds a core for more than 50 ms, and CPU-heavy
//! verification never runs where `/healthz` and other tenants are answered). An attacker with
//! an API key sends `POST /v1/verifications` with chains made of fresh self-issued "CA"
//! certificates under one name (`mock_carriers::pki::hostile`), raw and inside a CMS: first one
//! at a time, to time each request alone; then `ATTACKERS` in a loop while a second tenant's
//! creates and `/healthz` are timed, against the same timings with nobody attacking.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::prelude::{Engine as _, BASE64_STANDARD};
use chrono::Utc;
use kyso::verify::{cms_build, Scheme};
use mock_carriers::pki::hostile::{self_issued_chain, HostileSignature, Shape};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::gateway::{Gateway, Spec, API_KEY, BYSTANDER_KEY};
use crate::mock::Mock;
use crate::report::{thousands, Row};
use crate::stats::{ms, Spread};
use crate::Ctx;

/// Concurrent attacking connections: more than the machine has cores, so the verification
/// pool is always full.
const ATTACKERS: usize = 16;
/// Each hostile request alone, this many times per input.
const ALONE: usize = 20;

pub struct Hostile {
    /// Each input's request time when sent alone.
    pub alone: Vec<(String, Spread)>,
    /// Hostile requests answered per second during the attack, and how many were refused
    /// with anything but `untrusted_certificate`.
    pub attack_rate: f64,
    pub wrong_answers: u64,
    pub health_quiet: Spread,
    pub health_attacked: Spread,
    pub create_quiet: Spread,
    pub create_attacked: Spread,
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Hostile> {
    let mock = Mock::start(&ctx.mock_rt, &ctx.state, 0).await?;
    let spec = Spec {
        db_url: format!("sqlite://{}", ctx.dir.join("hostile.db").display()),
        mock: mock.addr,
        root: mock.root_path.clone(),
        instances: 1,
        provider_rate: 1_000_000,
        max_in_flight: 256,
        poll_first_ms: 5_000,
        poll_interval_ms: 3_000,
    };
    let gw = Gateway::start(&spec, &ctx.dir, "hostile")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let inputs = tokio::task::spawn_blocking(inputs).await??;

    let mut alone = Vec::new();
    for (name, body) in &inputs {
        let mut took = Vec::with_capacity(ALONE);
        for _ in 0..ALONE {
            let start = Instant::now();
            expect_untrusted(&http, &gw, body).await?;
            took.push(start.elapsed());
        }
        let spread = Spread::of(took).ok_or_else(|| anyhow::anyhow!("no samples"))?;
        alone.push((name.clone(), spread));
    }

    let window = ctx.opts.limit_secs();
    let signer = ctx.approvers[0].clone();
    let (health_quiet, create_quiet) = bystander(&http, &gw, &signer, window).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let bodies = Arc::new(inputs.into_iter().map(|(_, b)| b).collect::<Vec<_>>());
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|i| {
            let (http, url) = (http.clone(), gw.url("/v1/verifications"));
            let (stop, answered, wrong, bodies) = (
                stop.clone(),
                answered.clone(),
                wrong.clone(),
                bodies.clone(),
            );
            tokio::spawn(async move {
                let mut n = i;
                while !stop.load(Ordering::Relaxed) {
                    let body = &bodies[n % bodies.len()];
                    n += 1;
                    let ok = matches!(post(&http, &url, API_KEY, body).await,
                        Ok((422, answer)) if answer["error"]["code"] == "untrusted_certificate");
                    answered.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = (Instant::now(), answered.load(Ordering::Relaxed));
    let measured = bystander(&http, &gw, &signer, window).await;
    let attack_rate =
        (answered.load(Ordering::Relaxed) - before.1) as f64 / before.0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        let _ = a.await;
    }
    gw.stop().await;
    drop(mock);
    let (health_attacked, create_attacked) = measured?;
    Ok(Hostile {
        alone,
        attack_rate,
        wrong_answers: wrong.load(Ordering::Relaxed),
        health_quiet,
        health_attacked,
        create_quiet,
        create_attacked,
    })
}

/// The attacker's requests, each with new keys and a new CA name.
fn inputs() -> anyhow::Result<Vec<(String, Value)>> {
    let raw = |shape, n| -> anyhow::Result<Value> {
        let h = self_issued_chain(n, shape, b"hostile")?;
        Ok(json!({
            "digest": BASE64_STANDARD.encode(Sha256::digest(&h.data)),
            "signature": BASE64_STANDARD.encode(&h.signature),
            "certificate": BASE64_STANDARD.encode(&h.certificate),
            "chain": h.chain.iter().map(|c| BASE64_STANDARD.encode(c)).collect::<Vec<_>>(),
            "format": "pkcs1",
        }))
    };
    let cms = |shape, n| -> anyhow::Result<Value> {
        let h = self_issued_chain(n, shape, b"hostile")?;
        Ok(json!({
            "digest": BASE64_STANDARD.encode(Sha256::digest(&h.data)),
            "signature": BASE64_STANDARD.encode(signed_data(&h)?),
            "format": "cms",
        }))
    };
    Ok(vec![
        ("8 CAs, one key (raw)".into(), raw(Shape::SharedKey, 8)?),
        (
            "8 CAs, two keys cross-signed (raw)".into(),
            raw(Shape::TwoKeysCrossSigned, 8)?,
        ),
        ("15 CAs, one key (CMS)".into(), cms(Shape::SharedKey, 15)?),
        (
            "15 CAs, a key each (CMS)".into(),
            cms(Shape::DistinctKeys, 15)?,
        ),
    ])
}

/// A detached CMS over the hostile data carrying the whole hostile chain.
fn signed_data(h: &HostileSignature) -> anyhow::Result<Vec<u8>> {
    let digest: [u8; 32] = Sha256::digest(&h.data).into();
    let attrs = cms_build::signed_attributes(&digest, Utc::now(), &h.certificate)?;
    let signature = h.sign(&attrs)?;
    Ok(cms_build::assemble(
        &attrs,
        &signature,
        Scheme::Pkcs1v15,
        &h.certificate,
        &h.chain,
    )?)
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let resp = http.post(url).bearer_auth(key).json(body).send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

async fn expect_untrusted(
    http: &reqwest::Client,
    gw: &Gateway,
    body: &Value,
) -> anyhow::Result<()> {
    let (status, answer) = post(http, &gw.url("/v1/verifications"), API_KEY, body).await?;
    if status != 422 || answer["error"]["code"] != "untrusted_certificate" {
        anyhow::bail!("a hostile chain was answered {status}: {answer}");
    }
    Ok(())
}

/// `/healthz` and a second tenant's creates, one after another for `window`: their times.
async fn bystander(
    http: &reqwest::Client,
    gw: &Gateway,
    signer: &str,
    window: Duration,
) -> anyhow::Result<(Spread, Spread)> {
    let (mut health, mut create) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut nonce = 0u64;
    while start.elapsed() < window {
        let t = Instant::now();
        let resp = http.get(gw.url("/healthz")).send().await?;
        anyhow::ensure!(resp.status() == 200, "/healthz answered {}", resp.status());
        health.push(t.elapsed());
        nonce += 1;
        let body = json!({
            "provider": "vnpt-smartca",
            "signer": signer,
            "purpose": "login",
            "digest": BASE64_STANDARD.encode(Sha256::digest(format!("bystander/{nonce}"))),
            "timeout_s": 3600,
        });
        let t = Instant::now();
        let (status, answer) = post(http, &gw.url("/v1/signatures"), BYSTANDER_KEY, &body).await?;
        anyhow::ensure!(
            status == 201,
            "the bystander's create answered {status}: {answer}"
        );
        create.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let spread = |v| Spread::of(v).ok_or_else(|| anyhow::anyhow!("no samples"));
    Ok((spread(health)?, spread(create)?))
}

/// SPEC §9's limit on any one request's hold on a core.
const HOLD_BUDGET: Duration = Duration::from_millis(50);

/// The table rows: each input alone against the 50 ms budget (its request time is an upper
/// bound on the core time it held), then what the bystander saw, quiet and attacked.
pub fn rows(h: &Hostile) -> Vec<Row> {
    let mut rows: Vec<Row> = h
        .alone
        .iter()
        .map(|(name, s)| {
            Row::info(
                "hostile",
                format!("alone: {name}"),
                format!("{} p50", ms(s.p50)),
            )
            .value(s.p50.as_secs_f64())
            .budget("each ≤ 50 ms", s.max <= HOLD_BUDGET)
            .detail(format!(
                "p99 {}, max {} of {} requests",
                ms(s.p99),
                ms(s.max),
                s.n
            ))
        })
        .collect();
    let during = format!(
        "{ATTACKERS} attackers, {}/s hostile requests answered, {} not `untrusted_certificate`",
        thousands(h.attack_rate),
        h.wrong_answers
    );
    let pair = |name: &str, quiet: &Spread, attacked: &Spread| {
        Row::info(
            "hostile",
            format!("{name}, under attack"),
            format!("p50 {} / p99 {}", ms(attacked.p50), ms(attacked.p99)),
        )
        .value(attacked.p99.as_secs_f64())
        .budget(
            "p99 ≤ 50 ms",
            attacked.p99 <= HOLD_BUDGET && h.wrong_answers == 0,
        )
        .detail(format!(
            "quiet p50 {} / p99 {}; {during}",
            ms(quiet.p50),
            ms(quiet.p99)
        ))
    };
    rows.push(pair("/healthz", &h.health_quiet, &h.health_attacked));
    rows.push(pair(
        "another tenant's create",
        &h.create_quiet,
        &h.create_attacked,
    ));
    rows
}
