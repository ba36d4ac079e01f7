//! The adapter against a scripted MSSP on a local port: answers written from the protocol
//! notes, one per request, so each test pins what kyso sends and what it makes of the answer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use chrono::{Duration as Span, Utc};
use serde_json::json;

use super::*;
use crate::domain::ErrorCode;
use crate::verify::Scheme;

mod hostile;
mod safety;
mod schema;
use crate::providers::Failure;

const TX: &str = "kyso-ses_01JH8Q2X7ABCDEFGHJKMNPQRST";
const AP_TX: &str = "K01JH8Q2X7ABCDEFGHJKMNPQRST";
const MSISDN: &str = "84912345678";

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<(u16, String)>>,
    seen: Mutex<Vec<(String, String)>>,
    /// How long each answer takes.
    delay: Duration,
}

impl Script {
    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn answer(State(s): State<Arc<Script>>, uri: Uri, body: String) -> (StatusCode, String) {
    if let Ok(mut seen) = s.seen.lock() {
        seen.push((uri.path().to_owned(), body));
    }
    tokio::time::sleep(s.delay).await;
    let next = s.answers.lock().ok().and_then(|mut a| a.pop_front());
    let (code, body) = next.unwrap_or((500, "script exhausted".into()));
    (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), body)
}

async fn mssp(mode: &str, answers: Vec<(u16, String)>) -> (Mssp, Arc<Script>) {
    slow_mssp(mode, answers, Duration::ZERO).await
}

async fn slow_mssp(
    mode: &str,
    answers: Vec<(u16, String)>,
    delay: Duration,
) -> (Mssp, Arc<Script>) {
    let script = Arc::new(Script {
        answers: Mutex::new(answers.into()),
        seen: Mutex::default(),
        delay,
    });
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let cfg: MsspConfig = serde_json::from_value(json!({
        "base_url": format!("http://{addr}/mssp/viettel-sim/"),
        "ap_id": "kyso-dev-ap", "ap_pwd": "kyso-dev-ap-secret",
        "messaging_mode": mode, "public_callback_base": "https://kyso.example.vn/",
        "poll_first_ms": 700, "poll_interval_ms": 300, "request_timeout_ms": 2000,
        "receipt_message": null
    }))
    .expect("config");
    assert!(!format!("{cfg:?}").contains("kyso-dev-ap-secret"));
    (Mssp::new("viettel-sim", &cfg).expect("adapter"), script)
}

fn envelope(part: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
        xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#"><env:Body><Wrapper>{part}</Wrapper></env:Body></env:Envelope>"#
    )
}

fn resp(part: &str, code: u32, inner: &str) -> (u16, String) {
    (
        200,
        envelope(&format!(
            r#"<mss:{part} MajorVersion="1" MinorVersion="1" MSSP_TransID="m1">
              <mss:AP_Info AP_ID="kyso-dev-ap" AP_PWD="kyso-dev-ap-secret" AP_TransID="{AP_TX}" Instant="2025-01-15T09:30:00Z"/>
              <mss:MSSP_Info><mss:MSSP_ID><mss:URI>http://mssp</mss:URI></mss:MSSP_ID></mss:MSSP_Info>
              <mss:MobileUser><mss:MSISDN>{MSISDN}</mss:MSISDN></mss:MobileUser>{inner}
              <mss:Status><mss:StatusCode Value="{code}"/><mss:StatusMessage>x</mss:StatusMessage></mss:Status>
             </mss:{part}>"#
        )),
    )
}

fn fault(http: u16, code: u32) -> (u16, String) {
    let body = format!(
        r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault>
          <env:Code><env:Value>env:Receiver</env:Value><env:Subcode><env:Value
            xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#">mss:_{code}</env:Value></env:Subcode></env:Code>
          <env:Reason><env:Text xml:lang="en">NAME</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>"#
    );
    (http, body)
}

fn signature(b64: &str) -> String {
    format!(
        "<mss:MSS_Signature><mss:Base64Signature>{b64}</mss:Base64Signature></mss:MSS_Signature>"
    )
}

fn sign_request() -> SignRequest<'static> {
    SignRequest {
        transaction_id: TX,
        signer: MSISDN,
        digest: &[9; 32],
        verification_code: "4821",
        display_text: "Đăng ký tài khoản - Mã xác nhận 4821",
        document_name: None,
        purpose: crate::domain::Purpose::Register,
        expires_at: Utc::now() + Span::seconds(120),
    }
}

async fn status(m: &Mssp, state: &serde_json::Value) -> Result<Outcome, ProviderError> {
    m.status(&StatusRequest {
        transaction_id: TX,
        signer: MSISDN,
        state,
    })
    .await
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn asynch_client_server_acknowledges_then_polls_until_the_signature() {
    use base64::prelude::{Engine as _, BASE64_STANDARD};
    let (sim, ca) = (fixture("sim.der"), fixture("issuing-ca.der"));
    let cert_xml = format!(
        r#"<mss:StatusDetail><fi:ServiceResponses xmlns:fi="http://mss.ficom.fi/TS102204/v1.0.0#"><fi:ServiceResponse>
              <fi:Description><mss:mssURI>http://mobile-id.vn/MSSP/v1.0.0#signingCertificate</mss:mssURI></fi:Description>
              <m:signingCertificate xmlns:m="http://www.methics.fi/KiuruMSSP/v5.0.0#">
              <m:X509Certificate>{}</m:X509Certificate><m:X509Certificate>{}</m:X509Certificate>
              </m:signingCertificate></fi:ServiceResponse></fi:ServiceResponses></mss:StatusDetail>"#,
        BASE64_STANDARD.encode(&ca),
        BASE64_STANDARD.encode(&sim)
    );
    let signed = resp("MSS_StatusResp", 500, &signature("AQID"));
    let signed = (
        signed.0,
        signed.1.replace(
            "<mss:StatusMessage>x</mss:StatusMessage>",
            &format!("<mss:StatusMessage>x</mss:StatusMessage>{cert_xml}"),
        ),
    );
    let (m, script) = mssp(
        "asynch_client_server",
        vec![
            resp("MSS_SignatureResp", 100, ""),
            resp("MSS_StatusResp", 504, ""),
            signed,
        ],
    )
    .await;
    let started = m.start(&sign_request()).await.expect("started");
    assert_eq!(started.first_check_in, Duration::from_millis(700));
    let waiting = status(&m, &started.state).await.expect("status");
    let Outcome::Waiting { next_check_in } = waiting else {
        panic!("504 means waiting: {waiting:?}");
    };
    assert!((300..=360).contains(&(next_check_in.as_millis() as u64)));
    let Outcome::Signed {
        signature,
        scheme,
        certificate,
    } = status(&m, &started.state).await.expect("status")
    else {
        panic!("500 means signed");
    };
    assert_eq!((signature, scheme), (vec![1, 2, 3], Scheme::Pkcs1v15));
    let bundle = certificate.expect("certificate from the additional service");
    assert_eq!((bundle.certificate, bundle.chain), (sim, vec![ca]));
    let seen = script.seen();
    assert_eq!(
        seen[0].0,
        "/mssp/viettel-sim/soap/services/MSS_SignaturePort"
    );
    assert_eq!(
        seen[1].0,
        "/mssp/viettel-sim/soap/services/MSS_StatusQueryPort"
    );
    let sign = &seen[0].1;
    assert!(
        sign.contains(r#"MessagingMode="asynchClientServer""#),
        "{sign}"
    );
    assert!(sign.contains(&format!(r#"AP_TransID="{AP_TX}""#)) && !sign.contains("AP_URL"));
    assert!(sign.contains("<mss:MSISDN>84912345678</mss:MSISDN>"));
    assert!(sign.contains(">Đăng ký tài khoản - Mã xác nhận 4821<"));
    for (_, poll) in &seen[1..] {
        assert!(
            poll.contains(r#"MSSP_TransID="m1""#) && poll.contains(AP_TX),
            "{poll}"
        );
    }
}

#[tokio::test]
async fn synch_mode_hands_the_held_answer_to_status_without_another_call() {
    let (m, script) = mssp(
        "synch",
        vec![
            resp("MSS_SignatureResp", 502, &signature("AQID")),
            fault(500, 401),
        ],
    )
    .await;
    let started = m.start(&sign_request()).await.expect("started");
    assert_eq!(started.first_check_in, Duration::ZERO);
    let outcome = status(&m, &started.state).await.expect("status");
    assert!(matches!(outcome, Outcome::Signed { ref signature, .. } if signature == &[1, 2, 3]));
    assert_eq!(script.seen().len(), 1);
    assert!(script.seen()[0].1.contains(r#"MessagingMode="synch""#));
    // A refusal in the held call is `rejected`, as a polled one would be.
    let started = m.start(&sign_request()).await.expect("started");
    let outcome = status(&m, &started.state).await.expect("status");
    assert!(matches!(outcome, Outcome::Rejected { provider_code: Some(ref c) } if c == "401"));
}

#[tokio::test]
async fn asynch_server_server_sends_ap_url_and_answers_notifications_with_a_receipt() {
    let acks = vec![resp("MSS_SignatureResp", 100, ""); 2];
    let (m, script) = slow_mssp("asynch_server_server", acks, Duration::from_millis(300)).await;
    let m = Arc::new(m);
    let note = resp("MSS_StatusResp", 500, &signature("AQID")).1;
    // Without a notification, the first check waits for the safety-net poll.
    let started = m.start(&sign_request()).await.expect("started");
    assert_eq!(started.first_check_in, Duration::from_millis(700));
    // A notification that beats the acknowledgement makes the first check immediate.
    let call = tokio::spawn({
        let m = m.clone();
        async move { m.start(&sign_request()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = m.handle_callback(note.as_bytes()).expect("notification");
    assert_eq!(answer.hints.len(), 1);
    assert_eq!(answer.hints[0].transaction_id, TX);
    let reply = answer.reply.expect("a SOAP receipt");
    let text = String::from_utf8(reply.body).expect("utf-8");
    assert!(reply.content_type.starts_with("application/soap+xml"));
    assert!(text.contains("MSS_ReceiptReq") && text.contains(r#"MSSP_TransID="m1""#));
    assert!(!text.contains("kyso-dev-ap-secret"), "{text}");
    let started = call.await.expect("task").expect("started");
    assert_eq!(started.first_check_in, Duration::ZERO);
    let sign = &script.seen()[0].1;
    assert!(sign.contains(r#"MessagingMode="asynchServerServer""#));
    assert!(sign.contains(r#"AP_URL="https://kyso.example.vn/callbacks/viettel-sim""#));
}

#[tokio::test]
async fn faults_statuses_and_plain_http_errors_map_through_the_code_table() {
    let (m, _) = mssp(
        "asynch_client_server",
        vec![
            fault(500, 402),
            (500, "<html>oops</html>".into()),
            fault(500, 900),
            (404, "<html>not here</html>".into()),
            // The VN deviation: an error code inside Status with HTTP 200.
            resp("MSS_SignatureResp", 100, ""),
            resp("MSS_StatusResp", 401, ""),
            fault(500, 208),
        ],
    )
    .await;
    let pin = m.start(&sign_request()).await.err();
    let Some(ProviderError::Final(Failure {
        code,
        provider_code,
        ..
    })) = pin
    else {
        panic!("402 ends the session");
    };
    assert_eq!(
        (code, provider_code.as_deref()),
        (ErrorCode::PinBlocked, Some("402"))
    );
    for _ in 0..2 {
        let e = m.start(&sign_request()).await.err();
        assert!(
            e.is_some_and(|e| e.is_transient()),
            "plain 500 and 900 are retried"
        );
    }
    let Some(ProviderError::Final(f)) = m.start(&sign_request()).await.err() else {
        panic!("a 404 page is final");
    };
    assert_eq!(f.provider_code.as_deref(), Some("http-404"));
    let started = m.start(&sign_request()).await.expect("started");
    let outcome = status(&m, &started.state).await.expect("status");
    assert!(matches!(outcome, Outcome::Rejected { provider_code: Some(ref c) } if c == "401"));
    let outcome = status(&m, &started.state).await.expect("status");
    assert!(matches!(outcome, Outcome::Expired { provider_code: Some(ref c) } if c == "208"));
}

#[tokio::test]
async fn cms_answers_give_their_certificate_and_signed_attributes_go_to_the_cms_verifier() {
    use base64::prelude::{Engine as _, BASE64_STANDARD};
    let (noattr, withattr, person) = (
        fixture("cms-person-noattr.der"),
        fixture("cms-org.der"),
        fixture("person.der"),
    );
    let (m, _) = mssp(
        "synch",
        vec![
            resp(
                "MSS_SignatureResp",
                500,
                &signature(&BASE64_STANDARD.encode(noattr)),
            ),
            resp(
                "MSS_SignatureResp",
                500,
                &signature(&BASE64_STANDARD.encode(&withattr)),
            ),
        ],
    )
    .await;
    let started = m.start(&sign_request()).await.expect("started");
    let Ok(Outcome::Signed { certificate, .. }) = status(&m, &started.state).await else {
        panic!("a CMS without signed attributes is a plain signature");
    };
    assert_eq!(certificate.map(|c| c.certificate), Some(person));
    // With signed attributes the whole CMS goes to the engine, which verifies it as a CMS.
    let started = m.start(&sign_request()).await.expect("started");
    let Ok(Outcome::SignedCms { cms, certificate }) = status(&m, &started.state).await else {
        panic!("signed attributes are handed over as a CMS");
    };
    assert_eq!(cms, withattr);
    assert!(certificate.is_some());
}

#[test]
fn a_misconfigured_instance_is_refused_at_start_up() {
    let cfg = |extra: serde_json::Value| -> MsspConfig {
        let mut v = json!({"base_url": "http://127.0.0.1:1", "ap_id": "a", "ap_pwd": "p"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value(v).expect("config")
    };
    assert!(Mssp::new("x", &cfg(json!({"messaging_mode": "asynch_server_server"}))).is_err());
    assert!(Mssp::new("x", &cfg(json!({"ucs2_limit": 5}))).is_err());
    assert!(Mssp::new("x", &cfg(json!({"base_url": "not a url"}))).is_err());
    assert!(Mssp::new("x", &cfg(json!({}))).is_ok());
}
