//! The mock MSSP's reading of ETSI TS 102 204 requests (protocols/etsi-102-204.md): the
//! namespaces and URIs, the status-code table, MSISDN and NCName rules, the common header
//! (`AP_Info`) every request carries, and the typed forms of MSS_StatusReq, MSS_ReceiptReq and
//! MSS_ProfileReq (MSS_SignatureReq lives in `sign_req`). Every check that fails becomes the
//! fault the notes give: 108 for versions, 102 for a missing field, 104 for a wrong
//! AP_ID/AP_PWD, 101 for a malformed value, 103 for a receipt message over 160 characters.

use chrono::{DateTime, Utc};

use super::soap::{Element, Fault};
use super::ApCredentials;

pub const MSS_NS: &str = "http://uri.etsi.org/TS102204/v1.1.2#";
pub const VN_WRAPPER_NS: &str = "http://ae.mobile-id.vn/TS102204/etsi204";
pub const FICOM_NS: &str = "http://mss.ficom.fi/TS102204/v1.0.0#";
pub const METHICS_NS: &str = "http://www.methics.fi/KiuruMSSP/v5.0.0#";
pub const PROFILE_EXT_NS: &str = "http://www.methics.fi/TS102204/ext/v1.0.0";
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The signature profile every mock carrier supports (the VN one).
pub const PROFILE_URI: &str = "http://mobile-id.vn/digitalSignature";
/// The SHA-256 DigestInfo prefix (RFC 8017 §9.2); 19 bytes, then the 32-byte digest.
pub const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// Largest accepted TimeOut; also the longest a prompt stays on the phone.
pub const MAX_TIMEOUT_S: u64 = 600;
/// TimeOut when the request gives none (FiCom's default).
pub const DEFAULT_TIMEOUT_S: u64 = 300;
/// DataToBeDisplayed limits: GSM 03.38 text, and text that needs UCS-2 (Vietnamese).
pub const DISPLAY_LIMIT_GSM7: usize = 239;
pub const DISPLAY_LIMIT_UCS2: usize = 119;
/// Receipt message limit (FiCom).
const RECEIPT_LIMIT: usize = 160;
/// Largest Instant skew accepted, either way.
const MAX_SKEW_S: i64 = 600;

/// The name of an ETSI status code (§9).
pub fn status_name(code: u16) -> &'static str {
    match code {
        100 => "REQUEST_OK",
        101 => "WRONG_PARAM",
        102 => "MISSING_PARAM",
        103 => "WRONG_DATA_LENGTH",
        104 => "UNAUTHORIZED_ACCESS",
        105 => "UNKNOWN_CLIENT",
        107 => "INAPPROPRIATE_DATA",
        108 => "INCOMPATIBLE_INTERFACE",
        109 => "UNSUPPORTED_PROFILE",
        208 => "EXPIRED_TRANSACTION",
        401 => "USER_CANCEL",
        402 => "PIN_NR_BLOCKED",
        404 => "NO_KEY_FOUND",
        406 => "PB_SIGNATURE_PROCESS",
        500 => "SIGNATURE",
        501 => "REVOKED_CERTIFICATE",
        502 => "VALID_SIGNATURE",
        503 => "INVALID_SIGNATURE",
        504 => "OUTSTANDING_TRANSACTION",
        900 => "INTERNAL_ERROR",
        _ => "UNKNOWN",
    }
}

/// Escapes text for XML content and double-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// `84` + 9 digits from `84…`, `+84…` or `0…`; `None` unless a Vietnamese mobile number
/// (national numbers starting 3, 5, 7, 8 or 9).
pub fn normalise_msisdn(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let national = raw
        .strip_prefix("+84")
        .or_else(|| raw.strip_prefix("84").filter(|r| r.len() == 9))
        .or_else(|| raw.strip_prefix('0'))?;
    let ok = national.len() == 9
        && national.bytes().all(|b| b.is_ascii_digit())
        && matches!(
            national.as_bytes().first(),
            Some(b'3' | b'5' | b'7' | b'8' | b'9')
        );
    ok.then(|| format!("84{national}"))
}

/// An xs:NCName of 1–32 characters (FiCom's AP_TransID rule).
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The MSISDN a request names (raw, unvalidated), for choosing the signer's behaviour before
/// anything else is checked.
pub fn msisdn_of(part: &Element) -> Option<&str> {
    part.child("MobileUser")?
        .child("MSISDN")
        .map(Element::value)
}

/// `AP_Info`, checked.
#[derive(Clone)]
pub struct ApInfo {
    pub ap_id: String,
    pub ap_trans_id: String,
    pub ap_pwd: String,
    pub instant: String,
    pub ap_url: Option<String>,
}

impl std::fmt::Debug for ApInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApInfo")
            .field("ap_id", &self.ap_id)
            .field("ap_trans_id", &self.ap_trans_id)
            .field("ap_pwd", &"<redacted>")
            .field("instant", &self.instant)
            .field("ap_url", &self.ap_url)
            .finish()
    }
}

/// Checks versions, AP_Info and the AP's credentials — the common header of every request.
pub fn header(part: &Element, creds: &ApCredentials) -> Result<ApInfo, Fault> {
    for version in ["MajorVersion", "MinorVersion"] {
        match part.attr(version).map(str::trim) {
            Some("1") => {}
            None => return Err(Fault::missing_param(format!("{version} is required"))),
            Some(_) => return Err(Fault::status(108, format!("{version} must be 1"))),
        }
    }
    let ap = part
        .child("AP_Info")
        .ok_or_else(|| Fault::missing_param("AP_Info is required"))?;
    let field = |name: &str| {
        ap.attr(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Fault::missing_param(format!("AP_Info@{name} is required")))
    };
    let (ap_id, ap_pwd) = (field("AP_ID")?, field("AP_PWD")?);
    if ap_id != creds.ap_id || ap_pwd != creds.ap_password {
        return Err(Fault::status(104, "unknown AP_ID or wrong AP_PWD"));
    }
    let ap_trans_id = field("AP_TransID")?;
    if !is_ncname(&ap_trans_id) {
        return Err(Fault::wrong_param(
            "AP_TransID must be an NCName of 1-32 characters",
        ));
    }
    let instant = field("Instant")?;
    let at = DateTime::parse_from_rfc3339(&instant)
        .map_err(|_| Fault::wrong_param("Instant must be an xs:dateTime with an offset"))?;
    if (at.with_timezone(&Utc) - Utc::now()).num_seconds().abs() > MAX_SKEW_S {
        return Err(Fault::wrong_param(
            "Instant is too far from the MSSP's clock",
        ));
    }
    let ap_url = ap.attr("AP_URL").map(str::trim).filter(|u| !u.is_empty());
    if let Some(url) = ap_url {
        let http = url.starts_with("http://") || url.starts_with("https://");
        if !http || url.len() > 1024 || url.chars().any(char::is_whitespace) {
            return Err(Fault::wrong_param("AP_URL must be an http(s) URL"));
        }
    }
    Ok(ApInfo {
        ap_id,
        ap_trans_id,
        ap_pwd,
        instant,
        ap_url: ap_url.map(str::to_owned),
    })
}

pub fn msisdn(part: &Element) -> Result<String, Fault> {
    let raw = msisdn_of(part)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Fault::missing_param("MobileUser/MSISDN is required"))?;
    normalise_msisdn(raw)
        .ok_or_else(|| Fault::wrong_param("MSISDN is not a Vietnamese mobile number"))
}

/// A checked MSS_StatusReq or MSS_ReceiptReq: which transaction.
#[derive(Debug, Clone)]
pub struct TransactionRef {
    pub ap: ApInfo,
    pub mssp_trans_id: String,
    /// Receipts only: the closing message for the phone.
    pub message: Option<String>,
}

pub fn transaction_ref(part: &Element, ap: ApInfo, receipt: bool) -> Result<TransactionRef, Fault> {
    let id = part
        .attr("MSSP_TransID")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Fault::missing_param("MSSP_TransID is required"))?;
    if !is_ncname(id) {
        return Err(Fault::wrong_param(
            "MSSP_TransID is not one this MSSP issued",
        ));
    }
    let message = if receipt {
        part.child("Message").map(|m| m.value().to_owned())
    } else {
        None
    };
    if message
        .as_deref()
        .is_some_and(|m| m.chars().count() > RECEIPT_LIMIT)
    {
        return Err(Fault::status(
            103,
            "the receipt Message is over 160 characters",
        ));
    }
    Ok(TransactionRef {
        ap,
        mssp_trans_id: id.to_owned(),
        message,
    })
}

/// A checked MSS_ProfileReq: whose profile.
pub fn profile_req(part: &Element) -> Result<String, Fault> {
    msisdn(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msisdns_normalise_to_84_and_must_be_vietnamese_mobiles() {
        assert_eq!(
            normalise_msisdn("0912345678").as_deref(),
            Some("84912345678")
        );
        assert_eq!(
            normalise_msisdn("+84912345678").as_deref(),
            Some("84912345678")
        );
        assert_eq!(
            normalise_msisdn("84912345678").as_deref(),
            Some("84912345678")
        );
        assert_eq!(
            normalise_msisdn("84312345401").as_deref(),
            Some("84312345401")
        );
        for bad in [
            "",
            "912345678",
            "0212345678",
            "8491234567",
            "84912345678x",
            "+1912345678",
        ] {
            assert_eq!(normalise_msisdn(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn transaction_ids_must_be_short_ncnames() {
        assert!(is_ncname("K01JH8Q2X7"));
        assert!(is_ncname("_a.b-c"));
        for bad in ["", "7f3a9c2d1e", "a:b", "a b", &"K".repeat(33)] {
            assert!(!is_ncname(bad), "{bad:?}");
        }
    }

    #[test]
    fn every_status_code_the_mock_sends_has_its_etsi_name() {
        // Names as the notes' §9 table (protocols/etsi-102-204.md) spells them.
        for (code, name) in [
            (100, "REQUEST_OK"),
            (101, "WRONG_PARAM"),
            (102, "MISSING_PARAM"),
            (103, "WRONG_DATA_LENGTH"),
            (104, "UNAUTHORIZED_ACCESS"),
            (105, "UNKNOWN_CLIENT"),
            (107, "INAPPROPRIATE_DATA"),
            (108, "INCOMPATIBLE_INTERFACE"),
            (109, "UNSUPPORTED_PROFILE"),
            (208, "EXPIRED_TRANSACTION"),
            (401, "USER_CANCEL"),
            (402, "PIN_NR_BLOCKED"),
            (404, "NO_KEY_FOUND"),
            (406, "PB_SIGNATURE_PROCESS"),
            (500, "SIGNATURE"),
            (501, "REVOKED_CERTIFICATE"),
            (502, "VALID_SIGNATURE"),
            (503, "INVALID_SIGNATURE"),
            (504, "OUTSTANDING_TRANSACTION"),
            (900, "INTERNAL_ERROR"),
        ] {
            assert_eq!(status_name(code), name, "{code}");
        }
        assert_eq!(status_name(999), "UNKNOWN");
    }
}
