//! What must never happen: the AP password leaking into a session error, or a SIM certificate
//! of another number passing for the requested MSISDN.

use super::*;

#[tokio::test]
async fn an_mssp_that_echoes_the_ap_password_into_its_text_does_not_leak_it() {
    let (_, body) = resp("MSS_SignatureResp", 101, "");
    let body = body.replace(
        "<mss:StatusMessage>x</mss:StatusMessage>",
        "<mss:StatusMessage>bad AP_PWD kyso-dev-ap-secret</mss:StatusMessage>",
    );
    let (m, _) = mssp("asynch_client_server", vec![(200, body)]).await;
    let Some(ProviderError::Final(f)) = m.start(&sign_request()).await.err() else {
        panic!("101 is final");
    };
    assert!(!f.message.contains("kyso-dev-ap-secret"), "{}", f.message);
    assert!(f.message.contains("[AP_PWD]"), "{}", f.message);
}

#[test]
fn a_sim_certificate_for_another_number_is_a_signer_mismatch() {
    // What the engine's judge does with a SIM answer: verify, then match the MSISDN.
    let files = [
        "sim.der",
        "sig-sim.pkcs1",
        "issuing-ca.der",
        "root-ca.der",
        "data.sha256",
    ];
    let [cert, sig, ca, root, digest] = files.map(fixture);
    let digest: [u8; 32] = digest.try_into().expect("32-byte digest");
    let check = crate::verify::SignatureCheck {
        digest: &digest,
        signature: &sig,
        scheme: Scheme::Pkcs1v15,
        certificate: &cert,
        chain: &[ca],
        at: Utc::now(),
    };
    let anchors = crate::verify::TrustAnchors::from_der(vec![root]).expect("anchor");
    let verdict = crate::verify::verify(&check, &anchors).expect("the SIM signature verifies");
    assert!(crate::verify::signer_matches(&verdict.identity, MSISDN));
    assert!(!crate::verify::signer_matches(
        &verdict.identity,
        "84912345679"
    ));
    assert!(!crate::verify::signer_matches(
        &verdict.identity,
        "84812345678"
    ));
}
