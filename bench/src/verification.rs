//! Verification cost, on one thread: RSA-2048 PKCS#1 v1.5 signatures by a mock SmartCA
//! signer, judged first with [`kyso::verify::verify`] (every check from scratch: certificate
//! decoding, path to the anchor, key usage, identity, the RSA operation — what a signer's
//! first signature costs) and then with one [`Verifier`] (the certificate's proven path and
//! identity cached, so a known signer costs the RSA operation plus a lookup). Revocation is
//! off in both, so the network is not in the figure. The floor beside them: aws-lc-rs's
//! PKCS#1 v1.5 verification alone (what the verifier uses), with the key decoded beforehand.

use std::time::{Duration, Instant};

use aws_lc_rs::digest::{Digest as LcDigest, SHA256 as LC_SHA256};
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use chrono::Utc;
use der::{Decode, Encode};
use kyso::verify::{RevocationPolicy, Scheme, SignatureCheck, TrustAnchors, Verifier};
use mock_carriers::pki::Provider;
use mock_carriers::{MockCarriers, MockConfig};
use sha2::{Digest, Sha256};

use crate::Ctx;

pub struct Cost {
    pub first_per_s: f64,
    pub cached_per_s: f64,
    /// The RSA operation alone (aws-lc-rs, key already decoded).
    pub rsa_per_s: f64,
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
    let cert = x509_cert::Certificate::from_der(&cred.cert_der)?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
    let key = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki)
        .map_err(|e| anyhow::anyhow!("signer key: {e}"))?;
    let lc_digests: Vec<LcDigest> = signed
        .iter()
        .map(|(d, _)| LcDigest::import_less_safe(d, &LC_SHA256))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("digest"))?;
    let verifier = Verifier::offline(Default::default());
    // The three take turns in short rounds, so the machine's drift (other tenants' load moves
    // these figures by ±30 % from one second to the next) falls on all three alike.
    let mut first = Timed::default();
    let mut rsa = Timed::default();
    let mut cached = Timed::default();
    let start = Instant::now();
    while start.elapsed() < secs {
        first.run(8, |i| {
            kyso::verify::verify(&check(i), &anchors)
                .map(drop)
                .map_err(anyhow::Error::from)
        })?;
        rsa.run(32, |i| {
            let signature = &signed[i % signed.len()].1;
            key.verify_digest_sig(&lc_digests[i % signed.len()], signature)
                .map_err(|_| anyhow::anyhow!("RSA verification failed"))
        })?;
        cached.run(32, |i| {
            handle
                .block_on(verifier.verify(&check(i), &anchors, RevocationPolicy::Off))
                .map(drop)
                .map_err(|r| anyhow::anyhow!("{}", r.code()))
        })?;
    }
    let (first_per_s, rsa_per_s, cached_per_s) = (first.rate(), rsa.rate(), cached.rate());
    Ok(Cost {
        first_per_s,
        cached_per_s,
        rsa_per_s,
    })
}

/// Operations of one kind and the time they took, over several rounds.
#[derive(Default)]
struct Timed {
    done: usize,
    took: Duration,
}

impl Timed {
    fn run(
        &mut self,
        n: usize,
        mut op: impl FnMut(usize) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        for _ in 0..n {
            op(self.done)?;
            self.done += 1;
        }
        self.took += start.elapsed();
        Ok(())
    }

    fn rate(&self) -> f64 {
        self.done as f64 / self.took.as_secs_f64().max(1e-9)
    }
}
