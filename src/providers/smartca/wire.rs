//! The VNPT SmartCA "SP769" wire format: serde DTOs for get_certificate, sign, the status poll
//! and the webhook, written from the protocol notes (shared protocols/vnpt-smartca.md), their
//! conversions into provider types, and the two tables that turn VNPT's loose values into
//! kyso's terms: [`classify`] for `status_code` and [`normalise_cert_status`] for `cert_status`.
//! Responses are read leniently (unknown fields ignored, numbers or strings where VNPT is
//! inconsistent); requests are written exactly.

use base64::prelude::{Engine, BASE64_STANDARD};
use chrono::{DateTime, NaiveDateTime, Utc};
use der::Decode;
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::ErrorCode;
use crate::providers::{CertBundle, Failure, Outcome, ProviderError};

pub const SERVICE_PERSON: &str = "SMARTCA";
pub const SERVICE_SEAL: &str = "ESEAL";

/// `POST /v1/credentials/get_certificate`. No `Debug`: it carries the SP password.
#[derive(Serialize)]
pub struct GetCertificateRequest<'a> {
    pub sp_id: &'a str,
    pub sp_password: &'a str,
    pub user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<&'a str>,
    pub transaction_id: &'a str,
}

/// `POST /v1/signatures/sign`. No `Debug`: it carries the SP password.
#[derive(Serialize)]
pub struct SignRequest<'a> {
    pub sp_id: &'a str,
    pub sp_password: &'a str,
    pub user_id: &'a str,
    pub transaction_id: &'a str,
    pub transaction_desc: &'a str,
    pub serial_number: &'a str,
    /// `yyyyMMddHHmmssZ`, UTC.
    pub time_stamp: String,
    /// Several files form one batch the user confirms once.
    pub sign_files: Vec<SignFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignFile {
    /// Lowercase hex of the SHA-256 digest.
    pub data_to_be_signed: String,
    /// What the app shows next to the request.
    pub doc_id: String,
    /// pdf, xml, word or json; informative only.
    pub file_type: &'static str,
    /// Always `hash`: kyso never ships documents to the provider.
    pub sign_type: &'static str,
}

/// Every SP769 answer: a code, a message and an endpoint-specific `data`.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    #[serde(deserialize_with = "code_text")]
    pub status_code: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default = "Option::default")]
    pub data: Option<T>,
}

impl<T> Envelope<T> {
    pub fn classify(&self) -> Classified {
        classify(&self.status_code, self.message.as_deref().unwrap_or(""))
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct CertificateData {
    #[serde(default)]
    pub user_certificates: Option<Vec<UserCertificate>>,
}

// Documented fields kyso does not act on are kept: the DTOs mirror the protocol notes.
#[allow(dead_code)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserCertificate {
    pub service_type: Option<String>,
    pub service_name: Option<String>,
    #[serde(default, deserialize_with = "opt_code_text")]
    pub cert_id: Option<String>,
    /// Vietnamese text, a number or English depending on the account.
    #[serde(default, deserialize_with = "opt_code_text")]
    pub cert_status: Option<String>,
    #[serde(default, deserialize_with = "opt_code_text")]
    pub serial_number: Option<String>,
    pub cert_subject: Option<String>,
    pub cert_valid_from: Option<String>,
    pub cert_valid_to: Option<String>,
    /// base64 DER of the user certificate.
    pub cert_data: Option<String>,
    pub chain_data: Option<ChainData>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChainData {
    pub ca_cert: Option<String>,
    /// May be null.
    pub root_cert: Option<String>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
pub struct SignData {
    pub transaction_id: Option<String>,
    #[serde(default, deserialize_with = "opt_code_text")]
    pub tran_code: Option<String>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
pub struct StatusData {
    pub transaction_id: Option<String>,
    /// `null` until the user confirms.
    pub signatures: Option<Vec<SignedFile>>,
}

#[allow(dead_code)]
#[derive(Debug, Clone, Deserialize)]
pub struct SignedFile {
    pub doc_id: Option<String>,
    /// Some converted VNPT documentation writes the key with a trailing space.
    #[serde(alias = "signature_value ")]
    pub signature_value: Option<String>,
    pub timestamp_signature: Option<String>,
}

/// The push sent to the callback URL registered with VNPT. Unauthenticated: only a hint.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
pub struct Webhook {
    pub sp_id: Option<String>,
    #[serde(default, deserialize_with = "opt_code_text")]
    pub status_code: Option<String>,
    pub message: Option<String>,
    pub transaction_id: String,
    pub signed_files: Option<Vec<SignedFile>>,
}

impl StatusData {
    /// The first non-empty signature; `None` while the user has not confirmed.
    pub fn into_signature(self) -> Option<String> {
        self.signatures?
            .into_iter()
            .find_map(|s| s.signature_value.filter(|v| !v.trim().is_empty()))
    }
}

impl UserCertificate {
    /// The certificate as kyso hands it on, issuer first. An undecodable intermediate is
    /// dropped: the verifier can still use the intermediates configured for the provider.
    pub fn bundle(&self) -> Option<CertBundle> {
        let certificate = decode_b64(self.cert_data.as_deref()?)?;
        let chain = self
            .chain_data
            .iter()
            .flat_map(|c| [&c.ca_cert, &c.root_cert]);
        let chain = chain.filter_map(|c| decode_b64(c.as_deref()?)).collect();
        Some(CertBundle { certificate, chain })
    }

    /// The validity period, from the DER when it parses (authoritative, and its format is
    /// fixed), else from VNPT's date strings, whose format is undocumented.
    pub fn validity(&self, der: &[u8]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if let Ok(v) = der_validity(der) {
            let at = |t: x509_cert::time::Time| DateTime::<Utc>::from(t.to_system_time());
            return Some((at(v.not_before), at(v.not_after)));
        }
        let from = parse_date(self.cert_valid_from.as_deref()?)?;
        Some((from, parse_date(self.cert_valid_to.as_deref()?)?))
    }
}

/// A certificate's validity, read without decoding the rest of it: every signer's
/// certificates are looked at on every start, and a full decode (names, key, extensions)
/// was 2 % of the gateway's CPU. The fields before the validity are skipped as whole TLVs,
/// the ones after it as one slice; verification decodes the chosen certificate in full.
pub fn der_validity(der: &[u8]) -> der::Result<x509_cert::time::Validity> {
    use der::{asn1::AnyRef, Reader, Tag, TagNumber};
    const VERSION: Tag = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    fn skip_rest<'r>(r: &mut impl Reader<'r>) -> der::Result<()> {
        r.read_slice(r.remaining_len()).map(drop)
    }
    let mut reader = der::SliceReader::new(der)?;
    let validity = reader.sequence(|cert| {
        let validity = cert.sequence(|tbs| {
            if tbs.peek_tag()? == VERSION {
                AnyRef::decode(tbs)?; // [0] version
            }
            AnyRef::decode(tbs)?; // serialNumber
            AnyRef::decode(tbs)?; // signature
            AnyRef::decode(tbs)?; // issuer
            let validity = x509_cert::time::Validity::decode(tbs)?;
            skip_rest(tbs)?;
            Ok(validity)
        })?;
        skip_rest(cert)?;
        Ok(validity)
    })?;
    reader.finish(validity)
}

pub fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .map(|t| t.and_utc())
}

/// What a `status_code` means for kyso.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    Ok,
    Transient(String),
    Rejected { provider_code: String },
    Expired { provider_code: String },
    Failed(Failure),
}

impl Classified {
    /// For endpoints where anything but success ends the attempt (all but the status poll).
    pub fn require_ok(self) -> Result<(), ProviderError> {
        match self {
            Classified::Ok => Ok(()),
            Classified::Transient(msg) => Err(ProviderError::Transient(msg)),
            Classified::Failed(f) => Err(ProviderError::Final(f)),
            Classified::Rejected { provider_code } | Classified::Expired { provider_code } => {
                Err(ProviderError::Final(Failure {
                    message: format!("VNPT SmartCA answered {provider_code} outside a status poll"),
                    code: ErrorCode::ProviderError,
                    provider_code: Some(provider_code),
                }))
            }
        }
    }

    /// For the status poll, where refusal and expiry are outcomes. `None`: success, read on.
    pub fn status_outcome(self) -> Result<Option<Outcome>, ProviderError> {
        Ok(Some(match self {
            Classified::Ok => return Ok(None),
            Classified::Transient(msg) => return Err(ProviderError::Transient(msg)),
            Classified::Failed(f) => Outcome::Failed(f),
            Classified::Rejected { provider_code } => Outcome::Rejected {
                provider_code: Some(provider_code),
            },
            Classified::Expired { provider_code } => Outcome::Expired {
                provider_code: Some(provider_code),
            },
        }))
    }
}

/// The one table of SP769 status codes.
pub fn classify(status_code: &str, message: &str) -> Classified {
    let message = clip(message, 200);
    let failed = |code, meaning: &str| {
        Classified::Failed(Failure {
            code,
            provider_code: Some(status_code.to_owned()),
            message: format!("VNPT SmartCA {status_code}: {meaning} ({message})"),
        })
    };
    let sp = "the gateway's sp_id/sp_password were refused (check the provider config)";
    match status_code {
        "200" => Classified::Ok,
        "400" => failed(ErrorCode::ProviderError, "bad request"),
        "401" => failed(ErrorCode::ProviderError, sp),
        "403" => failed(ErrorCode::PinBlocked, "certificate or account locked"),
        "500" => Classified::Transient(format!("VNPT SmartCA 500: internal error ({message})")),
        // Unconfirmed guess: SP769 documents no refusal or expiry, but the older VNPT SmartCA
        // family reports them as 4002 and 4001, and the mock carriers answer a status poll
        // that way. Only the status poll honours these two (see `require_ok`). The same family's
        // 4000 ("waiting for the signer") reads as a poll with no signature yet.
        "4000" => Classified::Ok,
        "4001" => Classified::Expired {
            provider_code: status_code.to_owned(),
        },
        "4002" => Classified::Rejected {
            provider_code: status_code.to_owned(),
        },
        _ => failed(ErrorCode::ProviderError, "unexpected status code"),
    }
}

/// `cert_status` reduced to what choosing a certificate needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Active,
    Locked,
    Revoked,
    Expired,
    /// A value this table does not know: kept usable, so VNPT's own check decides at sign time
    /// instead of kyso refusing a signer over a wording it has not seen.
    Unknown,
}

impl CertStatus {
    /// Why a certificate in this state cannot sign, as the session's error code.
    pub fn refusal(self) -> Option<ErrorCode> {
        match self {
            CertStatus::Locked => Some(ErrorCode::PinBlocked),
            CertStatus::Revoked => Some(ErrorCode::RevokedCertificate),
            CertStatus::Expired => Some(ErrorCode::CertificateExpired),
            CertStatus::Active | CertStatus::Unknown => None,
        }
    }
}

/// The `cert_status` table, matched on lowercase text with Vietnamese diacritics folded away.
/// Negative phrases come first because they contain positive ones ("ngung hoat dong" holds
/// "hoat dong", "inactive" holds "active").
pub fn normalise_cert_status(raw: &str) -> CertStatus {
    use CertStatus::*;
    const TABLE: &[(&str, CertStatus)] = &[
        ("thu hoi", Revoked),
        ("revoked", Revoked),
        ("het han", Expired),
        ("expired", Expired),
        ("khoa", Locked),
        ("lock", Locked),
        ("suspend", Locked),
        ("ngung", Locked),
        ("khong hoat dong", Locked),
        ("chua kich hoat", Locked),
        ("inactive", Locked),
        ("invalid", Locked),
        ("disabled", Locked),
        ("hoat dong", Active),
        ("active", Active),
        ("valid", Active),
        ("enabled", Active),
    ];
    let text = fold(raw);
    // Numeric statuses (unconfirmed): 1 is the usual "in use" flag, 0 "not in use".
    match text.as_str() {
        "1" => Active,
        "0" => Locked,
        _ => TABLE
            .iter()
            .find(|(needle, _)| text.contains(needle))
            .map_or(Unknown, |&(_, status)| status),
    }
}

/// Lowercase ASCII with Vietnamese diacritics removed, whether the text arrives precomposed
/// (NFC) or decomposed (NFD), and `_`/`-` read as spaces.
fn fold(raw: &str) -> String {
    const GROUPS: &[(char, &str)] = &[
        ('a', "àáảãạăằắẳẵặâầấẩẫậ"),
        ('e', "èéẻẽẹêềếểễệ"),
        ('i', "ìíỉĩị"),
        ('o', "òóỏõọôồốổỗộơờớởỡợ"),
        ('u', "ùúủũụưừứửữự"),
        ('y', "ỳýỷỹỵ"),
        ('d', "đ"),
        (' ', "_-"),
    ];
    let lower = raw.trim().chars().flat_map(char::to_lowercase);
    lower
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .map(|c| {
            GROUPS
                .iter()
                .find(|(_, g)| g.contains(c))
                .map_or(c, |&(base, _)| base)
        })
        .collect()
}

/// base64 as VNPT sends it, sometimes wrapped over several lines.
pub fn decode_b64(text: &str) -> Option<Vec<u8>> {
    let wrapped = text.bytes().any(|b| b.is_ascii_whitespace());
    let decoded = if wrapped {
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        BASE64_STANDARD.decode(compact)
    } else {
        BASE64_STANDARD.decode(text)
    };
    decoded.ok().filter(|d| !d.is_empty())
}

/// Provider text ends up in session errors: keep it short.
pub fn clip(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// VNPT sends codes as numbers or as strings; both become the same text.
fn code_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    opt_code_text(d)?.ok_or_else(|| serde::de::Error::custom("expected a code, found null"))
}

fn opt_code_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.trim().to_owned())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(serde::de::Error::custom("expected a string or a number")),
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
