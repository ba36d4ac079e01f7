//! `kyso verify`: the verifier on the command line, for operators and QA asking "why was this
//! signature refused?". It judges a raw signature or a CMS exactly as the gateway does and
//! prints the same `verification` and `identity` blocks, plus the verdict code. It never
//! touches the network: revocation comes from the `--crl` and `--ocsp-response` files, and
//! without them the answer says `not_checked`.

use std::path::{Path, PathBuf};

use base64::prelude::{Engine as _, BASE64_STANDARD};
use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, ValueEnum};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::verify::{
    certificates_from_pem_or_der, signer_matches, CmsCheck, Evidence, Refusal, RevocationPolicy,
    Scheme, SignatureCheck, TrustAnchors, Verdict, Verifier,
};

/// Exit status when the verdict is anything but valid.
pub const EXIT_REFUSED: i32 = 1;
/// Exit status when the inputs cannot be read (clap uses the same for bad arguments).
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemeArg {
    Pkcs1v15,
    /// RSASSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt.
    Pss,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["sig", "cms"])))]
pub struct VerifyArgs {
    /// Trust anchor (PEM, may hold several, or DER); repeatable.
    #[arg(long = "anchor", required = true, value_name = "ROOT.pem")]
    pub anchors: Vec<PathBuf>,
    /// Intermediate CA certificate (PEM or DER); repeatable.
    #[arg(long = "intermediate", value_name = "CA.pem")]
    pub intermediates: Vec<PathBuf>,
    /// The signer's certificate (PEM, DER or base64 DER). Optional with --cms when the CMS
    /// carries it.
    #[arg(long, value_name = "CERT")]
    pub cert: Option<PathBuf>,
    /// Raw RSA signature (binary or base64).
    #[arg(long, value_name = "RAW", requires_all = ["digest", "cert"])]
    pub sig: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "pkcs1v15")]
    pub scheme: SchemeArg,
    /// The SHA-256 digest that was signed: 32 raw bytes, 64 hex characters or base64.
    #[arg(long, value_name = "FILE")]
    pub digest: Option<PathBuf>,
    /// CMS SignedData (DER or base64 DER).
    #[arg(long, value_name = "FILE", requires = "content", conflicts_with_all = ["sig", "digest"])]
    pub cms: Option<PathBuf>,
    /// The content the CMS signs (for a detached CMS).
    #[arg(long, value_name = "FILE")]
    pub content: Option<PathBuf>,
    /// A CRL (DER) from the certificate's issuer; repeatable.
    #[arg(long = "crl", value_name = "FILE")]
    pub crls: Vec<PathBuf>,
    /// An OCSP response (DER) about the certificate; repeatable.
    #[arg(long = "ocsp-response", value_name = "FILE")]
    pub ocsp_responses: Vec<PathBuf>,
    /// Signing time (RFC 3339); validity and revocation are judged there. Default: now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<DateTime<Utc>>,
    /// Also check that the certificate belongs to this signer (user id or MSISDN).
    #[arg(long)]
    pub signer: Option<String>,
}

/// Runs the command and returns the process exit status; the answer goes to stdout, the
/// verdict line to stderr.
pub async fn run(args: VerifyArgs) -> i32 {
    match judge(&args).await {
        Err(why) => {
            eprintln!("kyso verify: {why}");
            EXIT_USAGE
        }
        Ok(Ok(verdict)) => {
            print(&json!({
                "verdict": "valid",
                "verification": verdict.verification,
                "identity": verdict.identity,
            }));
            eprintln!("verdict: valid");
            0
        }
        Ok(Err(refusal)) => {
            print(&json!({
                "verdict": refusal.code(),
                "message": refusal.error.to_string(),
                "verification": refusal.verification,
                "identity": refusal.identity,
            }));
            eprintln!("verdict: {} ({})", refusal.code(), refusal.error);
            EXIT_REFUSED
        }
    }
}

fn print(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Reads every input; an error here is a usage problem, not a verdict.
async fn judge(args: &VerifyArgs) -> Result<Result<Verdict, Refusal>, String> {
    let mut anchor_ders = Vec::new();
    for path in &args.anchors {
        anchor_ders.extend(certificates(path)?);
    }
    let anchors = TrustAnchors::from_der(anchor_ders).map_err(|e| e.to_string())?;
    let mut intermediates = Vec::new();
    for path in &args.intermediates {
        intermediates.extend(certificates(path)?);
    }
    let evidence = Evidence {
        ocsp_responses: args
            .ocsp_responses
            .iter()
            .map(|p| read(p))
            .collect::<Result<_, _>>()?,
        crls: args
            .crls
            .iter()
            .map(|p| read(p))
            .collect::<Result<_, _>>()?,
    };
    let verifier = Verifier::offline(evidence);
    let at = args.at.unwrap_or_else(Utc::now);
    let policy = RevocationPolicy::Prefer;
    let cert = match &args.cert {
        Some(path) => Some(single_certificate(path)?),
        None => None,
    };
    let result = match (&args.sig, &args.cms) {
        (Some(sig), _) => {
            let digest = digest(args.digest.as_deref().ok_or("--sig needs --digest")?)?;
            let certificate = cert.ok_or("--sig needs --cert")?;
            let signature = read_maybe_base64(sig)?;
            let check = SignatureCheck {
                digest: &digest,
                signature: &signature,
                scheme: match args.scheme {
                    SchemeArg::Pkcs1v15 => Scheme::Pkcs1v15,
                    SchemeArg::Pss => Scheme::PssSha256,
                },
                certificate: &certificate,
                chain: &intermediates,
                at,
            };
            verifier.verify(&check, &anchors, policy).await
        }
        (None, Some(cms)) => {
            let content = read(args.content.as_deref().ok_or("--cms needs --content")?)?;
            let content_digest: [u8; 32] = Sha256::digest(&content).into();
            let cms = read_maybe_base64(cms)?;
            let mut extra: Vec<Vec<u8>> = cert.into_iter().collect();
            extra.extend(intermediates);
            let check = CmsCheck {
                cms: &cms,
                content_digest: &content_digest,
                extra_certificates: &extra,
                at,
            };
            verifier.verify_cms(&check, &anchors, policy).await
        }
        (None, None) => return Err("give --sig or --cms".into()),
    };
    Ok(match (result, &args.signer) {
        (Ok(verdict), Some(signer)) if !signer_matches(&verdict.identity, signer) => {
            Err(Refusal::signer_mismatch(verdict))
        }
        (other, _) => other,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Binary as is, or base64 text (what the API returns) decoded.
fn read_maybe_base64(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = read(path)?;
    let text_like = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=\r\n ".contains(b));
    if text_like {
        let compact: Vec<u8> = bytes
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if let Ok(decoded) = BASE64_STANDARD.decode(compact) {
            return Ok(decoded);
        }
    }
    Ok(bytes)
}

fn certificates(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let bytes = read(path)?;
    let ders = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        certificates_from_pem_or_der(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        vec![read_maybe_base64(path)?]
    };
    Ok(ders)
}

fn single_certificate(path: &Path) -> Result<Vec<u8>, String> {
    let mut ders = certificates(path)?;
    match ders.len() {
        1 => Ok(ders.remove(0)),
        n => Err(format!(
            "{}: holds {n} certificates; give the signer's alone (others via --intermediate)",
            path.display()
        )),
    }
}

/// 32 raw bytes, 64 hex characters, or base64 of 32 bytes.
fn digest(path: &Path) -> Result<[u8; 32], String> {
    let bytes = read(path)?;
    if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(raw);
    }
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let decoded = hex::decode(&text)
        .ok()
        .or_else(|| BASE64_STANDARD.decode(&text).ok())
        .unwrap_or_default();
    <[u8; 32]>::try_from(decoded.as_slice()).map_err(|_| {
        format!(
            "{}: not a SHA-256 digest (32 raw bytes, 64 hex characters or base64)",
            path.display()
        )
    })
}
