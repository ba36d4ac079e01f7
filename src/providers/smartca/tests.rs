use super::choose::Chosen;
use super::*;
use base64::prelude::{Engine, BASE64_STANDARD};
use chrono::DateTime;
use der::Decode;

const NOW: &str = "2026-06-01T00:00:00Z";
const VALID: (&str, &str) = ("2025-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
const PAST: (&str, &str) = ("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z");

fn cert(serial: &str, service: &str, status: &str, (from, to): (&str, &str)) -> UserCertificate {
    let chain = wire::ChainData {
        ca_cert: Some(BASE64_STANDARD.encode("ca")),
        root_cert: None,
    };
    UserCertificate {
        service_type: Some(service.into()),
        cert_status: Some(status.into()),
        serial_number: Some(serial.into()),
        cert_valid_from: Some(from.into()),
        cert_valid_to: Some(to.into()),
        // Not DER, so the date strings decide validity.
        cert_data: Some(BASE64_STANDARD.encode(serial)),
        chain_data: Some(chain),
        ..Default::default()
    }
}

fn choose(certs: &[UserCertificate]) -> Result<Chosen, Failure> {
    choose_certificate(certs, wire::parse_date(NOW).expect("date"))
}

#[test]
fn an_active_personal_certificate_valid_now_is_chosen() {
    let certs = [
        cert("seal", "ESEAL", "Đang hoạt động", VALID),
        cert("old", "SMARTCA", "ACTIVE", PAST),
        cert("locked", "SMARTCA", "Đã khóa", VALID),
        cert("unknown", "SMARTCA", "pending review", VALID),
        cert(
            "person",
            "SMARTCA",
            "Hoạt động",
            ("2025-01-01 00:00:00", "2026-12-01 00:00:00"),
        ),
    ];
    let chosen = choose(&certs).expect("a certificate");
    assert_eq!(chosen.serial, "person");
    assert_eq!(chosen.bundle.certificate, b"person");
    assert_eq!(chosen.bundle.chain, vec![b"ca".to_vec()]);
    assert_eq!(choose(&certs[..1]).expect("seal").serial, "seal");
    // An unknown status is a last resort: VNPT decides at sign time.
    assert_eq!(choose(&certs[1..4]).expect("unknown").serial, "unknown");
}

#[test]
fn without_a_usable_certificate_the_failure_says_why() {
    let cases = [
        (vec![], ErrorCode::NoCertificate, None),
        (
            vec![cert("old", "SMARTCA", "1", PAST)],
            ErrorCode::CertificateExpired,
            None,
        ),
        (
            vec![cert("r", "SMARTCA", "Đã thu hồi", VALID)],
            ErrorCode::RevokedCertificate,
            Some("Đã thu hồi"),
        ),
        (
            vec![
                cert("old", "SMARTCA", "ACTIVE", PAST),
                cert("l", "SMARTCA", "Đã khóa", VALID),
            ],
            ErrorCode::PinBlocked,
            Some("Đã khóa"),
        ),
    ];
    for (certs, code, provider_code) in cases {
        let err = choose(&certs).expect_err("nothing usable");
        assert_eq!(
            (err.code, err.provider_code.as_deref()),
            (code, provider_code)
        );
    }
}

#[test]
fn the_status_url_carries_the_configured_id() {
    let state = State {
        tran_code: Some("TC 1/x".into()),
        serial_number: None,
    };
    assert_eq!(StatusPathId::TransactionId.pick("kyso-t", &state), "kyso-t");
    assert_eq!(StatusPathId::TranCode.pick("kyso-t", &state), "TC 1/x");
    assert_eq!(
        StatusPathId::TranCode.pick("kyso-t", &State::default()),
        "kyso-t"
    );
    assert_eq!(encode_segment("TC 1/x"), "TC%201%2Fx");
}

fn smartca() -> SmartCa {
    let cfg: SmartcaConfig = serde_json::from_value(serde_json::json!({
        "base_url": "http://127.0.0.1:8701/sca/sp769/", "sp_id": "sp", "sp_password": "hunter2"
    }))
    .expect("config");
    assert_eq!(
        (
            cfg.request_timeout_ms,
            cfg.poll_first_ms,
            cfg.poll_interval_ms
        ),
        (10_000, 5_000, 3_000)
    );
    assert_eq!(cfg.status_path_id, StatusPathId::TransactionId);
    assert!(!format!("{cfg:?}").contains("hunter2"));
    SmartCa::new(&cfg).expect("client")
}

#[test]
fn a_webhook_is_only_a_hint_and_junk_is_refused() {
    let smartca = smartca();
    assert_eq!(smartca.base_url, "http://127.0.0.1:8701/sca/sp769");
    let hook = br#"{"sp_id": "sp", "status_code": 200, "transaction_id": "kyso-ses_1",
        "signed_files": null}"#;
    let hints = smartca.parse_callback(hook).expect("hint");
    assert_eq!(hints[0].transaction_id, "kyso-ses_1");
    assert!(smartca.parse_callback(b"not json").is_err());
    assert!(smartca
        .parse_callback(br#"{"sp_id":"other","transaction_id":"t"}"#)
        .is_err());
    assert!(smartca
        .parse_callback(br#"{"transaction_id":"a b"}"#)
        .is_err());
    assert!(smartca
        .parse_callback(&vec![b' '; MAX_CALLBACK_BYTES + 1])
        .is_err());
}

#[test]
fn the_certificate_s_own_dates_outrank_the_date_strings() {
    let fixtures = [
        &include_bytes!("../../../tests/fixtures/director.der")[..],
        &include_bytes!("../../../tests/fixtures/expired.der")[..],
        &include_bytes!("../../../tests/fixtures/issuing-ca.der")[..],
        &include_bytes!("../../../tests/fixtures/sim.der")[..],
    ];
    for der in fixtures {
        let full = x509_cert::Certificate::from_der(der).expect("fixture");
        assert_eq!(wire::der_validity(der), Ok(full.tbs_certificate.validity));
        // Cut short or with bytes after it, it is not a certificate.
        assert!(wire::der_validity(&der[..der.len() - 1]).is_err());
        assert!(wire::der_validity(&[der, &[0][..]].concat()).is_err());
    }

    // A version 1 certificate has no [0] version field before its serial number.
    let mut v1 = x509_cert::Certificate::from_der(fixtures[0]).expect("fixture");
    v1.tbs_certificate.version = x509_cert::Version::V1;
    v1.tbs_certificate.extensions = None;
    let v1_der = der::Encode::to_der(&v1).expect("encode");
    // After the two SEQUENCE headers (4 bytes each): the [0] version, or straight the serial.
    assert_eq!((fixtures[0][8], v1_der[8]), (0xa0, 0x02));
    assert_eq!(wire::der_validity(&v1_der), Ok(v1.tbs_certificate.validity));

    // The strings say long expired; the DER's dates decide, either way.
    let mut director = cert("d", "SMARTCA", "ACTIVE", PAST);
    director.cert_data = Some(BASE64_STANDARD.encode(fixtures[0]));
    let validity = wire::der_validity(fixtures[0]).expect("validity");
    let from = DateTime::<Utc>::from(validity.not_before.to_system_time());
    let inside = from + chrono::Duration::days(1);
    let chosen = choose_certificate(std::slice::from_ref(&director), inside);
    assert_eq!(chosen.expect("valid DER").serial, "d");
    // Before its notBefore it is not usable, though the strings say nothing against it.
    director.cert_valid_from = Some(VALID.0.into());
    director.cert_valid_to = Some(VALID.1.into());
    let before = from - chrono::Duration::days(1);
    let refused = choose_certificate(&[director], before).expect_err("not yet valid");
    assert_eq!(refused.code, ErrorCode::NoCertificate);
    // The expired fixture is refused as expired whatever the strings say.
    let mut expired = cert("e", "SMARTCA", "ACTIVE", VALID);
    expired.cert_data = Some(BASE64_STANDARD.encode(fixtures[1]));
    let refused = choose(&[expired]).expect_err("expired DER");
    assert_eq!(refused.code, ErrorCode::CertificateExpired);
}
