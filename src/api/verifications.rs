//! The USB-token path: the browser plugin signs on the user's computer and the portal hands the
//! signature to kyso. `POST /v1/challenges` gives a fresh nonce to sign; `POST /v1/verifications`
//! judges a raw (PKCS#1 v1.5 or PSS) or CMS signature over that nonce, a digest or some content,
//! against the `[usb]` trust anchors, and answers with the same `verification` and `identity`
//! blocks a signed session carries.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::prelude::{Engine as _, BASE64_STANDARD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::challenges::Challenges;
use super::error::ApiError;
use super::extract::{JsonBody, Tenant};
use super::limits;
use super::AppState;
use crate::config::UsbConfig;
use crate::verify::{
    certificates_from_pem_or_der, signer_matches, CmsCheck, Refusal, RevocationPolicy, Scheme,
    SignatureCheck, TrustAnchors, Verifier,
};

/// A real chain is two or three certificates.
const MAX_CHAIN: usize = 8;

/// What the USB-token endpoints need besides the rest of the application.
pub struct UsbPath {
    verifier: Arc<Verifier>,
    anchors: TrustAnchors,
    policy: RevocationPolicy,
    pub(super) challenges: Challenges,
}

impl UsbPath {
    pub fn new(config: &UsbConfig, anchors: TrustAnchors, verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            anchors,
            policy: config.revocation,
            challenges: Challenges::new(
                std::time::Duration::from_secs(config.challenge_ttl_s.max(1)),
                config.max_challenges_per_tenant,
            ),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/challenges", post(challenge))
        .route("/v1/verifications", post(verification))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChallengeView {
    /// Pass as `challenge_id` to `POST /v1/verifications`.
    id: String,
    /// base64 of 32 random bytes. The token signs these bytes (SHA-256 with RSA), so the
    /// digest checked is SHA-256 of the decoded nonce; for CMS they are the detached content.
    nonce: String,
    expires_at: DateTime<Utc>,
}

/// A nonce for the browser plugin to sign; single-use, expiring.
#[utoipa::path(post, path = "/v1/challenges",
    responses((status = 201, body = ChallengeView), (status = 401), (status = 429)),
    security(("bearer" = [])))]
pub async fn challenge(
    State(app): State<AppState>,
    tenant: Tenant,
) -> Result<(StatusCode, Json<ChallengeView>), ApiError> {
    limits::tenant_rate(&app, &tenant).await?;
    let issued = limits::issue_challenge(&app, &tenant).await?;
    let view = ChallengeView {
        id: issued.id,
        nonce: BASE64_STANDARD.encode(issued.nonce),
        expires_at: issued.expires_at,
    };
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsbFormat {
    /// Raw RSA PKCS#1 v1.5 signature.
    Pkcs1,
    /// Raw RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt).
    Pss,
    /// CMS SignedData, DER (detached or with the content inside).
    Cms,
}

/// Give exactly one of `challenge_id`, `digest` or `content` for what was signed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationInput {
    /// From `POST /v1/challenges`: the token signed the challenge's nonce bytes.
    challenge_id: Option<String>,
    /// base64 of the SHA-256 digest that was signed.
    digest: Option<String>,
    /// base64 of the signed bytes (kyso hashes them with SHA-256).
    content: Option<String>,
    /// base64 of the raw signature, or of the CMS DER for `cms`.
    signature: String,
    /// base64 DER (or PEM) of the signer's certificate; optional for `cms` when the CMS
    /// carries it.
    certificate: Option<String>,
    /// base64 DER (or PEM) intermediates.
    chain: Option<Vec<String>>,
    format: UsbFormat,
    /// When given, the certificate must belong to this user id or MSISDN.
    signer: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

fn decode(field: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    BASE64_STANDARD
        .decode(value.trim())
        .map_err(|e| bad(format!("{field}: not valid base64 ({e})")))
}

/// PEM text, base64 of DER, or base64 of a PEM file (what a browser reading a .pem sends).
fn certificates(field: &str, value: &str) -> Result<Vec<Vec<u8>>, ApiError> {
    let trimmed = value.trim();
    let bytes = if trimmed.starts_with("-----BEGIN") {
        trimmed.as_bytes().to_vec()
    } else {
        decode(field, trimmed)?
    };
    certificates_from_pem_or_der(&bytes).map_err(|e| bad(format!("{field}: {e}")))
}

/// What was signed, as the request names it.
#[derive(Debug)]
pub(crate) enum Signed {
    /// SHA-256 of the given `content`, or the given `digest`.
    Digest([u8; 32]),
    /// The nonce of this challenge, once taken.
    Challenge(String),
}

/// A verification request that passed every check needing no state; the handler takes the
/// challenge (if any) and judges it.
#[derive(Debug)]
pub(crate) struct Checked {
    pub signature: Vec<u8>,
    /// The signer's certificate when given (always, for raw signatures) first, then the chain.
    pub certificates: Vec<Vec<u8>>,
    pub signed: Signed,
    pub format: UsbFormat,
    pub signer: Option<String>,
}

impl Checked {
    /// The raw signature as the verifier judges it; `None` for a CMS, which carries its own.
    pub(crate) fn signature_check<'a>(
        &'a self,
        digest: &'a [u8; 32],
        at: DateTime<Utc>,
    ) -> Option<SignatureCheck<'a>> {
        let scheme = match self.format {
            UsbFormat::Pkcs1 => Scheme::Pkcs1v15,
            UsbFormat::Pss => Scheme::PssSha256,
            UsbFormat::Cms => return None,
        };
        // check() promises the signer's certificate for raw signatures.
        let (certificate, chain) = self.certificates.split_first()?;
        Some(SignatureCheck {
            digest,
            signature: &self.signature,
            scheme,
            certificate,
            chain,
            at,
        })
    }
}

impl VerificationInput {
    /// Decodes and bounds every field; each refusal is a 400 `invalid_request` naming it.
    pub(crate) fn check(self) -> Result<Checked, ApiError> {
        let signature = decode("signature", &self.signature)?;
        let mut certs = match &self.certificate {
            Some(c) => certificates("certificate", c)?,
            None => Vec::new(),
        };
        let given_certificate = certs.len();
        for c in self.chain.iter().flatten() {
            certs.extend(certificates("chain", c)?);
        }
        if certs.len() > MAX_CHAIN + 1 {
            return Err(bad(format!("at most {MAX_CHAIN} chain certificates")));
        }
        let content = self
            .content
            .as_deref()
            .map(|c| decode("content", c))
            .transpose()?;
        let digest = self
            .digest
            .as_deref()
            .map(|d| decode("digest", d))
            .transpose()?;
        let signed = match (self.challenge_id, digest, content) {
            (Some(id), None, None) => Signed::Challenge(id),
            (None, Some(d), None) => Signed::Digest(
                <[u8; 32]>::try_from(d.as_slice())
                    .map_err(|_| bad(format!("digest: must be 32 bytes, got {}", d.len())))?,
            ),
            (None, None, Some(c)) => Signed::Digest(Sha256::digest(c).into()),
            _ => return Err(bad("give exactly one of challenge_id, digest or content")),
        };
        if !matches!(self.format, UsbFormat::Cms) && given_certificate != 1 {
            return Err(bad(
                "certificate: one certificate is required for raw signatures",
            ));
        }
        Ok(Checked {
            signature,
            certificates: certs,
            signed,
            format: self.format,
            signer: self.signer,
        })
    }
}

/// Judge a USB-token signature: 200 with the verdict, 422 with the verdict and the refusal's
/// code, 400 for input that cannot be judged, 404 for an unknown, used or expired challenge.
#[utoipa::path(post, path = "/v1/verifications", request_body = VerificationInput,
    responses((status = 200, description = "{verdict, verification, identity}"),
        (status = 400), (status = 401), (status = 404, description = "challenge unknown, used or expired"),
        (status = 422, description = "refused: {error, verification, identity}"), (status = 503, description = "no [usb] trust anchors")),
    security(("bearer" = [])))]
pub async fn verification(
    State(app): State<AppState>,
    tenant: Tenant,
    JsonBody(input): JsonBody<VerificationInput>,
) -> Result<Response, ApiError> {
    let usb = &app.usb;
    if usb.anchors.is_empty() {
        return Err(ApiError::Unavailable(
            "the USB-token path has no trust anchors configured ([usb] trust_anchors)".into(),
        ));
    }
    limits::tenant_rate(&app, &tenant).await?;
    let request = input.check()?;
    // Used up only once the request is well-formed, so a typo does not burn it.
    let digest: [u8; 32] = match &request.signed {
        Signed::Digest(d) => *d,
        Signed::Challenge(id) => {
            let nonce = limits::take_challenge(&app, &tenant, id).await?;
            let Some(nonce) = nonce else {
                let body = json!({"error": {"code": "challenge_not_found",
                    "message": "the challenge is unknown, already used or expired"}});
                return Ok((StatusCode::NOT_FOUND, Json(body)).into_response());
            };
            Sha256::digest(nonce).into()
        }
    };
    let at = Utc::now();
    let certs = &request.certificates;
    let result = match request.signature_check(&digest, at) {
        Some(check) => usb.verifier.verify(&check, &usb.anchors, usb.policy).await,
        None => {
            let check = CmsCheck {
                cms: &request.signature,
                content_digest: &digest,
                extra_certificates: certs,
                at,
            };
            usb.verifier
                .verify_cms(&check, &usb.anchors, usb.policy)
                .await
        }
    };
    let result = match (result, &request.signer) {
        (Ok(v), Some(signer)) if !signer_matches(&v.identity, signer) => {
            Err(Refusal::signer_mismatch(v))
        }
        (other, _) => other,
    };
    metrics::counter!("kyso_usb_verifications_total",
        "verdict" => match &result { Ok(_) => "valid", Err(r) => r.code() })
    .increment(1);
    Ok(match result {
        Ok(v) => Json(json!({
            "verdict": "valid",
            "verification": v.verification,
            "identity": v.identity,
        }))
        .into_response(),
        Err(refusal) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "error": {"code": refusal.code(), "message": refusal.error.to_string()},
                "verification": refusal.verification,
                "identity": refusal.identity,
            })),
        )
            .into_response(),
    })
}
