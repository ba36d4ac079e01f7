//! Hostile XML sent to the mock MSSP's ports: a start tag with thousands of attributes
//! (RUSTSEC-2026-0194) and one with thousands of namespace declarations (RUSTSEC-2026-0195)
//! are answered with a WRONG_PARAM fault in milliseconds, and the mock keeps serving.

use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::mssp_client::*;

/// A normal request is read in well under a millisecond; the quadratic parser took seconds.
const QUICK: Duration = Duration::from_millis(250);

/// The request with `extra` placed on the part element, under the mock's body limit.
fn hostile(req: &SigReq, extra: String) -> String {
    let xml = req
        .xml()
        .replacen("MajorVersion=", &format!("{extra} MajorVersion="), 1);
    assert!(xml.len() < 256 * 1024, "{}", xml.len());
    xml
}

#[tokio::test]
async fn thousands_of_attributes_or_namespace_declarations_on_one_tag_fault_in_milliseconds(
) -> TestResult {
    let t = spawn_mock().await;
    let req = SigReq::new("viettel-sim", "84912345678", "Khostile1", &[7; 32]);
    let attributes: String = (0..24_000).map(|i| format!(" a{i}=\"\"")).collect();
    let namespaces: String = (0..10_000)
        .map(|i| format!(" xmlns:n{i}=\"urn:x\""))
        .collect();
    for (shape, extra) in [("attributes", attributes), ("namespace", namespaces)] {
        let body = hostile(&req, extra);
        let started = Instant::now();
        let answer = t.soap("viettel-sim", "MSS_SignaturePort", &body).await;
        let took = started.elapsed();
        assert_eq!(
            answer.fault().map(|f| f.1).as_deref(),
            Some("mss:_101"),
            "{shape}: {}",
            answer.body
        );
        assert!(answer.body.contains(shape), "{shape}: {}", answer.body);
        assert!(took < QUICK, "{shape}: took {took:?}");
    }
    let answer = t.mss_sign(&req).await;
    assert_eq!(answer.status_code(), Some(100), "{}", answer.body);
    Ok(())
}
