//! Writing the MSSP's SOAP answers: the envelope (the response wrapper in the namespace the
//! caller used for its wrapper, the part `mss:`-qualified or not as the caller's was), the
//! common header echoed back (`AP_Info` — including AP_PWD, as real MSSPs do —, `MSSP_Info`
//! with the MSSP's Instant), `MobileUser`, `MSS_Signature/Base64Signature`, `Status` and the
//! `StatusDetail` payloads: the signing certificate (`fi:ServiceResponses` with a Methics
//! `signingCertificate`) and the profile extension with the user's certificate. Element order
//! follows the ETSI schema (MSS-plus.xsd).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::soap::SOAP12_NS;
use super::wire::{esc, status_name, ApInfo, DS_NS, FICOM_NS, METHICS_NS, MSS_NS, PROFILE_EXT_NS};

/// How the caller wrote its request, mirrored in the answer.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    pub wrapper_ns: Option<String>,
    pub part_qualified: bool,
    /// The MSSP's own URI for `MSSP_Info/MSSP_ID/URI`.
    pub mssp_uri: String,
}

/// A response body under construction: the part's attributes and children.
pub struct Part {
    name: &'static str,
    attrs: String,
    body: String,
}

impl Part {
    pub fn new(name: &'static str, ap: &ApInfo, shape: &Shape) -> Self {
        let mut part = Self {
            name,
            attrs: " MajorVersion=\"1\" MinorVersion=\"1\"".to_owned(),
            body: String::new(),
        };
        part.body.push_str(&ap_info(ap));
        part.body.push_str(&format!(
            "<mss:MSSP_Info Instant=\"{}\"><mss:MSSP_ID><mss:URI>{}</mss:URI></mss:MSSP_ID></mss:MSSP_Info>",
            now(),
            esc(&shape.mssp_uri)
        ));
        part
    }

    pub fn attr(mut self, name: &str, value: &str) -> Self {
        self.attrs.push_str(&format!(" {name}=\"{}\"", esc(value)));
        self
    }

    pub fn mobile_user(mut self, msisdn: &str) -> Self {
        self.body.push_str(&format!(
            "<mss:MobileUser><mss:MSISDN>{}</mss:MSISDN></mss:MobileUser>",
            esc(msisdn)
        ));
        self
    }

    pub fn signature(mut self, signature: &[u8]) -> Self {
        self.body.push_str(&format!(
            "<mss:MSS_Signature><mss:Base64Signature>{}</mss:Base64Signature></mss:MSS_Signature>",
            B64.encode(signature)
        ));
        self
    }

    pub fn profile(mut self, uri: &str) -> Self {
        self.body.push_str(&format!(
            "<mss:SignatureProfile><mss:mssURI>{}</mss:mssURI></mss:SignatureProfile>",
            esc(uri)
        ));
        self
    }

    /// `Status` with the code's ETSI name and an optional `StatusDetail` payload.
    pub fn status(mut self, code: u16, detail: Option<&str>) -> Self {
        self.body.push_str(&format!(
            "<mss:Status><mss:StatusCode Value=\"{code}\"/><mss:StatusMessage>{}</mss:StatusMessage>",
            status_name(code)
        ));
        if let Some(detail) = detail {
            self.body
                .push_str(&format!("<mss:StatusDetail>{detail}</mss:StatusDetail>"));
        }
        self.body.push_str("</mss:Status>");
        self
    }

    /// The whole SOAP envelope, with the part inside `wrapper`.
    pub fn envelope(self, wrapper: &str, shape: &Shape) -> String {
        let part_tag = if shape.part_qualified {
            format!("mss:{}", self.name)
        } else {
            self.name.to_owned()
        };
        let (open, close) = match &shape.wrapper_ns {
            Some(ns) => (
                format!("<w:{wrapper} xmlns:w=\"{}\">", esc(ns)),
                format!("</w:{wrapper}>"),
            ),
            None => (format!("<{wrapper}>"), format!("</{wrapper}>")),
        };
        format!(
            concat!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                "<env:Envelope xmlns:env=\"{env}\" xmlns:mss=\"{mss}\"><env:Body>",
                "{open}<{tag}{attrs}>{body}</{tag}>{close}",
                "</env:Body></env:Envelope>"
            ),
            env = SOAP12_NS,
            mss = MSS_NS,
            open = open,
            tag = part_tag,
            attrs = self.attrs,
            body = self.body,
            close = close,
        )
    }
}

fn ap_info(ap: &ApInfo) -> String {
    let url = ap
        .ap_url
        .as_deref()
        .map(|u| format!(" AP_URL=\"{}\"", esc(u)))
        .unwrap_or_default();
    format!(
        "<mss:AP_Info AP_ID=\"{}\" AP_TransID=\"{}\" AP_PWD=\"{}\" Instant=\"{}\"{url}/>",
        esc(&ap.ap_id),
        esc(&ap.ap_trans_id),
        esc(&ap.ap_pwd),
        esc(&ap.instant),
    )
}

/// The MSSP's clock as xs:dateTime (UTC, milliseconds).
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `StatusDetail` content answering the signingCertificate additional service: the SIM
/// certificate and its issuing CA.
pub fn signing_certificate_detail(service_uri: &str, leaf: &[u8], ca: &[u8]) -> String {
    format!(
        concat!(
            "<fi:ServiceResponses xmlns:fi=\"{fi}\"><fi:ServiceResponse>",
            "<fi:Description><mss:mssURI>{uri}</mss:mssURI></fi:Description>",
            "<mth:signingCertificate xmlns:mth=\"{mth}\">",
            "<mth:X509Certificate>{leaf}</mth:X509Certificate>",
            "<mth:X509Certificate>{ca}</mth:X509Certificate>",
            "</mth:signingCertificate></fi:ServiceResponse></fi:ServiceResponses>"
        ),
        fi = FICOM_NS,
        uri = esc(service_uri),
        mth = METHICS_NS,
        leaf = B64.encode(leaf),
        ca = B64.encode(ca),
    )
}

/// `StatusDetail` content of a profile answer: the user's certificate (Methics profile
/// extension, an `X509Data` with subject name and certificate).
pub fn profile_detail(subject: &str, leaf: &[u8]) -> String {
    format!(
        concat!(
            "<mcs:ProfileQueryExtension xmlns:mcs=\"{mcs}\" xmlns:ds=\"{ds}\">",
            "<mcs:MobileUserCertificate State=\"ACTIVE\" SignatureProfiles=\"{profile}\">",
            "<ds:X509SubjectName>{subject}</ds:X509SubjectName>",
            "<ds:X509Certificate>{leaf}</ds:X509Certificate>",
            "</mcs:MobileUserCertificate></mcs:ProfileQueryExtension>"
        ),
        mcs = PROFILE_EXT_NS,
        ds = DS_NS,
        profile = super::wire::PROFILE_URI,
        subject = esc(subject),
        leaf = B64.encode(leaf),
    )
}

/// The signingCertificate service URI the mock names in its answer.
pub const SIGNING_CERTIFICATE_URI: &str = "http://mobile-id.vn/MSSP/v1.0.0#signingCertificate";
