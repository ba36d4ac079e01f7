//! Hostile XML through the real entry points, an MSSP's answer and the unauthenticated
//! MSS_Notification: a start tag with thousands of attributes (RUSTSEC-2026-0194, quadratic
//! duplicate-name check) and one with thousands of namespace declarations (RUSTSEC-2026-0195,
//! resolver memory allocated before kyso sees the tag). Both must be refused, fast; a refusal
//! of the declarations happens before they are stored, which is what bounds the memory.

use std::time::Instant;

use super::*;

/// A normal answer is parsed in well under a millisecond; this leaves room for a debug build
/// on a busy machine while still failing on the quadratic parser (seconds).
const QUICK: Duration = Duration::from_millis(250);

/// `n` attributes with distinct names on the part element, just under the document limit.
fn with_attributes(doc: &str, n: usize) -> String {
    let attrs: String = (0..n).map(|i| format!(" a{i}=\"\"")).collect();
    let doc = doc.replacen("MajorVersion=", &format!("{attrs} MajorVersion="), 1);
    assert!(doc.len() < xml::MAX_DOCUMENT_BYTES, "{}", doc.len());
    doc
}

/// `n` namespace declarations on the part element, just under the document limit.
fn with_namespaces(doc: &str, n: usize) -> String {
    let decls: String = (0..n).map(|i| format!(" xmlns:n{i}=\"urn:x\"")).collect();
    let doc = doc.replacen("MajorVersion=", &format!("{decls} MajorVersion="), 1);
    assert!(doc.len() < xml::MAX_DOCUMENT_BYTES, "{}", doc.len());
    doc
}

async fn refused_answer(body: String) -> (Failure, Duration) {
    let (m, _) = mssp("asynch_client_server", vec![(200, body)]).await;
    let started = Instant::now();
    let outcome = m.start(&sign_request()).await;
    let took = started.elapsed();
    match outcome {
        Err(ProviderError::Final(f)) => (f, took),
        other => panic!("a hostile answer must be a final error, not {other:?} (after {took:?})"),
    }
}

#[tokio::test]
async fn an_mssp_answer_with_thousands_of_attributes_on_one_tag_is_refused_in_milliseconds() {
    let body = with_attributes(&resp("MSS_SignatureResp", 100, "").1, 24_000);
    let (failure, took) = refused_answer(body).await;
    assert!(
        failure.message.contains("attributes"),
        "{}",
        failure.message
    );
    assert!(took < QUICK, "took {took:?}");
}

#[tokio::test]
async fn an_mssp_answer_with_thousands_of_namespace_declarations_is_refused_in_milliseconds() {
    let body = with_namespaces(&resp("MSS_SignatureResp", 100, "").1, 10_000);
    let (failure, took) = refused_answer(body).await;
    assert!(failure.message.contains("namespace"), "{}", failure.message);
    assert!(took < QUICK, "took {took:?}");
}

#[tokio::test]
async fn a_notification_with_thousands_of_attributes_or_namespaces_is_refused_in_milliseconds() {
    let (m, _) = mssp("asynch_server_server", vec![]).await;
    let note = resp("MSS_StatusResp", 500, &signature("AQID")).1;
    assert!(
        m.handle_callback(note.as_bytes()).is_ok(),
        "the plain one is read"
    );
    for (shape, body) in [
        ("attributes", with_attributes(&note, 24_000)),
        ("namespace", with_namespaces(&note, 10_000)),
    ] {
        let started = Instant::now();
        let refused = m.handle_callback(body.as_bytes());
        let took = started.elapsed();
        let Err(e) = refused else {
            panic!("a notification with thousands of {shape} was read (after {took:?})");
        };
        assert!(e.to_string().contains(shape), "{e}");
        assert!(took < QUICK, "{shape}: took {took:?}");
    }
}
