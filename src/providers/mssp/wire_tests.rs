use super::*;
use crate::providers::mssp::soap::{parse_answer, Answer};

fn header() -> Header<'static> {
    Header {
        dialect: Dialect {
            wrapper_namespace: None,
            qualify_part: true,
        },
        ap: ApInfo {
            ap_id: "kyso-dev-ap",
            ap_pwd: "s3cret",
            ap_trans_id: "K01JH8Q2X7ABCDEFGHJKMNPQRS",
            instant: DateTime::parse_from_rfc3339("2025-01-15T02:30:00Z")
                .expect("date")
                .with_timezone(&Utc),
            ap_url: None,
        },
        mssp_id: "http://hmssp.mobile-id.vn",
    }
}

#[test]
fn the_data_to_be_signed_is_the_sha256_digest_info() {
    use sha2::{Digest, Sha256};
    let digest: [u8; 32] = Sha256::digest(b"hello").into();
    // The example in the notes (§3).
    assert_eq!(
        data_to_be_signed(&digest),
        "MDEwDQYJYIZIAWUDBAIBBQAEICzyTbpfsKMOJug7KsW54p4bFh5cH6dCXnMEM2KTi5gk"
    );
}

#[test]
fn a_signature_request_follows_the_chosen_element_order() {
    let services = vec!["http://mobile-id.vn/MSSP/v1.0.0#signingCertificate".to_owned()];
    let mut req = SignatureReq {
        header: header(),
        mode: "asynchClientServer",
        timeout_s: 120,
        msisdn: "84912345678",
        digest: &[7; 32],
        display: "Đăng ký - Mã xác nhận 4821",
        signature_profile: Some("http://mobile-id.vn/digitalSignature"),
        services: &services,
        format_uri: FORMAT_PKCS1,
        order: ElementOrder::Etsi,
    };
    let names = |xml: &str| -> Vec<String> {
        let root = super::super::xml::parse(xml.as_bytes()).expect("xml");
        let part = &root.child("Body").expect("body").children[0].children[0];
        part.children.iter().map(|c| c.name.clone()).collect()
    };
    let etsi = signature_req(&req);
    assert_eq!(
        names(&etsi),
        [
            "AP_Info",
            "MSSP_Info",
            "MobileUser",
            "DataToBeSigned",
            "DataToBeDisplayed",
            "SignatureProfile",
            "AdditionalServices",
            "MSS_Format"
        ]
    );
    assert!(etsi.contains(r#"MessagingMode="asynchClientServer" TimeOut="120""#));
    assert!(etsi.contains(r#"Instant="2025-01-15T02:30:00.000Z""#));
    assert!(etsi.contains(">Đăng ký - Mã xác nhận 4821<"));
    req.order = ElementOrder::Vn;
    let vn = names(&signature_req(&req));
    assert_eq!(
        vn[5..],
        ["MSS_Format", "SignatureProfile", "AdditionalServices"]
    );
}

#[test]
fn the_notification_answer_never_carries_the_ap_password() {
    let out = notification_answer(&header(), "h4dhx", Some("84912345678"));
    assert!(!out.contains("s3cret"));
    let Ok(Answer::Message(m)) = parse_answer(out.as_bytes()) else {
        panic!("our own answer parses");
    };
    assert_eq!(m.part, "MSS_ReceiptReq");
    assert_eq!(m.status.map(|s| s.code), Some(100));
}

#[test]
fn every_code_of_the_notes_has_its_meaning() {
    use ErrorCode::*;
    use Meaning::*;
    // Every row of the notes' §9 table (protocols/etsi-102-204.md), its name as the notes
    // spell it and the meaning their suggested mapping gives (config bugs: provider_error).
    let cfg = Failed(ProviderError);
    let mut rows = vec![
        (100, "REQUEST_OK", Accepted),
        (101, "WRONG_PARAM", cfg),
        (102, "MISSING_PARAM", cfg),
        (103, "WRONG_DATA_LENGTH", cfg),
        (104, "UNAUTHORIZED_ACCESS", cfg),
        (105, "UNKNOWN_CLIENT", Failed(NotSubscribed)),
        (106, "HANDSHAKE_REQUIRED", cfg),
        (107, "INAPPROPRIATE_DATA", cfg),
        (108, "INCOMPATIBLE_INTERFACE", cfg),
        (109, "UNSUPPORTED_PROFILE", cfg),
        (208, "EXPIRED_TRANSACTION", Expired),
        (209, "OTA_ERROR", Failed(ProviderUnavailable)),
        (400, "USER_SIGN", Outstanding),
        (401, "USER_CANCEL", Rejected),
        (402, "PIN_NR_BLOCKED", Failed(PinBlocked)),
        (403, "CARD_BLOCKED", Failed(PinBlocked)),
        (404, "NO_KEY_FOUND", Failed(NoCertificate)),
        (405, "NO_URL_FOUND", cfg),
        (406, "PB_SIGNATURE_PROCESS", cfg),
        (407, "REGISTRATION_NOK", cfg),
        (408, "REGISTRATION_OK", Accepted),
        (422, "NO_CERT_FOUND", Failed(NoCertificate)),
        (423, "CRL_PB", Failed(UntrustedCertificate)),
        (424, "CRL_EXPIRED", Failed(UntrustedCertificate)),
        (425, "ERROR_CERTIFICATE", Failed(UntrustedCertificate)),
        (500, "SIGNATURE", Signed),
        (501, "REVOKED_CERTIFICATE", Failed(RevokedCertificate)),
        (502, "VALID_SIGNATURE", Signed),
        (503, "INVALID_SIGNATURE", Failed(InvalidSignature)),
        (504, "OUTSTANDING_TRANSACTION", Outstanding),
        (505, "CONSTRAINT_MISMATCH", Failed(UntrustedCertificate)),
        (900, "INTERNAL_ERROR", Transient),
        (12345, "UNKNOWN_CODE", cfg),
    ];
    rows.extend((600..=603).map(|c| (c, "RECEIPT", Accepted)));
    for c in [701, 702, 703, 710, 720] {
        rows.push((c, "ROAMING_ERROR", Failed(ProviderUnavailable)));
    }
    for c in [750, 760, 770, 780] {
        rows.push((c, "ROAMING_SERVICE_ERROR", Failed(ProviderUnavailable)));
    }
    rows.extend((9001..=9008).map(|c| (c, "INTERNAL_ERROR", Transient)));
    for (code, name, want) in rows {
        assert_eq!(status_table(code), (name, want), "{code}");
    }
}

#[test]
fn ap_trans_ids_are_short_ncnames_that_map_back_to_the_session() {
    let ulid = "01JH8Q2X7ABCDEFGHJKMNPQRST";
    let tx = format!("kyso-ses_{ulid}");
    let id = ap_trans_id(&tx);
    assert_eq!(id, format!("K{ulid}"));
    assert!(id.len() <= 32);
    assert_eq!(transaction_id(&id), Some(tx));
    assert_eq!(transaction_id("Knot-a-ulid"), None);
    assert_eq!(transaction_id("7f3a9c2d1e"), None);
    assert_eq!(ap_trans_id("9:odd id"), "K9oddid");
}
