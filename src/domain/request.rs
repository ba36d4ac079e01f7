//! A portal's request for a signature, validated into a [`NewSignature`] before anything is
//! stored or sent. Every rejection names the field and the rule it broke.

use base64::prelude::{Engine, BASE64_STANDARD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::verification_code;

pub const MAX_DATA_BYTES: usize = 1024 * 1024;
pub const MAX_DISPLAY_CHARS: usize = 200;
pub const MAX_REFERENCE_CHARS: usize = 128;
pub const MAX_DOCUMENT_NAME_CHARS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Register,
    Login,
    Sign,
}

impl Purpose {
    fn default_text(self) -> &'static str {
        match self {
            Purpose::Register => "Đăng ký tài khoản",
            Purpose::Login => "Đăng nhập",
            Purpose::Sign => "Ký tài liệu",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A raw RSA signature over the digest.
    #[default]
    Pkcs1,
    /// A detached CMS SignedData assembled by kyso.
    Cms,
}

/// The body of `POST /v1/signatures` as the portal sends it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureInput {
    /// A configured provider id, e.g. `vnpt-smartca`.
    pub provider: String,
    /// The provider's user id (CCCD, CMND, MST…) or, for SIM providers, an MSISDN.
    pub signer: String,
    pub purpose: Purpose,
    /// base64 of a 32-byte SHA-256 digest; give either `digest` or `data`.
    pub digest: Option<String>,
    /// base64 of the bytes to sign (≤ 1 MiB); kyso hashes them.
    pub data: Option<String>,
    pub display_text: Option<String>,
    pub document_name: Option<String>,
    /// 30–600 seconds; the provider's default when absent.
    pub timeout_s: Option<u32>,
    pub reference: Option<String>,
    pub format: Option<Format>,
}

/// How the signer field must look for a provider kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerRule {
    /// A remote-signing user id: digits, optionally a 3-digit branch suffix (`0101234567-001`).
    UserId,
    /// A Vietnamese mobile number.
    Msisdn,
}

#[derive(Debug, Clone)]
pub struct NewSignature {
    pub provider: String,
    pub signer: String,
    pub purpose: crate::domain::Purpose,
    pub digest: [u8; 32],
    pub verification_code: String,
    /// What the phone shows, with the verification code in it.
    pub display_text: String,
    pub document_name: Option<String>,
    pub timeout_s: u32,
    pub reference: Option<String>,
    pub format: Format,
    /// SHA-256 of the canonical request, to tell an idempotent retry from a different request.
    pub request_hash: [u8; 32],
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> RequestError {
    RequestError::Invalid {
        field,
        reason: reason.into(),
    }
}

pub struct Limits {
    pub signer_rule: SignerRule,
    pub default_timeout_s: u32,
    pub min_timeout_s: u32,
    pub max_timeout_s: u32,
}

impl NewSignature {
    pub fn parse(input: SignatureInput, limits: &Limits) -> Result<Self, RequestError> {
        let request_hash: [u8; 32] =
            Sha256::digest(serde_json::to_vec(&input).unwrap_or_default()).into();
        let signer = validate_signer(limits.signer_rule, &input.signer)?;
        let digest = match (&input.digest, &input.data) {
            (Some(d), None) => {
                let bytes = decode_b64("digest", d)?;
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    invalid(
                        "digest",
                        format!("must be 32 bytes (SHA-256), got {}", bytes.len()),
                    )
                })?
            }
            (None, Some(d)) => {
                if d.len() > MAX_DATA_BYTES / 3 * 4 + 4 {
                    return Err(invalid("data", "must be at most 1 MiB"));
                }
                Sha256::digest(decode_b64("data", d)?).into()
            }
            _ => return Err(invalid("digest", "give exactly one of `digest` or `data`")),
        };
        let timeout_s = input.timeout_s.unwrap_or(limits.default_timeout_s);
        if !(limits.min_timeout_s..=limits.max_timeout_s).contains(&timeout_s) {
            return Err(invalid(
                "timeout_s",
                format!(
                    "must be between {} and {}",
                    limits.min_timeout_s, limits.max_timeout_s
                ),
            ));
        }
        let reference = bounded_text("reference", input.reference, MAX_REFERENCE_CHARS)?;
        let document_name = bounded_text(
            "document_name",
            input.document_name,
            MAX_DOCUMENT_NAME_CHARS,
        )?;
        let text = bounded_text("display_text", input.display_text, MAX_DISPLAY_CHARS)?;
        let format = input.format.unwrap_or_default();
        let code = verification_code(&digest);
        let text = text.unwrap_or_else(|| input.purpose.default_text().to_owned());
        Ok(Self {
            provider: input.provider,
            signer,
            purpose: input.purpose,
            digest,
            display_text: format!("{text} - Mã xác nhận {code}"),
            verification_code: code,
            document_name,
            timeout_s,
            reference,
            format,
            request_hash,
        })
    }
}

/// Checks a signer id by the provider's rule and returns it in stored form.
pub fn validate_signer(rule: SignerRule, signer: &str) -> Result<String, RequestError> {
    match rule {
        SignerRule::UserId => parse_user_id(signer),
        SignerRule::Msisdn => normalize_msisdn(signer)
            .ok_or_else(|| invalid("signer", "must be a Vietnamese mobile number")),
    }
}

fn decode_b64(field: &'static str, s: &str) -> Result<Vec<u8>, RequestError> {
    BASE64_STANDARD
        .decode(s.trim())
        .map_err(|e| invalid(field, format!("is not valid base64 ({e})")))
}

fn bounded_text(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, RequestError> {
    let Some(v) = value else {
        return Ok(None);
    };
    if v.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if let Some(c) = super::text::first_unshowable(&v) {
        return Err(invalid(
            field,
            format!(
                "must not contain control, format or line-separator characters (found U+{:04X})",
                c as u32
            ),
        ));
    }
    Ok((!v.trim().is_empty()).then_some(v))
}

fn parse_user_id(s: &str) -> Result<String, RequestError> {
    let (main, branch) = match s.split_once('-') {
        Some((m, b)) => (m, Some(b)),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let ok = digits(main)
        && (9..=13).contains(&main.len())
        && branch.is_none_or(|b| b.len() == 3 && digits(b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(invalid(
            "signer",
            "must be the provider's user id: 9 to 13 digits, optionally with a -NNN branch",
        ))
    }
}

/// `+84…`, `84…` or `0…` → `84…`, accepting only Vietnamese mobile numbers (9 digits after
/// the country code, starting 3, 5, 7, 8 or 9).
pub fn normalize_msisdn(s: &str) -> Option<String> {
    let compact: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect();
    let national = compact
        .strip_prefix("+84")
        .or_else(|| compact.strip_prefix("84"))
        .or_else(|| compact.strip_prefix('0'))?;
    let ok = national.len() == 9
        && national.bytes().all(|b| b.is_ascii_digit())
        && matches!(national.as_bytes()[0], b'3' | b'5' | b'7' | b'8' | b'9');
    ok.then(|| format!("84{national}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            signer_rule: SignerRule::UserId,
            default_timeout_s: 300,
            min_timeout_s: 30,
            max_timeout_s: 600,
        }
    }

    fn input() -> SignatureInput {
        SignatureInput {
            provider: "vnpt-smartca".into(),
            signer: "001099012345".into(),
            purpose: Purpose::Register,
            digest: Some(BASE64_STANDARD.encode([1u8; 32])),
            data: None,
            display_text: None,
            document_name: None,
            timeout_s: None,
            reference: None,
            format: None,
        }
    }

    #[test]
    fn the_verification_code_is_put_into_the_display_text() {
        let s = NewSignature::parse(input(), &limits()).expect("valid");
        assert!(s.display_text.contains(&s.verification_code));
    }

    #[test]
    fn a_digest_that_is_not_32_bytes_is_refused() {
        let mut i = input();
        i.digest = Some(BASE64_STANDARD.encode([1u8; 20]));
        let err = NewSignature::parse(i, &limits()).expect_err("refused");
        assert!(matches!(
            err,
            RequestError::Invalid {
                field: "digest",
                ..
            }
        ));
    }

    #[test]
    fn data_is_hashed_with_sha256() {
        let mut i = input();
        i.digest = None;
        i.data = Some(BASE64_STANDARD.encode(b"hello"));
        let s = NewSignature::parse(i, &limits()).expect("valid");
        assert_eq!(s.digest, <[u8; 32]>::from(Sha256::digest(b"hello")));
    }

    #[test]
    fn signer_ids_must_be_digits() {
        for bad in ["abc", "00109901234x", "12345678", "0101234567-01", ""] {
            let mut i = input();
            i.signer = bad.into();
            assert!(NewSignature::parse(i, &limits()).is_err(), "{bad}");
        }
        for good in ["0101234567", "0101234567-001", "001099012345"] {
            let mut i = input();
            i.signer = good.into();
            assert!(NewSignature::parse(i, &limits()).is_ok(), "{good}");
        }
    }

    #[test]
    fn msisdns_are_normalised_to_84() {
        assert_eq!(
            normalize_msisdn("0912345678").as_deref(),
            Some("84912345678")
        );
        assert_eq!(
            normalize_msisdn("+84912345678").as_deref(),
            Some("84912345678")
        );
        assert_eq!(
            normalize_msisdn("84912345678").as_deref(),
            Some("84912345678")
        );
        assert_eq!(normalize_msisdn("0212345678"), None);
        assert_eq!(normalize_msisdn("09123"), None);
    }

    #[test]
    fn timeouts_out_of_range_are_refused() {
        let mut i = input();
        i.timeout_s = Some(5);
        assert!(NewSignature::parse(i, &limits()).is_err());
    }
}
