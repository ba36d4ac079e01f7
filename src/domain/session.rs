//! The session: one signature request from a portal, its state machine and its result.

use base64::prelude::{Engine, BASE64_STANDARD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::{Format, Purpose};
use crate::verify::{Identity, Verification};

/// `ses_` + a ULID: 48 bits of creation time, then 80 random bits fresh for every id, so an
/// id tells nothing about any other (another tenant's, or the next one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    const PREFIX: &'static str = "ses_";

    /// Ids sort by creation time to the millisecond; within one millisecond their order is
    /// random. A monotonic generator would order those too, but its ids differ by one: a
    /// caller holding one id could count the sessions made beside it, across tenants, and
    /// name them (in a forged provider callback, say).
    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, ulid::Ulid::new()))
    }

    /// Accepts only ids this gateway could have made, so a path or callback cannot smuggle
    /// arbitrary text into queries or logs.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(Self::PREFIX)?;
        ulid::Ulid::from_string(rest).ok()?;
        Some(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The transaction id sent to providers. Derived, never random, so a retry or a restart
    /// re-sends the same id and the provider does not show a second prompt.
    pub fn transaction_id(&self) -> String {
        format!("kyso-{}", self.0)
    }

    pub fn from_transaction_id(tx: &str) -> Option<Self> {
        Self::parse(tx.strip_prefix("kyso-")?)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    AwaitingUser,
    Signed,
    Rejected,
    Expired,
    Cancelled,
    Failed,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::AwaitingUser,
        Status::Signed,
        Status::Rejected,
        Status::Expired,
        Status::Cancelled,
        Status::Failed,
    ];

    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Pending | Status::AwaitingUser)
    }

    /// The whole state machine of SPEC §2.2: pending → awaiting_user → one terminal state,
    /// pending may end directly, and a terminal state never changes again.
    pub fn can_become(self, next: Status) -> bool {
        match (self, next) {
            (from, _) if from.is_terminal() => false,
            (Status::Pending, Status::Pending) => false,
            (Status::AwaitingUser, Status::Pending | Status::AwaitingUser) => false,
            _ => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::AwaitingUser => "awaiting_user",
            Status::Signed => "signed",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Why a session failed (or, for `prompt_not_withdrawn`, what a cancel could not undo); the
/// portal branches on these, so they are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    PinBlocked,
    NoCertificate,
    NotSubscribed,
    ProviderError,
    ProviderUnavailable,
    InvalidSignature,
    UntrustedCertificate,
    RevokedCertificate,
    CertificateExpired,
    SignerMismatch,
    /// On a `cancelled` session: the request had reached (or may have reached) the phone, and
    /// the provider's protocol cannot withdraw it; the user may still see it, and any answer
    /// is ignored.
    PromptNotWithdrawn,
}

impl ErrorCode {
    /// Maps the verifier's verdict codes onto session error codes.
    pub fn from_verdict(code: &str) -> Self {
        match code {
            "invalid_signature" => ErrorCode::InvalidSignature,
            "certificate_expired" => ErrorCode::CertificateExpired,
            "revoked_certificate" => ErrorCode::RevokedCertificate,
            "signer_mismatch" => ErrorCode::SignerMismatch,
            _ => ErrorCode::UntrustedCertificate,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default)]
    pub provider_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignResult {
    pub format: Format,
    pub algorithm: String,
    /// base64
    pub signature: String,
    /// base64 DER
    pub certificate: String,
    /// base64 DER, issuer first
    pub chain: Vec<String>,
    #[schema(value_type = Object)]
    pub identity: Identity,
    #[schema(value_type = Object)]
    pub verification: Verification,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    #[schema(value_type = String, example = "ses_01JD3V6Q6M1T8K9ZJ4N7X2B5C8")]
    pub id: SessionId,
    pub tenant: String,
    pub provider: String,
    pub signer: String,
    pub purpose: Purpose,
    pub reference: Option<String>,
    pub status: Status,
    pub verification_code: String,
    #[serde(serialize_with = "as_base64", deserialize_with = "from_base64")]
    #[schema(value_type = String, format = Byte)]
    pub digest: [u8; 32],
    pub display_text: String,
    pub document_name: Option<String>,
    pub format: Format,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub result: Option<SignResult>,
    pub error: Option<SessionError>,
}

impl Session {
    /// Moves the session to `next`, refusing anything the state machine forbids. Every state
    /// change in the gateway goes through here.
    pub fn become_(&mut self, next: Status, now: DateTime<Utc>) -> bool {
        if !self.status.can_become(next) {
            return false;
        }
        self.status = next;
        if next.is_terminal() {
            self.completed_at = Some(now);
        }
        true
    }

    /// Cancels the session; `error` says what the cancel could not undo (a prompt left on the
    /// phone).
    pub fn cancel(&mut self, error: Option<SessionError>, now: DateTime<Utc>) -> bool {
        let changed = self.become_(Status::Cancelled, now);
        if changed {
            self.error = error;
        }
        changed
    }

    pub fn fail(&mut self, error: SessionError, now: DateTime<Utc>) -> bool {
        let changed = self.become_(Status::Failed, now);
        if changed {
            self.error = Some(error);
        }
        changed
    }
}

/// Smart-ID's scheme: the last two bytes of SHA-256(digest), big-endian, mod 10000.
pub fn verification_code(digest: &[u8; 32]) -> String {
    let h = Sha256::digest(digest);
    let n = u16::from_be_bytes([h[30], h[31]]) % 10000;
    format!("{n:04}")
}

fn as_base64<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&BASE64_STANDARD.encode(bytes))
}

fn from_base64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let s = String::deserialize(d)?;
    BASE64_STANDARD
        .decode(s)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| serde::de::Error::custom("digest must be 32 bytes of base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_state_never_changes() {
        for from in Status::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in Status::ALL {
                assert!(!from.can_become(to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn awaiting_user_cannot_go_back_to_pending() {
        assert!(!Status::AwaitingUser.can_become(Status::Pending));
        assert!(Status::Pending.can_become(Status::AwaitingUser));
        assert!(Status::AwaitingUser.can_become(Status::Signed));
        assert!(Status::Pending.can_become(Status::Failed));
    }

    #[test]
    fn verification_code_is_four_digits_from_the_digest_hash() {
        // Vectors computed outside this code (Python's hashlib; the last two bytes agree with
        // `openssl dgst -sha256`): int.from_bytes(sha256(digest)[30:32], "big") % 10000.
        let hello = Sha256::digest(b"hello world");
        for (digest, code) in [
            ([7u8; 32], "8112"),    // …94e0
            ([0u8; 32], "0533"),    // …2925, a leading zero kept
            ([0xffu8; 32], "6465"), // …4051
            (hello.into(), "7443"), // …4423
        ] {
            assert_eq!(verification_code(&digest), code, "{}", hex::encode(digest));
        }
    }

    #[test]
    fn ids_made_in_the_same_millisecond_share_no_more_than_their_time() {
        let ids: Vec<ulid::Ulid> = (0..64)
            .map(|_| {
                let id = SessionId::generate();
                ulid::Ulid::from_string(&id.as_str()[4..]).expect("a ULID")
            })
            .collect();
        let mut compared = 0;
        for pair in ids.windows(2) {
            if pair[0].timestamp_ms() != pair[1].timestamp_ms() {
                continue;
            }
            compared += 1;
            let gap = pair[0].random().abs_diff(pair[1].random());
            assert!(gap > 1 << 40, "{} then {}", pair[0], pair[1]);
        }
        assert!(compared > 0, "64 ids span more than 64 milliseconds");
    }

    #[test]
    fn transaction_ids_round_trip_to_session_ids() {
        let id = SessionId::generate();
        assert_eq!(
            SessionId::from_transaction_id(&id.transaction_id()),
            Some(id)
        );
        assert_eq!(SessionId::from_transaction_id("kyso-ses_nonsense"), None);
        assert_eq!(SessionId::parse("ses_'; drop table"), None);
    }
}
