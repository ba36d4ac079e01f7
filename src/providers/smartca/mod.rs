//! The VNPT SmartCA adapter ("SP769" JSON API): looks up the signer's certificates, asks VNPT to
//! push a hash-signing request to the SmartCA app, and polls for the raw PKCS#1 v1.5 signature.
//! The SP credentials travel in every request body, so bodies are never logged. Wire types and
//! the code tables live in [`wire`], the certificate choice in [`choose`]; this file owns the
//! calls and the mapping onto the [`Provider`] trait.

mod choose;
mod wire;

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{
    CallbackError, CallbackHint, CertBundle, Failure, Outcome, Provider, ProviderError,
    SignRequest, Started, StatusRequest,
};
use crate::domain::{ErrorCode, Purpose};
use crate::outbound::{self, build_client, ClientError, TlsConfig};
use crate::verify::Scheme;
use choose::choose_certificate;
use wire::{Envelope, UserCertificate};

const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
const MAX_CALLBACK_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmartcaConfig {
    /// e.g. `https://gwsca.vnpt.vn/sca/sp769`. One base per instance: public code has been
    /// seen signing on production while polling UAT.
    pub base_url: String,
    pub sp_id: String,
    /// Sent in every request body; never logged.
    pub sp_password: SecretString,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// The first status check after the push: users rarely confirm within a few seconds.
    #[serde(default = "default_poll_first_ms")]
    pub poll_first_ms: u64,
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    #[serde(default)]
    pub status_path_id: StatusPathId,
}

fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_poll_first_ms() -> u64 {
    5_000
}
fn default_poll_interval_ms() -> u64 {
    3_000
}

/// Which id goes into the status URL `/v1/signatures/sign/{id}/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusPathId {
    /// kyso's own transaction id, as most public integrations poll.
    #[default]
    TransactionId,
    /// VNPT's `tran_code` from the sign answer, as one public client polls.
    TranCode,
}

impl StatusPathId {
    /// The unconfirmed choice, made here only. Without a stored `tran_code` (a sign answer
    /// that lacked it) the transaction id is the only id there is.
    fn pick<'a>(self, transaction_id: &'a str, state: &'a State) -> &'a str {
        match (self, state.tran_code.as_deref()) {
            (StatusPathId::TranCode, Some(code)) if !code.is_empty() => code,
            _ => transaction_id,
        }
    }
}

/// What the engine persists for us between `start` and `status`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    tran_code: Option<String>,
    #[serde(default)]
    serial_number: Option<String>,
}

pub struct SmartCa {
    client: reqwest::Client,
    /// Without a trailing slash, so endpoint paths append cleanly.
    base_url: String,
    sp_id: String,
    sp_password: SecretString,
    poll_first: Duration,
    poll_interval: Duration,
    status_path_id: StatusPathId,
}

impl SmartCa {
    pub fn new(cfg: &SmartcaConfig) -> Result<Self, ClientError> {
        let client = build_client(&cfg.tls, Duration::from_millis(cfg.request_timeout_ms))?;
        let base_url = cfg.base_url.trim_end_matches('/').to_owned();
        // Building (not sending) a request rejects a bad URL at start-up, not on the first call.
        client.post(&base_url).build()?;
        Ok(Self {
            client,
            base_url,
            sp_id: cfg.sp_id.clone(),
            sp_password: cfg.sp_password.clone(),
            poll_first: Duration::from_millis(cfg.poll_first_ms),
            poll_interval: Duration::from_millis(cfg.poll_interval_ms),
            status_path_id: cfg.status_path_id,
        })
    }

    /// POSTs `body` and reads the envelope. Transport trouble is transient; an HTTP 4xx with a
    /// JSON body is classified by its `status_code` like any answer, by the caller.
    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        transaction_id: &str,
        body: &B,
    ) -> Result<Envelope<T>, ProviderError> {
        let url = format!("{}{path}", self.base_url);
        let sent = self.client.post(url).json(body).send().await;
        let resp = sent.map_err(|e| transport(endpoint, &e))?;
        let http = resp.status();
        let code = http.as_u16();
        if http.is_server_error() || code == 429 || code == 408 {
            tracing::debug!(
                transaction_id,
                endpoint,
                http = code,
                "VNPT SmartCA unavailable"
            );
            let msg = format!("VNPT SmartCA {endpoint}: HTTP {http}");
            return Err(ProviderError::Transient(msg));
        }
        let bytes = read_capped(resp, endpoint).await?;
        let unreadable = |why: String| {
            let msg = format!("VNPT SmartCA {endpoint}: HTTP {http}, {why}");
            provider_failure(Some(format!("http-{code}")), msg)
        };
        let envelope: Envelope<T> =
            serde_json::from_slice(&bytes).map_err(|e| unreadable(format!("unreadable: {e}")))?;
        let status_code = envelope.status_code.as_str();
        tracing::debug!(
            transaction_id,
            endpoint,
            http = code,
            status_code,
            "VNPT SmartCA answered"
        );
        if !http.is_success() && status_code == "200" {
            return Err(unreadable("yet status_code 200".into()));
        }
        Ok(envelope)
    }

    async fn user_certificates(
        &self,
        user_id: &str,
        transaction_id: &str,
    ) -> Result<Vec<UserCertificate>, ProviderError> {
        let body = wire::GetCertificateRequest {
            sp_id: &self.sp_id,
            sp_password: self.sp_password.expose_secret(),
            user_id,
            serial_number: None,
            transaction_id,
        };
        let path = "/v1/credentials/get_certificate";
        let env: Envelope<wire::CertificateData> = self
            .post("get_certificate", path, transaction_id, &body)
            .await?;
        env.classify().require_ok()?;
        Ok(env
            .data
            .and_then(|d| d.user_certificates)
            .unwrap_or_default())
    }
}

#[async_trait]
impl Provider for SmartCa {
    async fn start(&self, req: &SignRequest<'_>) -> Result<Started, ProviderError> {
        // Derived from the session's transaction id so a repeated start repeats it too.
        let cert_tx = format!("{}-cert", req.transaction_id);
        let certs = self.user_certificates(req.signer, &cert_tx).await?;
        let chosen = choose_certificate(&certs, Utc::now()).map_err(ProviderError::Final)?;
        let body = wire::SignRequest {
            sp_id: &self.sp_id,
            sp_password: self.sp_password.expose_secret(),
            user_id: req.signer,
            transaction_id: req.transaction_id,
            transaction_desc: req.display_text,
            serial_number: &chosen.serial,
            time_stamp: Utc::now().format("%Y%m%d%H%M%SZ").to_string(),
            sign_files: vec![wire::SignFile {
                data_to_be_signed: hex::encode(req.digest),
                doc_id: doc_id(req),
                file_type: file_type(req.document_name),
                sign_type: "hash",
            }],
        };
        // VNPT deduplicates on transaction_id, so repeating this call shows no second prompt.
        let env: Envelope<wire::SignData> = self
            .post("sign", "/v1/signatures/sign", req.transaction_id, &body)
            .await?;
        env.classify().require_ok()?;
        let state = State {
            tran_code: env.data.and_then(|d| d.tran_code),
            serial_number: Some(chosen.serial),
        };
        Ok(Started {
            state: serde_json::to_value(&state).unwrap_or_default(),
            certificate: Some(chosen.bundle),
            first_check_in: self.poll_first,
        })
    }

    /// get_certificate, then sign.
    fn calls_per_start(&self) -> u32 {
        2
    }

    async fn status(&self, req: &StatusRequest<'_>) -> Result<Outcome, ProviderError> {
        // A missing or older state still lets us poll by transaction id.
        let state: State = serde_json::from_value(req.state.clone()).unwrap_or_default();
        let id = encode_segment(self.status_path_id.pick(req.transaction_id, &state));
        let path = format!("/v1/signatures/sign/{id}/status");
        let body = serde_json::json!({});
        let env: Envelope<wire::StatusData> = self
            .post("status", &path, req.transaction_id, &body)
            .await?;
        if let Some(outcome) = env.classify().status_outcome()? {
            return Ok(outcome);
        }
        // The answer's transaction_id is not compared: public clients disagree on which id
        // VNPT echoes, and the verifier rejects a signature over any other digest anyway.
        let Some(value) = env.data.and_then(wire::StatusData::into_signature) else {
            let next_check_in = self.poll_interval;
            return Ok(Outcome::Waiting { next_check_in });
        };
        Ok(match wire::decode_b64(&value) {
            Some(signature) => Outcome::Signed {
                signature,
                scheme: Scheme::Pkcs1v15,
                certificate: None,
            },
            None => Outcome::Failed(Failure {
                code: ErrorCode::InvalidSignature,
                provider_code: None,
                message: "VNPT SmartCA returned a signature_value that is not base64".into(),
            }),
        })
    }

    async fn cancel(&self, _req: &StatusRequest<'_>) -> Result<(), ProviderError> {
        // SP769 has no cancel endpoint: the request stays in the app until VNPT drops it.
        // The engine still marks the session cancelled and ignores any later signature.
        Ok(())
    }

    async fn certificates(&self, signer: &str) -> Result<Vec<CertBundle>, ProviderError> {
        // A listing belongs to no session, so its transaction id is fresh each time.
        let tx = format!("kyso-cert-{}", ulid::Ulid::new());
        let certs = self.user_certificates(signer, &tx).await?;
        Ok(certs.iter().filter_map(UserCertificate::bundle).collect())
    }

    async fn signing_certificate(&self, signer: &str) -> Result<Option<CertBundle>, ProviderError> {
        // The same choice `start` makes, so the certificate named in CMS signed attributes is
        // the one VNPT signs with.
        let tx = format!("kyso-cert-{}", ulid::Ulid::new());
        let certs = self.user_certificates(signer, &tx).await?;
        let chosen = choose_certificate(&certs, Utc::now()).map_err(ProviderError::Final)?;
        Ok(Some(chosen.bundle))
    }

    fn parse_callback(&self, body: &[u8]) -> Result<Vec<CallbackHint>, CallbackError> {
        if body.len() > MAX_CALLBACK_BYTES {
            let msg = format!("body over {MAX_CALLBACK_BYTES} bytes");
            return Err(CallbackError(msg));
        }
        let hook: wire::Webhook = serde_json::from_slice(body)
            .map_err(|e| CallbackError(format!("not a SmartCA webhook: {e}")))?;
        // Not authentication (the sp_id is no secret), just a guard against a misrouted push.
        if hook.sp_id.as_deref().is_some_and(|id| id != self.sp_id) {
            return Err(CallbackError("webhook for another sp_id".into()));
        }
        let tx = hook.transaction_id.trim();
        // The id ends up in logs and lookups: accept only what kyso could have sent.
        if tx.is_empty() || tx.len() > 128 || !tx.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CallbackError("malformed transaction_id".into()));
        }
        let transaction_id = tx.to_owned();
        Ok(vec![CallbackHint { transaction_id }])
    }
}

/// What the app shows next to the request: the document's name, else the purpose and the
/// verification code the portal shows, as in VNPT's own example (`register-4821`).
fn doc_id(req: &SignRequest<'_>) -> String {
    if let Some(name) = req.document_name.map(str::trim).filter(|n| !n.is_empty()) {
        return wire::clip(name, 128);
    }
    let purpose = match req.purpose {
        Purpose::Register => "register",
        Purpose::Login => "login",
        Purpose::Sign => "sign",
    };
    format!("{purpose}-{}", req.verification_code)
}

/// Informative only; VNPT knows pdf, xml, word and json.
fn file_type(document_name: Option<&str>) -> &'static str {
    let ext = document_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("pdf") => "pdf",
        Some("xml") => "xml",
        Some("doc" | "docx") => "word",
        _ => "json",
    }
}

/// Percent-encodes an id for one URL path segment: `tran_code` comes from VNPT.
fn encode_segment(id: &str) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    id.bytes()
        .map(|b| {
            if keep(b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Reads at most [`MAX_RESPONSE_BYTES`], whatever the peer announces or sends.
async fn read_capped(resp: reqwest::Response, endpoint: &str) -> Result<Vec<u8>, ProviderError> {
    outbound::read_capped(resp, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            outbound::ReadError::TooLarge(_) => {
                provider_failure(None, format!("VNPT SmartCA {endpoint}: {e}"))
            }
            outbound::ReadError::Transport(e) => transport(endpoint, &e),
        })
}

fn transport(endpoint: &str, e: &reqwest::Error) -> ProviderError {
    ProviderError::Transient(format!("VNPT SmartCA {endpoint}: {e}"))
}

fn provider_failure(provider_code: Option<String>, message: String) -> ProviderError {
    let code = ErrorCode::ProviderError;
    ProviderError::Final(Failure {
        code,
        provider_code,
        message,
    })
}

#[cfg(test)]
mod tests;
