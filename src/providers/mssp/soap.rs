//! The SOAP 1.2 envelope around ETSI TS 102 204 messages: writing a request with the instance's
//! wrapper namespace and part qualification (notes §1), and reading any answer (response,
//! notification or Fault) into plain data. Answers are matched by local name only, since
//! MSSPs disagree on prefixes and qualification; AP_PWD, which MSSPs echo back, is never kept.

use base64::prelude::{Engine as _, BASE64_STANDARD};

use super::xml::{self, Element, Writer, XmlError};

pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// Accepted on answers only: some stacks fall back to SOAP 1.1 for faults.
const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const NS_MSS: &str = "http://uri.etsi.org/TS102204/v1.1.2#";

/// Certificates beyond this in one answer are not read: a SIM chain is two or three long.
const MAX_CERTIFICATES: usize = 8;

/// How an instance wraps its parts.
#[derive(Debug, Clone, Copy)]
pub struct Dialect<'a> {
    /// Namespace of the RPC wrapper element; `None`: unqualified (laverca, Swisscom).
    pub wrapper_namespace: Option<&'a str>,
    /// `mss:`-qualified part element (ETSI examples) or unqualified (the VN server).
    pub qualify_part: bool,
}

/// Writes `<env:Envelope><env:Body><wrapper><part attrs>…children…</part></wrapper>`.
pub fn envelope(
    dialect: Dialect<'_>,
    wrapper: &str,
    part: &str,
    part_attrs: &[(&str, &str)],
    children: impl FnOnce(&mut Writer),
) -> String {
    let mut w = Writer::new();
    w.open(
        "env:Envelope",
        &[("xmlns:env", NS_SOAP12), ("xmlns:mss", NS_MSS)],
    );
    w.open("env:Body", &[]);
    let wrapper_name = match dialect.wrapper_namespace {
        Some(ns) => {
            let name = format!("w:{wrapper}");
            w.open(&name, &[("xmlns:w", ns)]);
            name
        }
        None => {
            w.open(wrapper, &[]);
            wrapper.to_owned()
        }
    };
    let part_name = if dialect.qualify_part {
        format!("mss:{part}")
    } else {
        part.to_owned()
    };
    w.open(&part_name, part_attrs);
    children(&mut w);
    w.close(&part_name).close(&wrapper_name);
    w.close("env:Body").close("env:Envelope");
    w.finish()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    #[error("not XML: {0}")]
    Xml(#[from] XmlError),
    #[error("not a SOAP envelope: {0}")]
    NotSoap(String),
    #[error("unexpected SOAP content: {0}")]
    Unexpected(String),
}

/// Any SOAP answer an MSSP sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Message(Message),
    Fault(Fault),
}

/// An ETSI message part (`MSS_SignatureResp`, `MSS_StatusResp`, …), reduced to what kyso reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Local name of the part element, e.g. `MSS_StatusResp`.
    pub part: String,
    pub mssp_trans_id: Option<String>,
    pub ap_id: Option<String>,
    pub ap_trans_id: Option<String>,
    /// `MSSP_Info/MSSP_ID/URI`.
    pub mssp_id: Option<String>,
    pub msisdn: Option<String>,
    pub status: Option<Status>,
    pub signature: Option<Signature>,
    /// Every `X509Certificate` in the answer (FiCom PKCS1, a signingCertificate additional
    /// service in `StatusDetail`, a profile extension), in document order.
    pub certificates: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u32,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// `Base64Signature` or FiCom `PKCS1/SignatureValue`: raw PKCS#1 or a CMS, by `MSS_Format`.
    Bytes(Vec<u8>),
    /// An `XMLSignature` or another form kyso does not read.
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `env:Sender`, `env:Receiver`, … (local part).
    pub role: String,
    /// The ETSI code from the first subcode (`mss:_401` → 401).
    pub code: Option<u32>,
    /// A nested second-level subcode, e.g. FiCom's `2082`.
    pub detail_code: Option<String>,
    pub reason: String,
    /// The first text in `env:Detail`: often more telling than the reason, which is usually
    /// the code's name.
    pub detail: Option<String>,
}

/// Parses an MSSP's answer: the envelope, then either a Fault or the message part, with or
/// without an RPC wrapper around it.
pub fn parse_answer(bytes: &[u8]) -> Result<Answer, SoapError> {
    let root = xml::parse(bytes)?;
    if root.name != "Envelope" {
        return Err(SoapError::NotSoap(format!(
            "root element is `{}`",
            root.name
        )));
    }
    let ns = root.namespace.as_deref();
    if ns != Some(NS_SOAP12) && ns != Some(NS_SOAP11) {
        return Err(SoapError::NotSoap("unknown envelope namespace".into()));
    }
    let body = root
        .child("Body")
        .ok_or_else(|| SoapError::NotSoap("no Body".into()))?;
    let first = body
        .children
        .first()
        .ok_or_else(|| SoapError::Unexpected("empty Body".into()))?;
    if first.name == "Fault" {
        return Ok(Answer::Fault(fault(first)));
    }
    let part = if is_part(&first.name) {
        first
    } else {
        first
            .children
            .first()
            .filter(|p| is_part(&p.name))
            .ok_or_else(|| {
                SoapError::Unexpected(format!("`{}` holds no ETSI message", first.name))
            })?
    };
    message(part).map(Answer::Message)
}

fn is_part(name: &str) -> bool {
    name.starts_with("MSS_") && (name.ends_with("Resp") || name.ends_with("Req"))
}

fn message(part: &Element) -> Result<Message, SoapError> {
    let ap = part.child("AP_Info");
    let status = match part.child("Status") {
        Some(s) => Some(status(s)?),
        None => None,
    };
    let mut certs = Vec::new();
    part.descendants_named("X509Certificate", &mut certs);
    let certificates = certs
        .into_iter()
        .take(MAX_CERTIFICATES)
        .map(|c| decode_b64(c.trimmed_text()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Message {
        part: part.name.clone(),
        mssp_trans_id: part.attr("MSSP_TransID").map(str::to_owned),
        ap_id: ap.and_then(|a| a.attr("AP_ID")).map(str::to_owned),
        ap_trans_id: ap.and_then(|a| a.attr("AP_TransID")).map(str::to_owned),
        mssp_id: part
            .child("MSSP_Info")
            .and_then(|i| i.child("MSSP_ID"))
            .and_then(|i| i.child("URI"))
            .map(|u| clip(u.trimmed_text())),
        msisdn: part
            .child("MobileUser")
            .and_then(|u| u.child("MSISDN"))
            .map(|m| m.trimmed_text().to_owned()),
        status,
        signature: part.child("MSS_Signature").map(signature).transpose()?,
        certificates,
    })
}

fn status(s: &Element) -> Result<Status, SoapError> {
    let value = s
        .child("StatusCode")
        .and_then(|c| c.attr("Value"))
        .ok_or_else(|| SoapError::Unexpected("Status without StatusCode@Value".into()))?;
    let code = value
        .trim()
        .parse()
        .map_err(|_| SoapError::Unexpected("StatusCode@Value is not a number".into()))?;
    let message = s
        .child("StatusMessage")
        .map(|m| clip(m.trimmed_text()))
        .filter(|m| !m.is_empty());
    Ok(Status { code, message })
}

fn signature(s: &Element) -> Result<Signature, SoapError> {
    if let Some(b) = s.child("Base64Signature") {
        return decode_b64(b.trimmed_text()).map(Signature::Bytes);
    }
    if let Some(v) = s.child("PKCS1").and_then(|p| p.child("SignatureValue")) {
        return decode_b64(v.trimmed_text()).map(Signature::Bytes);
    }
    let form = s.children.first().map_or("nothing", |c| c.name.as_str());
    Ok(Signature::Unsupported(clip(form)))
}

fn fault(f: &Element) -> Fault {
    let code_el = f.child("Code");
    let role = code_el
        .and_then(|c| c.child("Value"))
        .map(|v| local_part(v.trimmed_text()).to_owned())
        .unwrap_or_default();
    let sub = code_el.and_then(|c| c.child("Subcode"));
    let code = sub.and_then(|s| s.child("Value")).and_then(|v| {
        local_part(v.trimmed_text())
            .trim_start_matches('_')
            .parse()
            .ok()
    });
    let detail_code = sub
        .and_then(|s| s.child("Subcode"))
        .and_then(|s| s.child("Value"))
        .map(|v| clip(local_part(v.trimmed_text()).trim_start_matches('_')));
    let reason = f
        .child("Reason")
        .and_then(|r| r.child("Text"))
        .map(|t| clip(t.trimmed_text()))
        .unwrap_or_default();
    let mut texts = Vec::new();
    if let Some(d) = f.child("Detail") {
        first_text(d, &mut texts);
    }
    Fault {
        role,
        code,
        detail_code,
        reason,
        detail: texts.into_iter().next(),
    }
}

fn first_text(el: &Element, out: &mut Vec<String>) {
    if !out.is_empty() {
        return;
    }
    if !el.trimmed_text().is_empty() {
        out.push(clip(el.trimmed_text()));
        return;
    }
    for c in &el.children {
        first_text(c, out);
    }
}

/// `mss:_401` → `_401`: prefixes differ between MSSPs (`mss:`, `fi:`), the local part does not.
fn local_part(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

fn decode_b64(text: &str) -> Result<Vec<u8>, SoapError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64_STANDARD
        .decode(compact)
        .map_err(|_| SoapError::Unexpected("invalid base64 content".into()))
}

/// Provider text ends up in session errors and logs: keep it short.
fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_wrapped_as_the_instance_says() {
        let etsi = Dialect {
            wrapper_namespace: None,
            qualify_part: true,
        };
        let out = envelope(
            etsi,
            "MSS_Signature",
            "MSS_SignatureReq",
            &[("A", "1")],
            |w| {
                w.empty("mss:AP_Info", &[]);
            },
        );
        assert!(out.contains("<MSS_Signature><mss:MSS_SignatureReq A=\"1\"><mss:AP_Info/>"));
        let vn = Dialect {
            wrapper_namespace: Some("http://ae.mobile-id.vn/TS102204/etsi204"),
            qualify_part: false,
        };
        let out = envelope(vn, "MSS_Signature", "MSS_SignatureReq", &[], |_| {});
        let root = xml::parse(out.as_bytes()).expect("well formed");
        let wrapper = &root.child("Body").expect("body").children[0];
        assert_eq!(
            wrapper.namespace.as_deref(),
            Some("http://ae.mobile-id.vn/TS102204/etsi204")
        );
        assert_eq!(wrapper.children[0].name, "MSS_SignatureReq");
        assert_eq!(wrapper.children[0].namespace, None);
    }

    #[test]
    fn a_fault_yields_its_etsi_code_whatever_the_prefix() {
        let doc = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>
            <env:Fault><env:Code><env:Value>env:Receiver</env:Value>
             <env:Subcode><env:Value xmlns:fi="http://mss.ficom.fi/TS102204/v1.0.0#">fi:_208</env:Value>
              <env:Subcode><env:Value>fi:2082</env:Value></env:Subcode></env:Subcode></env:Code>
             <env:Reason><env:Text xml:lang="en">EXPIRED_TRANSACTION</env:Text></env:Reason>
             <env:Detail><d:detail xmlns:d="urn:d">the user did not answer</d:detail></env:Detail>
            </env:Fault></env:Body></env:Envelope>"#;
        let Answer::Fault(f) = parse_answer(doc.as_bytes()).expect("parses") else {
            panic!("a fault");
        };
        assert_eq!(
            f,
            Fault {
                role: "Receiver".into(),
                code: Some(208),
                detail_code: Some("2082".into()),
                reason: "EXPIRED_TRANSACTION".into(),
                detail: Some("the user did not answer".into()),
            }
        );
    }

    #[test]
    fn junk_and_foreign_envelopes_are_refused() {
        for bad in [
            "<a/>",
            r#"<Envelope xmlns="urn:x"><Body/></Envelope>"#,
            r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"/>"#,
            r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><x/></e:Body></e:Envelope>"#,
        ] {
            assert!(parse_answer(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
