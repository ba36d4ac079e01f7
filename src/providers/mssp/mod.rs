//! The ETSI TS 102 204 (Mobile Signature Service) adapter for SIM signing at Viettel, VNPT and
//! MobiFone: SOAP 1.2 over HTTPS with `AP_ID`/`AP_PWD` and optional mTLS. It asks the carrier's
//! MSSP to push the session's DigestInfo to the SIM and learns the answer in the instance's
//! messaging mode: by polling MSS_StatusQuery (asynchClientServer), from an MSS_Notification
//! that only wakes the session before the same status query confirms it (asynchServerServer:
//! notifications are unauthenticated), or in the held-open signature call itself (synch: its
//! final answer is kept in the adapter state and `status` hands it over without a call).
//! [`xml`] reads and writes XML safely, [`soap`] the envelope, [`wire`] the messages and the
//! code table, [`call`] one round trip and its meaning, [`display`] fits the prompt text,
//! [`cms`] reads PKCS#7 answers, [`notify`] notifications, [`state`] what `start` leaves for
//! `status`.

mod call;
mod cms;
mod config;
mod display;
mod notify;
mod soap;
mod state;
#[cfg(test)]
mod tests;
mod wire;
mod xml;

use std::time::Duration;

use async_trait::async_trait;
use base64::prelude::{Engine as _, BASE64_STANDARD};
use chrono::Utc;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};

use super::{
    CallbackAnswer, CallbackError, CallbackHint, CallbackReply, CertBundle, Outcome, Provider,
    ProviderError, SignRequest, Started, StatusRequest,
};
use crate::outbound::{build_client, ClientError};
use call::{bundle, check_msisdn, final_error, plausible_id};
pub use config::{ElementOrderSetting, MessagingMode, MssFormat, MsspConfig};
pub use display::DisplayEncoding;
use soap::Dialect;
pub use soap::{Answer, Fault, Message, Signature, SoapError, Status};
use state::{Finished, State};
use wire::Header;

/// Parses any SOAP answer an MSSP may send (the fuzzed entry point).
pub fn parse_response(bytes: &[u8]) -> Result<Answer, SoapError> {
    soap::parse_answer(bytes)
}

/// The smallest text budgets that still hold a verification code with its label.
const MIN_GSM7_LIMIT: usize = 24;
const MIN_UCS2_LIMIT: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum MsspSetupError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("mssp: {0}")]
    Invalid(String),
}

pub struct Mssp {
    client: reqwest::Client,
    /// Without a trailing slash.
    base_url: String,
    ap_id: String,
    ap_pwd: SecretString,
    mode: MessagingMode,
    wrapper_namespace: Option<String>,
    qualify_part: bool,
    order: wire::ElementOrder,
    mssp_id: String,
    signature_profile: Option<String>,
    services: Vec<String>,
    encoding: DisplayEncoding,
    limits: display::Limits,
    format_uri: &'static str,
    request_timeout: Duration,
    poll_first: Duration,
    poll_interval: Duration,
    /// `AP_URL` for asynchServerServer.
    ap_url: Option<String>,
    receipt_message: Option<String>,
    profile_query: bool,
    /// Notifications that may have come before their signature call returned.
    notified: notify::Notified,
}

/// What one answer says about the transaction.
enum Said {
    /// Accepted or still outstanding.
    Going {
        mssp_trans_id: Option<String>,
    },
    Done(Outcome),
}

impl Mssp {
    pub fn new(provider_id: &str, cfg: &MsspConfig) -> Result<Self, MsspSetupError> {
        let request_timeout = Duration::from_millis(cfg.request_timeout_ms);
        let client = build_client(&cfg.tls, request_timeout)?;
        let base_url = cfg.base_url.trim_end_matches('/').to_owned();
        client
            .post(&base_url)
            .build()
            .map_err(|e| MsspSetupError::Invalid(format!("base_url: {e}")))?;
        if cfg.gsm7_limit < MIN_GSM7_LIMIT || cfg.ucs2_limit < MIN_UCS2_LIMIT {
            return Err(MsspSetupError::Invalid(format!(
                "gsm7_limit must be at least {MIN_GSM7_LIMIT} and ucs2_limit at least {MIN_UCS2_LIMIT}"
            )));
        }
        let ap_url = match (cfg.messaging_mode, &cfg.public_callback_base) {
            (MessagingMode::AsynchServerServer, None) => {
                return Err(MsspSetupError::Invalid(
                    "asynch_server_server needs public_callback_base (kyso's URL for AP_URL)"
                        .into(),
                ))
            }
            (_, Some(base)) => Some(format!(
                "{}/callbacks/{provider_id}",
                base.trim_end_matches('/')
            )),
            (_, None) => None,
        };
        Ok(Self {
            client,
            mssp_id: cfg.mssp_id.clone().unwrap_or_else(|| base_url.clone()),
            base_url,
            ap_id: cfg.ap_id.clone(),
            ap_pwd: cfg.ap_pwd.clone(),
            mode: cfg.messaging_mode,
            wrapper_namespace: cfg.wrapper_namespace.clone(),
            qualify_part: cfg.qualify_part,
            order: match cfg.element_order {
                ElementOrderSetting::Etsi => wire::ElementOrder::Etsi,
                ElementOrderSetting::Vn => wire::ElementOrder::Vn,
            },
            signature_profile: cfg.signature_profile.clone(),
            services: cfg.additional_services.clone(),
            encoding: cfg.display_encoding,
            limits: display::Limits {
                gsm7: cfg.gsm7_limit,
                ucs2: cfg.ucs2_limit,
            },
            format_uri: match cfg.mss_format {
                MssFormat::Pkcs1 => wire::FORMAT_PKCS1,
                MssFormat::Cms => wire::FORMAT_PKCS7,
            },
            request_timeout,
            poll_first: Duration::from_millis(cfg.poll_first_ms),
            poll_interval: Duration::from_millis(cfg.poll_interval_ms),
            ap_url,
            receipt_message: cfg.receipt_message.clone(),
            profile_query: cfg.profile_query,
            notified: notify::Notified::default(),
        })
    }

    /// The header of every request: a renewed `Instant`, the derived `AP_TransID`.
    fn header<'a>(&'a self, ap_trans_id: &'a str, ap_url: Option<&'a str>) -> Header<'a> {
        Header {
            dialect: Dialect {
                wrapper_namespace: self.wrapper_namespace.as_deref(),
                qualify_part: self.qualify_part,
            },
            ap: wire::ApInfo {
                ap_id: &self.ap_id,
                ap_pwd: self.ap_pwd.expose_secret(),
                ap_trans_id,
                instant: Utc::now(),
                ap_url,
            },
            mssp_id: &self.mssp_id,
        }
    }

    fn poll_again(&self) -> Duration {
        let spread = self.poll_interval.as_millis() as u64 / 5;
        self.poll_interval + Duration::from_millis(rand::thread_rng().gen_range(0..=spread))
    }

    /// Queries the profile: fails on an unknown subscriber, and returns the certificates the
    /// MSSP lists, if any.
    async fn profile(
        &self,
        ap_trans_id: &str,
        msisdn: &str,
    ) -> Result<Option<CertBundle>, ProviderError> {
        let body = wire::profile_req(&self.header(ap_trans_id, None), msisdn);
        let answer = self
            .call("MSS_ProfileQueryPort", body, ap_trans_id, None)
            .await?;
        let certificates = match &answer {
            Answer::Message(m) => m.certificates.clone(),
            Answer::Fault(_) => Vec::new(),
        };
        match self.read(answer)? {
            Said::Done(Outcome::Failed(f)) => Err(ProviderError::Final(f)),
            _ => Ok(bundle(certificates)),
        }
    }

    /// Fire-and-forget MSS_Receipt: a closing message on the phone is courtesy, so its failure
    /// changes nothing for the session.
    fn send_receipt(&self, ap_trans_id: &str, mssp_trans_id: Option<&str>, msisdn: &str) {
        let (Some(message), Some(mssp_tx)) = (&self.receipt_message, mssp_trans_id) else {
            return;
        };
        let body = wire::receipt_req(&self.header(ap_trans_id, None), mssp_tx, msisdn, message);
        let request = self.post("MSS_ReceiptPort", body, None);
        let tx = ap_trans_id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = request.send().await.and_then(|r| r.error_for_status()) {
                tracing::debug!(ap_trans_id = %tx, error = %e, "MSS_Receipt not delivered");
            }
        });
    }
}

#[async_trait]
impl Provider for Mssp {
    async fn start(&self, req: &SignRequest<'_>) -> Result<Started, ProviderError> {
        let ap_tx = wire::ap_trans_id(req.transaction_id);
        let msisdn = check_msisdn(req.signer)?;
        let call = self.notified.begin(&ap_tx);
        let certificate = if self.profile_query {
            self.profile(&ap_tx, msisdn).await?
        } else {
            None
        };
        // The MSSP drops the request when the session would expire anyway.
        let left = (req.expires_at - Utc::now()).num_seconds().max(1) as u64;
        let display = display::fit(req.display_text, self.encoding, self.limits);
        let header = self.header(
            &ap_tx,
            match self.mode {
                MessagingMode::AsynchServerServer => self.ap_url.as_deref(),
                _ => None,
            },
        );
        let body = wire::signature_req(&wire::SignatureReq {
            header,
            mode: self.mode.wire(),
            timeout_s: left,
            msisdn,
            digest: req.digest,
            display: &display.text,
            signature_profile: self.signature_profile.as_deref(),
            services: &self.services,
            format_uri: self.format_uri,
            order: self.order,
        });
        // A synch call is answered when the user acts: the read waits the whole TimeOut.
        let hold = (self.mode == MessagingMode::Synch)
            .then(|| Duration::from_secs(left) + self.request_timeout);
        let answer = self.call("MSS_SignaturePort", body, &ap_tx, hold).await?;
        let answered_id = match &answer {
            Answer::Message(m) => m.mssp_trans_id.clone(),
            Answer::Fault(_) => None,
        };
        let finished = match self.read(answer)? {
            Said::Going { mssp_trans_id } => {
                let id = mssp_trans_id.filter(|id| plausible_id(id)).ok_or_else(|| {
                    final_error(None, "the MSSP acknowledged without a usable MSSP_TransID")
                })?;
                // A notification that beat this answer must not wait for the first poll.
                let first_check_in = if call.notified() {
                    Duration::ZERO
                } else {
                    self.poll_first
                };
                let state = State {
                    mssp_trans_id: Some(id),
                    result: None,
                };
                return Ok(Started {
                    state: serde_json::to_value(&state).unwrap_or_default(),
                    certificate,
                    first_check_in,
                });
            }
            Said::Done(Outcome::Failed(f)) => return Err(ProviderError::Final(f)),
            Said::Done(Outcome::Signed {
                signature,
                scheme,
                certificate,
            }) => {
                self.send_receipt(&ap_tx, answered_id.as_deref(), msisdn);
                Finished::Signed {
                    signature: BASE64_STANDARD.encode(signature),
                    scheme,
                    certificate,
                }
            }
            Said::Done(Outcome::SignedCms { cms, certificate }) => {
                self.send_receipt(&ap_tx, answered_id.as_deref(), msisdn);
                Finished::SignedCms {
                    cms: BASE64_STANDARD.encode(cms),
                    certificate,
                }
            }
            Said::Done(Outcome::Rejected { provider_code }) => Finished::Rejected { provider_code },
            Said::Done(Outcome::Expired { provider_code }) => Finished::Expired { provider_code },
            Said::Done(Outcome::Waiting { .. }) => {
                return Err(final_error(None, "unexpected waiting outcome"))
            }
        };
        let state = State {
            mssp_trans_id: answered_id.filter(|id| plausible_id(id)),
            result: Some(finished),
        };
        Ok(Started {
            state: serde_json::to_value(&state).unwrap_or_default(),
            certificate,
            first_check_in: Duration::ZERO,
        })
    }

    async fn status(&self, req: &StatusRequest<'_>) -> Result<Outcome, ProviderError> {
        let state: State = serde_json::from_value(req.state.clone()).unwrap_or_default();
        if let Some(finished) = state.result {
            return Ok(finished.into_outcome());
        }
        let mssp_tx = state
            .mssp_trans_id
            .ok_or_else(|| final_error(None, "no MSSP_TransID to query"))?;
        let ap_tx = wire::ap_trans_id(req.transaction_id);
        let msisdn = check_msisdn(req.signer)?;
        let body = wire::status_req(&self.header(&ap_tx, None), &mssp_tx, msisdn);
        let answer = self.call("MSS_StatusQueryPort", body, &ap_tx, None).await?;
        match self.read(answer)? {
            Said::Going { .. } => Ok(Outcome::Waiting {
                next_check_in: self.poll_again(),
            }),
            Said::Done(outcome) => {
                if matches!(outcome, Outcome::Signed { .. } | Outcome::SignedCms { .. }) {
                    self.send_receipt(&ap_tx, Some(&mssp_tx), msisdn);
                }
                Ok(outcome)
            }
        }
    }

    async fn cancel(&self, _req: &StatusRequest<'_>) -> Result<(), ProviderError> {
        // TS 102 204 has no cancel operation: the prompt stays on the phone until its TimeOut.
        // The engine marks the session cancelled and ignores a later signature.
        Ok(())
    }

    async fn certificates(&self, signer: &str) -> Result<Vec<CertBundle>, ProviderError> {
        let msisdn = check_msisdn(signer)?;
        // A listing belongs to no session, so its AP_TransID is fresh each time.
        let ap_tx = format!("K{}", ulid::Ulid::new());
        Ok(self.profile(&ap_tx, msisdn).await?.into_iter().collect())
    }

    fn parse_callback(&self, body: &[u8]) -> Result<Vec<CallbackHint>, CallbackError> {
        self.handle_callback(body).map(|a| a.hints)
    }

    fn handle_callback(&self, body: &[u8]) -> Result<CallbackAnswer, CallbackError> {
        let note = notify::read(body, &self.ap_id)?;
        self.notified.mark(&note.ap_trans_id);
        // The notification is unauthenticated: its receipt names only what it named (an
        // AP_ID, which `read` checked is ours, and an MSSP_ID), never the configured AP_ID or
        // the MSSP's URL.
        let mut header = self.header(&note.ap_trans_id, None);
        header.ap.ap_id = note.ap_id.as_deref().unwrap_or_default();
        header.mssp_id = note.mssp_id.as_deref().unwrap_or_default();
        let reply = wire::notification_answer(&header, &note.mssp_trans_id, note.msisdn.as_deref());
        Ok(CallbackAnswer {
            hints: vec![CallbackHint {
                transaction_id: note.transaction_id,
            }],
            reply: Some(CallbackReply {
                content_type: "application/soap+xml; charset=utf-8",
                body: reply.into_bytes(),
            }),
        })
    }
}
