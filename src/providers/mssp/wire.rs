//! ETSI TS 102 204 messages as kyso sends them (MSS_Signature, MSS_StatusQuery, MSS_Receipt,
//! MSS_ProfileQuery, and the receipt that answers an MSS_Notification), written from the
//! protocol notes (shared protocols/etsi-102-204.md), and [`status_table`]: the one mapping of
//! the notes' status and fault codes onto kyso's outcomes.

use chrono::{DateTime, Utc};

use super::soap::{envelope, Dialect};
use super::xml::Writer;
use crate::domain::ErrorCode;

pub const FORMAT_PKCS1: &str = "http://uri.etsi.org/TS102204/v1.1.2#PKCS1";
pub const FORMAT_PKCS7: &str = "http://uri.etsi.org/TS102204/v1.1.2#PKCS7";

/// DER prefix of a DigestInfo for SHA-256 (RFC 8017 §9.2); the 32 digest bytes follow.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// `AP_Info`. No `Debug`: it carries AP_PWD.
#[derive(Clone, Copy)]
pub struct ApInfo<'a> {
    pub ap_id: &'a str,
    pub ap_pwd: &'a str,
    pub ap_trans_id: &'a str,
    pub instant: DateTime<Utc>,
    /// Only in asynchServerServer: where the MSSP posts its notification.
    pub ap_url: Option<&'a str>,
}

/// The sender's side every message shares.
#[derive(Clone, Copy)]
pub struct Header<'a> {
    pub dialect: Dialect<'a>,
    pub ap: ApInfo<'a>,
    pub mssp_id: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementOrder {
    /// `…DataToBeDisplayed, SignatureProfile, AdditionalServices, MSS_Format` (MSS-plus.xsd).
    Etsi,
    /// `…DataToBeDisplayed, MSS_Format, SignatureProfile, AdditionalServices` (notes §12).
    Vn,
}

/// No `Debug`: its header carries AP_PWD.
pub struct SignatureReq<'a> {
    pub header: Header<'a>,
    /// `synch`, `asynchClientServer` or `asynchServerServer`.
    pub mode: &'a str,
    pub timeout_s: u64,
    pub msisdn: &'a str,
    pub digest: &'a [u8; 32],
    pub display: &'a str,
    pub signature_profile: Option<&'a str>,
    pub services: &'a [String],
    pub format_uri: &'a str,
    pub order: ElementOrder,
}

/// The base64 DER DigestInfo the SIM pads and signs (notes §10).
pub fn data_to_be_signed(digest: &[u8; 32]) -> String {
    use base64::prelude::{Engine as _, BASE64_STANDARD};
    let mut info = SHA256_DIGEST_INFO.to_vec();
    info.extend_from_slice(digest);
    BASE64_STANDARD.encode(info)
}

pub fn signature_req(r: &SignatureReq<'_>) -> String {
    let timeout = r.timeout_s.to_string();
    let attrs = [
        ("MajorVersion", "1"),
        ("MinorVersion", "1"),
        ("MessagingMode", r.mode),
        ("TimeOut", timeout.as_str()),
    ];
    let h = &r.header;
    envelope(
        h.dialect,
        "MSS_Signature",
        "MSS_SignatureReq",
        &attrs,
        |w| {
            common(w, h, Some(r.msisdn));
            let b64 = [
                ("MimeType", "application/octet-stream"),
                ("Encoding", "base64"),
            ];
            w.leaf("mss:DataToBeSigned", &b64, &data_to_be_signed(r.digest));
            let text = [("MimeType", "text/plain"), ("Encoding", "UTF-8")];
            w.leaf("mss:DataToBeDisplayed", &text, r.display);
            let format = |w: &mut Writer| uri(w, "mss:MSS_Format", r.format_uri);
            if r.order == ElementOrder::Vn {
                format(w);
            }
            if let Some(p) = r.signature_profile {
                uri(w, "mss:SignatureProfile", p);
            }
            if !r.services.is_empty() {
                w.open("mss:AdditionalServices", &[]);
                for s in r.services {
                    w.open("mss:Service", &[]);
                    uri(w, "mss:Description", s);
                    w.close("mss:Service");
                }
                w.close("mss:AdditionalServices");
            }
            if r.order == ElementOrder::Etsi {
                format(w);
            }
        },
    )
}

pub fn status_req(h: &Header<'_>, mssp_trans_id: &str, msisdn: &str) -> String {
    let attrs = [
        ("MajorVersion", "1"),
        ("MinorVersion", "1"),
        ("MSSP_TransID", mssp_trans_id),
    ];
    envelope(h.dialect, "MSS_StatusQuery", "MSS_StatusReq", &attrs, |w| {
        common(w, h, Some(msisdn));
    })
}

/// Closes the transaction on the phone with a short message (one receipt per transaction).
pub fn receipt_req(h: &Header<'_>, mssp_trans_id: &str, msisdn: &str, message: &str) -> String {
    let attrs = [
        ("MajorVersion", "1"),
        ("MinorVersion", "1"),
        ("MSSP_TransID", mssp_trans_id),
    ];
    envelope(h.dialect, "MSS_Receipt", "MSS_ReceiptReq", &attrs, |w| {
        common(w, h, Some(msisdn));
        let text = [("MimeType", "text/plain"), ("Encoding", "UTF-8")];
        w.leaf("mss:Message", &text, message);
    })
}

pub fn profile_req(h: &Header<'_>, msisdn: &str) -> String {
    let attrs = [("MajorVersion", "1"), ("MinorVersion", "1")];
    envelope(
        h.dialect,
        "MSS_ProfileQuery",
        "MSS_ProfileReq",
        &attrs,
        |w| {
            common(w, h, Some(msisdn));
        },
    )
}

/// kyso's answer to an MSS_Notification: laverca's notification operation returns an
/// `MSS_ReceiptReq` (notes §7). The caller is unauthenticated, so the answer carries an empty
/// AP_PWD: the real one never goes to whoever posts to the callback URL.
pub fn notification_answer(h: &Header<'_>, mssp_trans_id: &str, msisdn: Option<&str>) -> String {
    let attrs = [
        ("MajorVersion", "1"),
        ("MinorVersion", "1"),
        ("MSSP_TransID", mssp_trans_id),
    ];
    let h = &Header {
        ap: ApInfo { ap_pwd: "", ..h.ap },
        ..*h
    };
    envelope(
        h.dialect,
        "MSS_NotificationResponse",
        "MSS_ReceiptReq",
        &attrs,
        |w| {
            common(w, h, msisdn);
            w.open("mss:Status", &[]);
            w.empty("mss:StatusCode", &[("Value", "100")]);
            w.leaf("mss:StatusMessage", &[], "REQUEST_OK");
            w.close("mss:Status");
        },
    )
}

/// `AP_Info`, `MSSP_Info` and `MobileUser`, in that order.
fn common(w: &mut Writer, h: &Header<'_>, msisdn: Option<&str>) {
    let instant = h.ap.instant.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let mut attrs = vec![
        ("AP_ID", h.ap.ap_id),
        ("AP_TransID", h.ap.ap_trans_id),
        ("AP_PWD", h.ap.ap_pwd),
        ("Instant", instant.as_str()),
    ];
    if let Some(url) = h.ap.ap_url {
        attrs.push(("AP_URL", url));
    }
    w.empty("mss:AP_Info", &attrs);
    w.open("mss:MSSP_Info", &[]).open("mss:MSSP_ID", &[]);
    w.leaf("mss:URI", &[], h.mssp_id);
    w.close("mss:MSSP_ID").close("mss:MSSP_Info");
    if let Some(m) = msisdn {
        w.open("mss:MobileUser", &[]);
        w.leaf("mss:MSISDN", &[], m);
        w.close("mss:MobileUser");
    }
}

fn uri(w: &mut Writer, name: &str, value: &str) {
    w.open(name, &[]).leaf("mss:mssURI", &[], value).close(name);
}

/// What an ETSI code means for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// The request was taken (async acknowledgement, receipt, profile).
    Accepted,
    /// Not finished: poll again.
    Outstanding,
    /// A signature was made (not yet judged by kyso).
    Signed,
    Rejected,
    Expired,
    Failed(ErrorCode),
    /// The MSSP failed internally: retry within the deadline.
    Transient,
}

/// The one table of ETSI TS 102 204 status and fault codes (notes §9), with their names for
/// messages. Codes found in `Status` and in a Fault's subcode mean the same: some carriers put
/// errors in `Status` with HTTP 200 (notes §12).
pub fn status_table(code: u32) -> (&'static str, Meaning) {
    use ErrorCode::*;
    use Meaning::*;
    // A misconfigured gateway (credentials, versions, profile) is the operator's to fix.
    let config = Failed(ProviderError);
    match code {
        100 => ("REQUEST_OK", Accepted),
        101 => ("WRONG_PARAM", config),
        102 => ("MISSING_PARAM", config),
        103 => ("WRONG_DATA_LENGTH", config),
        104 => ("UNAUTHORIZED_ACCESS", config),
        105 => ("UNKNOWN_CLIENT", Failed(NotSubscribed)),
        106 => ("HANDSHAKE_REQUIRED", config),
        107 => ("INAPPROPRIATE_DATA", config),
        108 => ("INCOMPATIBLE_INTERFACE", config),
        109 => ("UNSUPPORTED_PROFILE", config),
        208 => ("EXPIRED_TRANSACTION", Expired),
        209 => ("OTA_ERROR", Failed(ProviderUnavailable)),
        400 => ("USER_SIGN", Outstanding),
        401 => ("USER_CANCEL", Rejected),
        402 => ("PIN_NR_BLOCKED", Failed(PinBlocked)),
        403 => ("CARD_BLOCKED", Failed(PinBlocked)),
        404 => ("NO_KEY_FOUND", Failed(NoCertificate)),
        405 => ("NO_URL_FOUND", config),
        // Also Swisscom's "a signature is already in progress" on this SIM.
        406 => ("PB_SIGNATURE_PROCESS", Failed(ProviderError)),
        407 => ("REGISTRATION_NOK", config),
        408 => ("REGISTRATION_OK", Accepted),
        422 => ("NO_CERT_FOUND", Failed(NoCertificate)),
        423 => ("CRL_PB", Failed(UntrustedCertificate)),
        424 => ("CRL_EXPIRED", Failed(UntrustedCertificate)),
        425 => ("ERROR_CERTIFICATE", Failed(UntrustedCertificate)),
        500 => ("SIGNATURE", Signed),
        // The MSSP vouching for revocation is a reason to refuse, never to accept.
        501 => ("REVOKED_CERTIFICATE", Failed(RevokedCertificate)),
        502 => ("VALID_SIGNATURE", Signed),
        503 => ("INVALID_SIGNATURE", Failed(InvalidSignature)),
        504 => ("OUTSTANDING_TRANSACTION", Outstanding),
        505 => ("CONSTRAINT_MISMATCH", Failed(UntrustedCertificate)),
        600..=603 => ("RECEIPT", Accepted),
        701..=720 => ("ROAMING_ERROR", Failed(ProviderUnavailable)),
        750..=780 => ("ROAMING_SERVICE_ERROR", Failed(ProviderUnavailable)),
        900 => ("INTERNAL_ERROR", Transient),
        // FiCom details its internal errors as 9001–9008.
        9001..=9008 => ("INTERNAL_ERROR", Transient),
        _ => ("UNKNOWN_CODE", Failed(ProviderError)),
    }
}

/// kyso's session transaction id (`kyso-ses_<ULID>`) as an `AP_TransID`: `K<ULID>`, an NCName
/// of 27 characters, within FiCom's 32 (the session form, 35, is not) and the same on every
/// retry. Ids of another shape are kept to their NCName-safe characters.
pub fn ap_trans_id(transaction_id: &str) -> String {
    match transaction_id.strip_prefix("kyso-ses_") {
        Some(ulid) => format!("K{ulid}"),
        None => {
            let safe: String = transaction_id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(31)
                .collect();
            format!("K{safe}")
        }
    }
}

/// The session transaction id behind an `AP_TransID` kyso made, if it is one.
pub fn transaction_id(ap_trans_id: &str) -> Option<String> {
    let ulid = ap_trans_id.strip_prefix('K')?;
    ulid::Ulid::from_string(ulid).ok()?;
    Some(format!("kyso-ses_{ulid}"))
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
