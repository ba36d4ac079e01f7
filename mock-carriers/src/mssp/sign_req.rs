//! MSS_SignatureReq as the mock MSSP reads it: messaging mode, TimeOut, MSS_Format (PKCS1 by
//! default, PKCS7/CMS on request), DataToBeSigned (a base64 SHA-256 DigestInfo, or for CMS
//! text or other bytes), DataToBeDisplayed, SignatureProfile and the additional services
//! (signingCertificate, signatureValidation) — each checked into [`SignatureReq`] or refused
//! with the fault the notes give.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::soap::{Element, Fault};
use super::wire::{
    msisdn, ApInfo, DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S, PROFILE_URI, SHA256_DIGEST_INFO,
};

/// MSS_Format URIs answered with a raw PKCS#1 signature.
const PKCS1_URIS: [&str; 3] = [
    "http://uri.etsi.org/TS102204/v1.1.2#PKCS1",
    "http://mss.ficom.fi/TS102204/v1.0.0#PKCS1",
    "http://www.methics.fi/KiuruMSSP/v3.2.0#PKCS1",
];
/// MSS_Format URIs answered with a CMS SignedData.
const CMS_URIS: [&str; 2] = [
    "http://uri.etsi.org/TS102204/v1.1.2#PKCS7",
    "http://uri.etsi.org/TS102204/v1.1.2#CMS-Signature",
];

/// How the result reaches the AP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Synch,
    AsynchClientServer,
    AsynchServerServer,
}

/// What `MSS_Signature` carries back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The raw RSA signature over the DigestInfo.
    Pkcs1,
    /// A CMS SignedData with the SIM certificate and signed attributes.
    Cms,
}

/// What is to be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tbs {
    /// A SHA-256 digest (the DTBS was its DigestInfo).
    Digest([u8; 32]),
    /// Content to sign whole (text, or binary that is not a DigestInfo; CMS only).
    Content(Vec<u8>),
}

/// A checked MSS_SignatureReq.
#[derive(Debug, Clone)]
pub struct SignatureReq {
    pub ap: ApInfo,
    pub msisdn: String,
    pub mode: Mode,
    pub timeout_s: u64,
    pub tbs: Tbs,
    pub display: String,
    pub profile: String,
    pub format: Format,
    /// AdditionalServices asked for the signing certificate.
    pub want_certificate: bool,
    /// AdditionalServices asked the MSSP to validate the signature (502 instead of 500).
    pub validate: bool,
}

/// Parses and checks an MSS_SignatureReq (after [`header`]).
pub fn signature_req(part: &Element, ap: ApInfo, strict_vn: bool) -> Result<SignatureReq, Fault> {
    let msisdn = msisdn(part)?;
    let mode = match part.attr("MessagingMode").map(str::trim) {
        None => return Err(Fault::missing_param("MessagingMode is required")),
        Some("synch") => Mode::Synch,
        Some("asynchClientServer") => Mode::AsynchClientServer,
        Some("asynchServerServer") if !strict_vn => Mode::AsynchServerServer,
        Some(other) => {
            return Err(Fault::wrong_param(format!(
                "MessagingMode {:?} is not supported",
                other.chars().take(32).collect::<String>()
            )))
        }
    };
    let timeout_s = match part.attr("TimeOut").map(str::trim) {
        None => DEFAULT_TIMEOUT_S,
        Some(t) => match t.parse::<u64>() {
            Ok(n) if n > 0 => n.min(MAX_TIMEOUT_S),
            _ => return Err(Fault::wrong_param("TimeOut must be a positive integer")),
        },
    };
    let format = match part
        .child("MSS_Format")
        .and_then(|f| f.child("mssURI"))
        .map(Element::value)
    {
        None => Format::Pkcs1,
        Some(uri) if PKCS1_URIS.contains(&uri) => Format::Pkcs1,
        Some(uri) if CMS_URIS.contains(&uri) => Format::Cms,
        Some(_) => return Err(Fault::wrong_param("MSS_Format is not supported")),
    };
    let dtbs = part
        .child("DataToBeSigned")
        .ok_or_else(|| Fault::missing_param("DataToBeSigned is required"))?;
    let tbs = data_to_be_signed(dtbs, format)?;
    let display = match part.child("DataToBeDisplayed") {
        Some(d) => super::display::display_text(d)?,
        None if strict_vn => return Err(Fault::missing_param("DataToBeDisplayed is required")),
        None => String::new(),
    };
    let profile = match part
        .child("SignatureProfile")
        .and_then(|p| p.child("mssURI"))
        .map(Element::value)
    {
        None => PROFILE_URI.to_owned(),
        Some(PROFILE_URI) => PROFILE_URI.to_owned(),
        Some(_) => return Err(Fault::status(109, "SignatureProfile is not supported")),
    };
    let services: Vec<String> = part
        .child("AdditionalServices")
        .map(|s| {
            s.children
                .iter()
                .filter_map(|svc| svc.child("Description")?.child("mssURI"))
                .map(|uri| uri.value().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    Ok(SignatureReq {
        ap,
        msisdn,
        mode,
        timeout_s,
        tbs,
        display,
        profile,
        format,
        want_certificate: services.iter().any(|s| s.ends_with("#signingcertificate")),
        validate: services.iter().any(|s| s.ends_with("#signaturevalidation")),
    })
}

fn data_to_be_signed(dtbs: &Element, format: Format) -> Result<Tbs, Fault> {
    let mime = dtbs
        .attr("MimeType")
        .unwrap_or("application/octet-stream")
        .to_ascii_lowercase();
    let encoding = dtbs
        .attr("Encoding")
        .unwrap_or("base64")
        .to_ascii_lowercase();
    if mime.starts_with("text/plain") {
        if format == Format::Pkcs1 {
            return Err(Fault::status(107, "PKCS1 signs a DigestInfo, not text"));
        }
        if dtbs.text.is_empty() {
            return Err(Fault::missing_param("DataToBeSigned is empty"));
        }
        return Ok(Tbs::Content(dtbs.text.clone().into_bytes()));
    }
    if mime != "application/octet-stream" || encoding != "base64" {
        return Err(Fault::status(
            107,
            "DataToBeSigned must be application/octet-stream in base64 (or text/plain for PKCS7)",
        ));
    }
    let compact: String = dtbs.text.split_whitespace().collect();
    let bytes = B64
        .decode(compact)
        .map_err(|_| Fault::wrong_param("DataToBeSigned is not base64"))?;
    match bytes.strip_prefix(&SHA256_DIGEST_INFO[..]) {
        Some(digest) if digest.len() == 32 => {
            let mut d = [0u8; 32];
            d.copy_from_slice(digest);
            Ok(Tbs::Digest(d))
        }
        _ if format == Format::Cms && !bytes.is_empty() => Ok(Tbs::Content(bytes)),
        _ => Err(Fault::wrong_param(
            "DataToBeSigned must be the DER DigestInfo of a SHA-256 digest (51 bytes)",
        )),
    }
}
