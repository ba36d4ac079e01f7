//! Verification cost, on one thread: RSA-2048 PKCS#1 v1.5 signatures by a mock SmartCA
//! signer, judged first with [`kyso::verify::verify`] (every check from scratch: certificate
//! decoding, path to the anchor, key usage, identity, the RSA operation — what a signer's
//! first signature costs) and then with one [`Verifier`] (the certificate's proven path and
//! identity cached, so a known signer costs the RSA operation plus a lookup). Revocation is
//! off in both, so the network is not in the figure.

use std::time::{Duration, Instant};

use chrono::Utc;
use kyso::verify::{RevocationPolicy, Scheme, SignatureCheck, TrustAnchors, Verifier};
use mock_carriers::pki::Provider;
use mock_carriers::{MockCarriers, MockConfig};
use sha2::{Digest, Sha256};

use crate::Ctx;

pub struct Cost {
    pub first_per_s: f64,
    pub cached_per_s: f64,
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Cost> {
    let state = ctx.state.join("mock-carriers");
    let signer = ctx.approvers[0].clone();
    let secs = ctx.opts.limit_secs();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || measure(&state, &signer, secs, &handle)).await?
}

fn measure(
    state: &std::path::Path,
    signer: &str,
    secs: Duration,
    handle: &tokio::runtime::Handle,
) -> anyhow::Result<Cost> {
    let mock = MockCarriers::new(MockConfig {
        state_dir: state.to_path_buf(),
        ..MockConfig::default()
    })?;
    let cred = mock.pki().signer(Provider::SmartCa, signer)?;
    let (ca, root) = mock.pki().chain(Provider::SmartCa);
    let anchors = TrustAnchors::from_der(vec![root])?;
    let chain = vec![ca];
    let signed: Vec<([u8; 32], Vec<u8>)> = (0..256u32)
        .map(|i| {
            let digest: [u8; 32] = Sha256::digest(i.to_be_bytes()).into();
            cred.sign_digest(&digest).map(|s| (digest, s))
        })
        .collect::<Result<_, _>>()?;
    let at = Utc::now();
    let check = |i: usize| {
        let (digest, signature) = &signed[i % signed.len()];
        SignatureCheck {
            digest,
            signature,
            scheme: Scheme::Pkcs1v15,
            certificate: &cred.cert_der,
            chain: &chain,
            at,
        }
    };
    let first_per_s = per_second(secs, |i| {
        kyso::verify::verify(&check(i), &anchors)
            .map(drop)
            .map_err(anyhow::Error::from)
    })?;
    let verifier = Verifier::offline(Default::default());
    let cached_per_s = per_second(secs, |i| {
        handle
            .block_on(verifier.verify(&check(i), &anchors, RevocationPolicy::Off))
            .map(drop)
            .map_err(|r| anyhow::anyhow!("{}", r.code()))
    })?;
    Ok(Cost {
        first_per_s,
        cached_per_s,
    })
}

fn per_second(
    secs: Duration,
    mut op: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < secs {
        op(i)?;
        i += 1;
    }
    Ok(i as f64 / start.elapsed().as_secs_f64())
}
