//! One round trip to an MSSP and what its answer means. The body of an answer is read whatever
//! the HTTP status (Swisscom sends every Fault with 500, notes §8), up to a size cap; only
//! transport trouble, and a 5xx/429/408 without a readable SOAP body, are worth retrying.
//! Bodies are never logged: requests carry AP_PWD and answers echo it.

use std::time::Duration;

use der::{Decode, Encode};
use secrecy::ExposeSecret;

use super::cms::{self, CmsSignature};
use super::soap::{self, Answer, Message, Signature};
use super::wire::{status_table, Meaning};
use super::xml::MAX_DOCUMENT_BYTES;
use super::{Mssp, Said};
use crate::domain::ErrorCode;
use crate::outbound;
use crate::providers::{CertBundle, Failure, Outcome, ProviderError};
use crate::verify::Scheme;

impl Mssp {
    pub(super) fn post(
        &self,
        port: &str,
        body: String,
        timeout: Option<Duration>,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}/soap/services/{port}", self.base_url);
        // No SOAPAction: the VN WSDL does not require one and laverca omits it (notes §1).
        let req = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/soap+xml; charset=utf-8",
            )
            .body(body);
        match timeout {
            Some(t) => req.timeout(t),
            None => req,
        }
    }

    pub(super) async fn call(
        &self,
        port: &'static str,
        body: String,
        ap_trans_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Answer, ProviderError> {
        let sent = self.post(port, body, timeout).send().await;
        let resp = sent.map_err(|e| transient(port, &e.to_string()))?;
        let http = resp.status();
        let code = http.as_u16();
        let retryable = http.is_server_error() || code == 429 || code == 408;
        let bytes = match read_capped(resp, port).await {
            Err(_) if retryable => return Err(transient(port, &format!("HTTP {http}"))),
            other => other?,
        };
        match soap::parse_answer(&bytes) {
            Ok(answer) => {
                let (kind, value) = match &answer {
                    Answer::Message(m) => ("status", m.status.as_ref().map(|s| s.code)),
                    Answer::Fault(f) => ("fault", f.code),
                };
                tracing::debug!(ap_trans_id, port, http = code, kind, code = ?value, "MSSP answered");
                Ok(answer)
            }
            Err(_) if retryable => Err(transient(port, &format!("HTTP {http}"))),
            Err(e) => Err(final_error(
                Some(format!("http-{code}")),
                &format!("MSSP {port}: HTTP {http}, {e}"),
            )),
        }
    }

    /// Reads an answer through the code table. Provider text goes into session errors, so
    /// an MSSP that echoes AP_PWD into it (answers echo AP_Info) does not leak it there.
    pub(super) fn read(&self, answer: Answer) -> Result<Said, ProviderError> {
        let pwd = self.ap_pwd.expose_secret();
        let scrub = |t: &str| {
            if pwd.is_empty() {
                t.to_owned()
            } else {
                t.replace(pwd, "[AP_PWD]")
            }
        };
        match answer {
            Answer::Fault(f) => {
                let Some(code) = f.code else {
                    let reason = scrub(&f.reason);
                    let what = format!("MSSP fault {} without an ETSI code: {reason}", f.role);
                    // A Receiver fault is the MSSP's own trouble; a Sender fault is ours.
                    return match f.role.as_str() {
                        "Receiver" | "Server" => Err(ProviderError::Transient(what)),
                        _ => Err(final_error(Some(f.role), &what)),
                    };
                };
                let code_detail = f.detail_code.map(|d| format!(" ({d})")).unwrap_or_default();
                let text = match f.detail {
                    Some(d) if f.reason.is_empty() || f.reason == status_table(code).0 => d,
                    Some(d) => format!("{}: {d}", f.reason),
                    None => f.reason,
                };
                let text = scrub(&format!("{text}{code_detail}"));
                outcome(code, &text, None)
            }
            Answer::Message(m) => {
                let status = m
                    .status
                    .clone()
                    .ok_or_else(|| final_error(None, &format!("{} without Status", m.part)))?;
                let text = scrub(status.message.as_deref().unwrap_or_default());
                outcome(status.code, &text, Some(m))
            }
        }
    }
}

/// One code through [`status_table`]; `message` is present for a non-Fault answer.
fn outcome(code: u32, text: &str, message: Option<Message>) -> Result<Said, ProviderError> {
    let (name, meaning) = status_table(code);
    let provider_code = Some(code.to_string());
    let described = format!("MSSP {code} {name}: {text}");
    match (meaning, message) {
        (Meaning::Accepted | Meaning::Outstanding, Some(m)) => Ok(Said::Going {
            mssp_trans_id: m.mssp_trans_id,
        }),
        (Meaning::Signed, Some(m)) => Ok(Said::Done(signed(code, m))),
        (Meaning::Transient, _) => Err(ProviderError::Transient(described)),
        (Meaning::Rejected, _) => Ok(Said::Done(Outcome::Rejected { provider_code })),
        (Meaning::Expired, _) => Ok(Said::Done(Outcome::Expired { provider_code })),
        (Meaning::Failed(error), _) => Ok(Said::Done(Outcome::Failed(Failure {
            code: error,
            provider_code,
            message: described,
        }))),
        // Progress or success codes inside a Fault make no sense.
        (Meaning::Accepted | Meaning::Outstanding | Meaning::Signed, None) => Ok(Said::Done(
            Outcome::Failed(failure(provider_code, &format!("a Fault with {described}"))),
        )),
    }
}

/// A signature answer: raw PKCS#1, or a CMS the carrier chose to send; the certificate comes
/// from the CMS or from the answer's `X509Certificate` elements.
fn signed(code: u32, m: Message) -> Outcome {
    let provider_code = Some(code.to_string());
    let from_answer = bundle(m.certificates);
    let bytes = match m.signature {
        Some(Signature::Bytes(b)) if !b.is_empty() => b,
        Some(Signature::Unsupported(form)) => {
            let msg = format!("the MSSP signed as `{form}`, which kyso does not read");
            return Outcome::Failed(failure(provider_code, &msg));
        }
        _ => {
            let msg = format!("the MSSP answered {code} without a signature");
            return Outcome::Failed(failure(provider_code, &msg));
        }
    };
    // A raw RSA signature is never a well-formed SignedData, so trying costs nothing.
    match cms::parse(&bytes) {
        Ok(parts) => match parts.signature {
            CmsSignature::Raw { signature, scheme } => Outcome::Signed {
                signature,
                scheme,
                certificate: parts.certificate.or(from_answer),
            },
            CmsSignature::SignedAttributes => Outcome::SignedCms {
                cms: bytes,
                certificate: parts.certificate.or(from_answer),
            },
        },
        Err(_) => Outcome::Signed {
            signature: bytes,
            scheme: Scheme::Pkcs1v15,
            certificate: from_answer,
        },
    }
}

/// Certificates in any order → the signer's first, the others as its chain. The signer is the
/// first certificate that issued none of the others.
pub(super) fn bundle(ders: Vec<Vec<u8>>) -> Option<CertBundle> {
    let parsed: Vec<(Vec<u8>, x509_cert::Certificate)> = ders
        .into_iter()
        .filter_map(|d| x509_cert::Certificate::from_der(&d).ok().map(|c| (d, c)))
        .collect();
    let subject = |c: &x509_cert::Certificate| c.tbs_certificate.subject.to_der().ok();
    let issuer = |c: &x509_cert::Certificate| c.tbs_certificate.issuer.to_der().ok();
    let leaf = parsed.iter().position(|(_, c)| {
        !parsed.iter().any(|(_, other)| {
            !std::ptr::eq(c, other) && subject(c).is_some() && subject(c) == issuer(other)
        })
    })?;
    let mut chain = Vec::new();
    let mut certificate = Vec::new();
    for (i, (der, _)) in parsed.into_iter().enumerate() {
        if i == leaf {
            certificate = der;
        } else {
            chain.push(der);
        }
    }
    Some(CertBundle { certificate, chain })
}

/// The engine passes the session's normalised MSISDN; anything else never reaches the wire.
pub(super) fn check_msisdn(signer: &str) -> Result<&str, ProviderError> {
    let ok = (8..=15).contains(&signer.len()) && signer.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(signer)
    } else {
        Err(final_error(None, "the signer is not an MSISDN"))
    }
}

/// An `MSSP_TransID` kyso will echo: an NCName-like token of sane length.
pub(super) fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(super) fn failure(provider_code: Option<String>, message: &str) -> Failure {
    Failure {
        code: ErrorCode::ProviderError,
        provider_code,
        message: message.to_owned(),
    }
}

pub(super) fn final_error(provider_code: Option<String>, message: &str) -> ProviderError {
    ProviderError::Final(failure(provider_code, message))
}

fn transient(port: &str, why: &str) -> ProviderError {
    ProviderError::Transient(format!("MSSP {port}: {why}"))
}

/// Reads at most [`MAX_DOCUMENT_BYTES`], whatever the peer announces or sends.
async fn read_capped(resp: reqwest::Response, port: &str) -> Result<Vec<u8>, ProviderError> {
    outbound::read_capped(resp, MAX_DOCUMENT_BYTES)
        .await
        .map_err(|e| match e {
            outbound::ReadError::TooLarge(_) => final_error(None, &format!("MSSP {port}: {e}")),
            outbound::ReadError::Transport(e) => transient(port, &e.to_string()),
        })
}
