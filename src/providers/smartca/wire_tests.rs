use super::*;

fn failure(c: Classified) -> Option<(ErrorCode, String)> {
    match c {
        Classified::Failed(f) => Some((f.code, f.provider_code.unwrap_or_default())),
        _ => None,
    }
}

#[test]
fn every_documented_status_code_has_its_meaning() {
    assert_eq!(classify("200", "sig_wait_for_user_confirm"), Classified::Ok);
    for (code, want) in [
        ("400", ErrorCode::ProviderError),
        ("401", ErrorCode::ProviderError),
        ("403", ErrorCode::PinBlocked),
        ("65000", ErrorCode::ProviderError),
    ] {
        assert_eq!(
            failure(classify(code, "m")),
            Some((want, code.to_owned())),
            "{code}"
        );
    }
    assert!(matches!(classify("500", "x"), Classified::Transient(_)));
    let expired = Classified::Expired {
        provider_code: "4001".into(),
    };
    assert_eq!(classify("4001", "transaction_expired"), expired);
    let rejected = Classified::Rejected {
        provider_code: "4002".into(),
    };
    assert_eq!(classify("4002", "signer_rejected"), rejected);
    // 4000: the signer has not answered yet; a status poll keeps waiting.
    assert_eq!(classify("4000", "waiting_for_signer"), Classified::Ok);
    assert!(matches!(
        classify("4000", "waiting_for_signer").status_outcome(),
        Ok(None)
    ));
}

#[test]
fn a_refused_sp_credential_says_the_gateway_config_is_wrong() {
    let Classified::Failed(f) = classify("401", "sp invalid") else {
        panic!("401 must fail");
    };
    assert!(f.message.contains("sp_id/sp_password"), "{}", f.message);
}

#[test]
fn rejected_outside_a_status_poll_is_a_final_provider_error() {
    let err = classify("4002", "x").require_ok().err();
    let code = err.and_then(|e| {
        if let ProviderError::Final(f) = e {
            Some(f.code)
        } else {
            None
        }
    });
    assert_eq!(code, Some(ErrorCode::ProviderError));
    assert!(classify("500", "x")
        .require_ok()
        .is_err_and(|e| e.is_transient()));
}

#[test]
fn status_code_is_read_from_a_number_or_a_string() {
    for body in [
        r#"{"status_code": 200, "message": "ok", "data": null}"#,
        r#"{"status_code": "200", "message": null}"#,
        r#"{"status_code": " 200 ", "extra": [1, 2]}"#,
    ] {
        let env: Envelope<StatusData> = serde_json::from_str(body).expect(body);
        assert_eq!(env.classify(), Classified::Ok, "{body}");
    }
    assert!(serde_json::from_str::<Envelope<StatusData>>(r#"{"message": "x"}"#).is_err());
}

#[test]
fn a_signature_value_key_with_a_trailing_space_is_accepted() {
    let body = r#"{"status_code": 200, "data": {"transaction_id": "t", "signatures":
        [{"doc_id": "d", "signature_value ": "AQID", "timestamp_signature": null}]}}"#;
    let env: Envelope<StatusData> = serde_json::from_str(body).expect("parses");
    assert_eq!(
        env.data.and_then(StatusData::into_signature).as_deref(),
        Some("AQID")
    );
}

#[test]
fn null_or_empty_signatures_mean_not_yet_confirmed() {
    for sigs in ["null", "[]", r#"[{"doc_id": "d", "signature_value": ""}]"#] {
        let body = format!(r#"{{"transaction_id": "t", "signatures": {sigs}}}"#);
        let data: StatusData = serde_json::from_str(&body).expect("parses");
        assert_eq!(data.into_signature(), None, "{sigs}");
    }
}

#[test]
fn cert_status_is_normalised_across_languages_and_forms() {
    use CertStatus::*;
    for (raw, want) in [
        ("Đang hoạt động", Active),
        ("Hoạt động", Active),
        // The same words decomposed (NFD), as some systems send them.
        ("Hoa\u{323}t \u{111}o\u{323}\u{302}ng", Active),
        ("ACTIVE", Active),
        ("VALID", Active),
        ("1", Active),
        ("Đã khóa", Locked),
        ("Đã bị khóa", Locked),
        ("LOCKED", Locked),
        ("Ngừng hoạt động", Locked),
        ("inactive", Locked),
        ("0", Locked),
        ("revoked", Revoked),
        ("Đã thu hồi", Revoked),
        ("Hết hạn", Expired),
        ("EXPIRED", Expired),
        ("7", Unknown),
        ("", Unknown),
    ] {
        assert_eq!(normalise_cert_status(raw), want, "{raw:?}");
    }
}

#[test]
fn a_certificate_entry_becomes_a_bundle_issuer_first() {
    let c: UserCertificate = serde_json::from_str(
        r#"{"cert_status": 1, "serial_number": "54ab", "cert_data": "AQ\r\nID",
            "chain_data": {"ca_cert": "BA==", "root_cert": null}, "new_field": {}}"#,
    )
    .expect("parses");
    assert_eq!(c.cert_status.as_deref(), Some("1"));
    let bundle = c.bundle().expect("bundle");
    assert_eq!(
        (bundle.certificate, bundle.chain),
        (vec![1, 2, 3], vec![vec![4]])
    );
    assert_eq!(decode_b64("  "), None);
}

#[test]
fn the_webhook_is_parsed_with_its_signed_files() {
    let body = r#"{"sp_id": "sp", "status_code": 200, "message": "ok",
        "transaction_id": "kyso-ses_01", "signed_files": [{"doc_id": "d",
        "signature_value": "AQID", "timestamp_signature": "x"}], "more": true}"#;
    let hook: Webhook = serde_json::from_str(body).expect("parses");
    assert_eq!(hook.transaction_id, "kyso-ses_01");
    assert_eq!(hook.status_code.as_deref(), Some("200"));
    assert_eq!(hook.signed_files.map(|f| f.len()), Some(1));
    assert!(serde_json::from_str::<Webhook>(r#"{"sp_id": "sp"}"#).is_err());
}
