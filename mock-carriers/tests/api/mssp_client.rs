//! A small ETSI TS 102 204 client for the tests, written from the protocol notes
//! independently of the mock: SOAP 1.2 request builders, a sender, and a reader that finds
//! elements and attributes by local name in the answer.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::helpers::TestMock;

pub const AP_ID: &str = "kyso-dev-ap";
pub const AP_PWD: &str = "kyso-dev-ap-secret";
pub const MSS: &str = "http://uri.etsi.org/TS102204/v1.1.2#";
pub const PKCS7: &str = "http://uri.etsi.org/TS102204/v1.1.2#PKCS7";
pub const VALIDATION: &str = "http://mobile-id.vn/MSSP/v1.0.0#signatureValidation";
pub const SIGNING_CERT: &str = "http://mobile-id.vn/MSSP/v1.0.0#signingCertificate";
const ENV: &str = "http://www.w3.org/2003/05/soap-envelope";

/// An MSS_SignatureReq to build.
#[derive(Clone)]
pub struct SigReq {
    pub carrier: &'static str,
    pub msisdn: String,
    pub ap_trans_id: String,
    pub ap_pwd: String,
    pub mode: &'static str,
    pub timeout: Option<u64>,
    /// The DataToBeSigned element's attributes and content.
    pub dtbs: (String, String),
    pub display: String,
    pub format: Option<&'static str>,
    pub ap_url: Option<String>,
    pub services: Vec<&'static str>,
    pub wrapper_ns: Option<&'static str>,
    pub qualified: bool,
}

impl SigReq {
    pub fn new(carrier: &'static str, msisdn: &str, ap_trans_id: &str, digest: &[u8; 32]) -> Self {
        Self {
            carrier,
            msisdn: msisdn.to_owned(),
            ap_trans_id: ap_trans_id.to_owned(),
            ap_pwd: AP_PWD.to_owned(),
            mode: "asynchClientServer",
            timeout: Some(120),
            dtbs: (
                "MimeType=\"application/octet-stream\" Encoding=\"base64\"".to_owned(),
                B64.encode(digest_info(digest)),
            ),
            display: "DVC: xac nhan dang ky - ma 4821".to_owned(),
            format: None,
            ap_url: None,
            services: Vec::new(),
            wrapper_ns: None,
            qualified: true,
        }
    }

    pub fn mode(mut self, mode: &'static str) -> Self {
        self.mode = mode;
        self
    }

    pub fn xml(&self) -> String {
        let p = if self.qualified { "mss:" } else { "" };
        let timeout = self
            .timeout
            .map(|t| format!(" TimeOut=\"{t}\""))
            .unwrap_or_default();
        let ap_url = self
            .ap_url
            .as_deref()
            .map(|u| format!(" AP_URL=\"{u}\""))
            .unwrap_or_default();
        let format = self
            .format
            .map(|f| format!("<mss:MSS_Format><mss:mssURI>{f}</mss:mssURI></mss:MSS_Format>"))
            .unwrap_or_default();
        let services = if self.services.is_empty() {
            String::new()
        } else {
            let list: String = self
                .services
                .iter()
                .map(|s| {
                    format!("<mss:Service><mss:Description><mss:mssURI>{s}</mss:mssURI></mss:Description></mss:Service>")
                })
                .collect();
            format!("<mss:AdditionalServices>{list}</mss:AdditionalServices>")
        };
        let body = format!(
            concat!(
                "<{p}MSS_SignatureReq MajorVersion=\"1\" MinorVersion=\"1\" MessagingMode=\"{mode}\"{timeout}>",
                "{ap}",
                "<mss:MobileUser><mss:MSISDN>{msisdn}</mss:MSISDN></mss:MobileUser>",
                "<mss:DataToBeSigned {dtbs_attrs}>{dtbs}</mss:DataToBeSigned>",
                "<mss:DataToBeDisplayed MimeType=\"text/plain\" Encoding=\"UTF-8\">{display}</mss:DataToBeDisplayed>",
                "<mss:SignatureProfile><mss:mssURI>http://mobile-id.vn/digitalSignature</mss:mssURI></mss:SignatureProfile>",
                "{services}{format}",
                "</{p}MSS_SignatureReq>"
            ),
            p = p,
            mode = self.mode,
            timeout = timeout,
            ap = ap_info(&self.ap_trans_id, &self.ap_pwd, &ap_url),
            msisdn = self.msisdn,
            dtbs_attrs = self.dtbs.0,
            dtbs = self.dtbs.1,
            display = self.display,
            services = services,
            format = format,
        );
        envelope("MSS_Signature", self.wrapper_ns, &body)
    }
}

fn ap_info(ap_trans_id: &str, ap_pwd: &str, extra: &str) -> String {
    let instant = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    format!(
        concat!(
            "<mss:AP_Info AP_ID=\"{id}\" AP_PWD=\"{pwd}\" AP_TransID=\"{tid}\" Instant=\"{instant}\"{extra}/>",
            "<mss:MSSP_Info><mss:MSSP_ID><mss:URI>http://mssp.example.vn</mss:URI></mss:MSSP_ID></mss:MSSP_Info>"
        ),
        id = AP_ID,
        pwd = ap_pwd,
        tid = ap_trans_id,
        instant = instant,
        extra = extra,
    )
}

pub fn envelope(wrapper: &str, wrapper_ns: Option<&str>, body: &str) -> String {
    let (open, close) = match wrapper_ns {
        Some(ns) => (
            format!("<w:{wrapper} xmlns:w=\"{ns}\">"),
            format!("</w:{wrapper}>"),
        ),
        None => (format!("<{wrapper}>"), format!("</{wrapper}>")),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><env:Envelope xmlns:env=\"{ENV}\" \
         xmlns:mss=\"{MSS}\"><env:Body>{open}{body}{close}</env:Body></env:Envelope>"
    )
}

pub fn status_xml(mssp_trans_id: &str, ap_trans_id: &str) -> String {
    let body = format!(
        "<mss:MSS_StatusReq MajorVersion=\"1\" MinorVersion=\"1\" MSSP_TransID=\"{mssp_trans_id}\">{}</mss:MSS_StatusReq>",
        ap_info(ap_trans_id, AP_PWD, "")
    );
    envelope("MSS_StatusQuery", None, &body)
}

pub fn receipt_xml(mssp_trans_id: &str, msisdn: &str) -> String {
    let body = format!(
        concat!(
            "<mss:MSS_ReceiptReq MajorVersion=\"1\" MinorVersion=\"1\" MSSP_TransID=\"{id}\">{ap}",
            "<mss:MobileUser><mss:MSISDN>{msisdn}</mss:MSISDN></mss:MobileUser>",
            "<mss:Status><mss:StatusCode Value=\"100\"/></mss:Status>",
            "<mss:Message MimeType=\"text/plain\" Encoding=\"UTF-8\">Da ky thanh cong</mss:Message>",
            "</mss:MSS_ReceiptReq>"
        ),
        id = mssp_trans_id,
        ap = ap_info("Kreceipt1", AP_PWD, ""),
        msisdn = msisdn,
    );
    envelope("MSS_Receipt", None, &body)
}

pub fn profile_xml(msisdn: &str) -> String {
    let body = format!(
        "<mss:MSS_ProfileReq MajorVersion=\"1\" MinorVersion=\"1\">{}<mss:MobileUser><mss:MSISDN>{msisdn}</mss:MSISDN></mss:MobileUser></mss:MSS_ProfileReq>",
        ap_info("Kprofile1", AP_PWD, "")
    );
    envelope("MSS_ProfileQuery", None, &body)
}

/// The DER DigestInfo of a SHA-256 digest.
pub fn digest_info(digest: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    out.extend_from_slice(digest);
    out
}

/// An answer: HTTP status, content type and body.
pub struct Answer {
    pub http: u16,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    /// Attributes of the first element with this local name.
    pub fn attr(&self, element: &str, attr: &str) -> Option<String> {
        let mut reader = Reader::from_str(&self.body);
        loop {
            match reader.read_event().ok()? {
                Event::Start(e) | Event::Empty(e) if local(e.name().as_ref()) == element => {
                    return e
                        .attributes()
                        .flatten()
                        .find(|a| local(a.key.as_ref()) == attr)
                        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok())
                        .map(|v| v.into_owned());
                }
                Event::Eof => return None,
                _ => {}
            }
        }
    }

    /// Text of the first element with this local name.
    pub fn text(&self, element: &str) -> Option<String> {
        self.texts(element).into_iter().next()
    }

    /// Texts of every element with this local name, in order.
    pub fn texts(&self, element: &str) -> Vec<String> {
        let mut reader = Reader::from_str(&self.body);
        let mut out = Vec::new();
        let mut inside = false;
        loop {
            match reader.read_event() {
                Ok(Event::Start(e)) if local(e.name().as_ref()) == element => {
                    inside = true;
                    out.push(String::new());
                }
                Ok(Event::End(e)) if local(e.name().as_ref()) == element => inside = false,
                Ok(Event::Text(t)) if inside => {
                    if let Some(last) = out.last_mut() {
                        last.push_str(&t.xml10_content());
                    }
                }
                Ok(Event::Eof) | Err(_) => return out,
                _ => {}
            }
        }
    }

    /// The `StatusCode@Value` of the response.
    pub fn status_code(&self) -> Option<u16> {
        self.attr("StatusCode", "Value")?.parse().ok()
    }

    /// The fault's `env:Value` texts: top code, then the `mss:_NNN` subcode.
    pub fn fault(&self) -> Option<(String, String)> {
        let values = self.texts("Value");
        Some((
            values.first()?.clone(),
            values.get(1).cloned().unwrap_or_default(),
        ))
    }

    pub fn signature(&self) -> Vec<u8> {
        let text = self
            .text("Base64Signature")
            .expect("Base64Signature present");
        B64.decode(text.trim()).expect("base64 signature")
    }
}

fn local(name: &str) -> String {
    name.rsplit(':').next().unwrap_or_default().to_owned()
}

impl TestMock {
    /// POSTs a SOAP document to a carrier's port.
    pub async fn soap(&self, carrier: &str, port: &str, xml: &str) -> Answer {
        self.soap_raw(
            carrier,
            port,
            "application/soap+xml; charset=utf-8",
            xml.as_bytes().to_vec(),
        )
        .await
        .expect("SOAP call answered")
    }

    pub async fn soap_raw(
        &self,
        carrier: &str,
        port: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Result<Answer> {
        let resp = self
            .http
            .post(format!("{}/mssp/{carrier}/soap/services/{port}", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        let http = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        Ok(Answer {
            http,
            content_type,
            body: resp.text().await?,
        })
    }

    pub async fn mss_sign(&self, req: &SigReq) -> Answer {
        self.soap(req.carrier, "MSS_SignaturePort", &req.xml())
            .await
    }

    pub async fn mss_status(&self, carrier: &str, mssp_trans_id: &str) -> Answer {
        self.soap(
            carrier,
            "MSS_StatusQueryPort",
            &status_xml(mssp_trans_id, "Kstatus1"),
        )
        .await
    }

    /// Polls MSS_StatusQuery until it stops answering 504 (or 10 s pass).
    pub async fn mss_final(&self, carrier: &str, mssp_trans_id: &str) -> Answer {
        for _ in 0..200 {
            let answer = self.mss_status(carrier, mssp_trans_id).await;
            if answer.status_code() != Some(504) {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{mssp_trans_id} still outstanding");
    }

    /// The SIM certificate (DER) from MSS_ProfileQuery.
    pub async fn sim_certificate(&self, carrier: &str, msisdn: &str) -> Vec<u8> {
        let answer = self
            .soap(carrier, "MSS_ProfileQueryPort", &profile_xml(msisdn))
            .await;
        assert_eq!(answer.http, 200, "{}", answer.body);
        let text = answer
            .text("X509Certificate")
            .expect("certificate in profile");
        B64.decode(text.trim()).expect("base64 certificate")
    }
}
