//! VNPT SmartCA "SP769" wire format, written from `protocols/vnpt-smartca.md` (not shared with
//! the gateway): request bodies as sent by service providers, the `{status_code, message,
//! data}` envelope, and — in [`Answer`] — the one table of `status_code`/`message` pairs the
//! mock uses, including the codes borrowed from VNPT's older API for outcomes SP769 has no
//! code for (refusal 4002, expiry 4001).

use serde::{Deserialize, Serialize};

/// `POST /v1/credentials/get_certificate`. Every field is optional here so a missing one is
/// answered with status_code 400 and a message, not a serde error.
#[derive(Debug, Default, Deserialize)]
pub struct CertificateRequest {
    pub sp_id: Option<String>,
    pub sp_password: Option<String>,
    pub user_id: Option<String>,
    pub serial_number: Option<String>,
    // `transaction_id` is accepted and ignored (serde skips unknown fields).
}

/// `POST /v1/signatures/sign`.
#[derive(Debug, Default, Deserialize)]
pub struct SignRequest {
    pub sp_id: Option<String>,
    pub sp_password: Option<String>,
    pub user_id: Option<String>,
    pub transaction_id: Option<String>,
    pub transaction_desc: Option<String>,
    pub serial_number: Option<String>,
    // `time_stamp` is informative and ignored.
    pub sign_files: Option<Vec<SignFile>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SignFile {
    pub data_to_be_signed: Option<String>,
    pub doc_id: Option<String>,
    // `file_type` (pdf, xml, word, json) is informative and ignored.
    pub sign_type: Option<String>,
}

/// `POST /v1/signatures/sign/{tran_id}/status`: public samples send `{}`; credentials, when
/// present, are checked.
#[derive(Debug, Default, Deserialize)]
pub struct StatusRequest {
    pub sp_id: Option<String>,
    pub sp_password: Option<String>,
}

/// Every answer: `{status_code, message, data}`; `data` is `null` on errors.
#[derive(Debug, Serialize)]
pub struct Envelope<T: Serialize> {
    pub status_code: u16,
    pub message: String,
    pub data: Option<T>,
}

#[derive(Debug, Serialize)]
pub struct CertificateList {
    pub user_certificates: Vec<UserCertificate>,
}

#[derive(Debug, Serialize)]
pub struct UserCertificate {
    /// `SMARTCA` for a person, `ESEAL` for an organisation seal.
    pub service_type: &'static str,
    pub service_name: &'static str,
    pub cert_id: String,
    pub cert_status: &'static str,
    pub serial_number: String,
    pub cert_subject: String,
    /// RFC 3339, UTC.
    pub cert_valid_from: String,
    pub cert_valid_to: String,
    /// Base64 DER.
    pub cert_data: String,
    pub chain_data: ChainData,
}

#[derive(Debug, Serialize)]
pub struct ChainData {
    pub ca_cert: String,
    pub root_cert: Option<String>,
}

/// `cert_status` values. Real accounts mix Vietnamese text, numbers and English; the mock
/// always answers in Vietnamese.
pub const CERT_STATUS_ACTIVE: &str = "Đang hoạt động";
pub const CERT_STATUS_LOCKED: &str = "Đã bị khóa";

#[derive(Debug, Serialize)]
pub struct SignAccepted {
    pub transaction_id: String,
    pub tran_code: String,
}

#[derive(Debug, Serialize)]
pub struct SignStatus {
    pub transaction_id: String,
    /// `null` until the user confirms (and after a refusal or expiry).
    pub signatures: Option<Vec<SignedFile>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignedFile {
    pub doc_id: String,
    /// Base64 of the raw RSA PKCS#1 v1.5 signature over the digest.
    pub signature_value: String,
    /// The mock runs no timestamp authority: always `null`.
    pub timestamp_signature: Option<String>,
}

/// The push to the service provider's callback URL.
#[derive(Debug, Serialize)]
pub struct Webhook {
    pub sp_id: String,
    pub status_code: u16,
    pub message: String,
    pub transaction_id: String,
    /// The signatures when signed, `null` otherwise.
    pub signed_files: Option<Vec<SignedFile>>,
}

/// Every outcome the mock reports, with its `status_code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Certificates listed; request signed.
    Success,
    /// Sign accepted and pushed to the phone; status while the phone has not answered.
    WaitingForUser,
    /// A field is missing or malformed.
    BadRequest(String),
    /// `sp_id`/`sp_password` wrong.
    SpCredentialInvalid,
    /// The signer's certificate/account is locked (PIN blocked).
    CredentialStatusInvalid,
    /// The signer has no certificate at this provider (not subscribed).
    CredentialNotFound,
    /// Status asked for an id the mock does not know.
    TransactionNotFound,
    /// The user refused on the phone (older VNPT API code 4002).
    SignerRejected,
    /// Nobody answered within the mock's confirmation window (older VNPT API code 4001).
    TransactionExpired,
    /// The transaction id was already used for a different user.
    DuplicateTransaction,
    /// Simulated or real server failure.
    InternalError,
    /// Simulated overload, or the mock's request book is full.
    Unavailable,
}

impl Answer {
    pub fn code(&self) -> (u16, String) {
        let (code, message) = match self {
            Self::Success => (200, "success"),
            Self::WaitingForUser => (200, "sig_wait_for_user_confirm"),
            Self::BadRequest(why) => return (400, why.clone()),
            Self::SpCredentialInvalid => (401, "sp credential invalid"),
            Self::CredentialStatusInvalid => (403, "credential status invalid"),
            Self::CredentialNotFound => (404, "credential not found"),
            Self::TransactionNotFound => (404, "transaction not found"),
            Self::DuplicateTransaction => (400, "transaction_id already used"),
            Self::SignerRejected => (4002, "signer_rejected"),
            Self::TransactionExpired => (4001, "transaction_expired"),
            Self::InternalError => (500, "internal error"),
            Self::Unavailable => (503, "service unavailable"),
        };
        (code, message.to_owned())
    }

    pub fn envelope<T: Serialize>(&self, data: Option<T>) -> Envelope<T> {
        let (status_code, message) = self.code();
        Envelope {
            status_code,
            message,
            data,
        }
    }
}
