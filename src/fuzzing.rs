//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay in
//! `tests/fuzz_corpus.rs`. Each takes arbitrary bytes and drives one reader of outside input the
//! way kyso does, against fixtures compiled in from `tests/fixtures` (trust anchor, issuing CA,
//! signing time), so that a mutated valid input still reaches the deep checks. Every outcome but
//! a panic is fine here; the few `assert!`s are properties the callers rely on. Not an API:
//! hidden from the docs and free to change with the targets.

use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use der::Decode;
use x509_cert::Certificate;

use crate::api::extract::from_json;
use crate::api::verifications::{Signed, VerificationInput};
use crate::config::EngineSection;
use crate::domain::{validate_signer, Limits, NewSignature, SignatureInput, SignerRule};
use crate::verify::revocation::{Finding, Subject};
use crate::verify::{self, crl, ocsp, Identity, Scheme, SignatureCheck, TrustAnchors};

/// One fuzz target: it takes any bytes and must not panic.
pub type Entry = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` spell it.
pub const TARGETS: &[(&str, Entry)] = &[
    ("soap_response", soap_response),
    ("certificate_path", certificate_path),
    ("cms", cms),
    ("ocsp_response", ocsp_response),
    ("crl", crl),
    ("signature_request", signature_request),
    ("verification_request", verification_request),
];

/// More chain parts than any caller accepts (the USB path takes 8), so the verifier's own
/// bounds are what is exercised.
const MAX_CHAIN_PARTS: usize = 16;

struct Fixtures {
    anchors: TrustAnchors,
    issuing_ca_der: Vec<u8>,
    issuing_ca: Certificate,
    /// `person` (good) and `revoked` (on the CRL, revoked by OCSP), both from the issuing CA.
    leaves: [Certificate; 2],
    /// SHA-256 of data.txt: what every fixture signature and CMS is over.
    digest: [u8; 32],
    /// Names a tax code and a citizen id, for `signer` matching.
    director: Identity,
    /// A signing time at which every fixture certificate is valid.
    at: DateTime<Utc>,
    /// "Now" for revocation evidence: after every fixture's thisUpdate.
    now: DateTime<Utc>,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let cert = |der: &[u8]| Certificate::from_der(der).expect("fixture certificate parses");
        let issuing_ca_der = include_bytes!("../tests/fixtures/issuing-ca.der").to_vec();
        let person = cert(include_bytes!("../tests/fixtures/person.der"));
        let revoked = cert(include_bytes!("../tests/fixtures/revoked.der"));
        let responder = cert(include_bytes!("../tests/fixtures/ocsp-responder.der"));
        let issuing_ca = cert(&issuing_ca_der);
        let latest_start = [&person, &revoked, &responder, &issuing_ca]
            .iter()
            .map(|c| {
                c.tbs_certificate
                    .validity
                    .not_before
                    .to_unix_duration()
                    .as_secs()
            })
            .max()
            .unwrap_or_default();
        let start = DateTime::from_timestamp(i64::try_from(latest_start).unwrap_or(0), 0)
            .expect("fixture notBefore is a date");
        let at = start + Duration::hours(1);
        let root = include_bytes!("../tests/fixtures/root-ca.der").to_vec();
        Fixtures {
            anchors: TrustAnchors::from_der(vec![root]).expect("root-ca.der loads"),
            issuing_ca_der,
            issuing_ca,
            leaves: [person, revoked],
            digest: *include_bytes!("../tests/fixtures/data.sha256"),
            director: verify::parse_identity(include_bytes!("../tests/fixtures/director.der"))
                .expect("director.der has an identity"),
            at,
            now: at + Duration::days(30),
        }
    })
}

/// The MSSP SOAP answer parser (responses and notifications).
pub fn soap_response(data: &[u8]) {
    let _ = crate::providers::mssp::parse_response(data);
}

/// Splits `data` into the parts of a raw signature check: one flag byte (bit 0: PSS, else
/// PKCS#1 v1.5), then parts each prefixed by a big-endian u16 length (a short last part is
/// taken as it is): the signature, the signer's certificate, then chain certificates.
pub fn split_parts(data: &[u8]) -> (Scheme, Vec<&[u8]>) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return (Scheme::Pkcs1v15, Vec::new());
    };
    let scheme = if flags & 1 == 1 {
        Scheme::PssSha256
    } else {
        Scheme::Pkcs1v15
    };
    let mut parts = Vec::new();
    while rest.len() >= 2 && parts.len() < 2 + MAX_CHAIN_PARTS {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        parts.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    (scheme, parts)
}

/// The raw signature check: a signature over the fixture digest, the signer's certificate and
/// its chain (framed as [`split_parts`] reads them) through [`verify::verify`] against the
/// fixture root, and the certificate through [`verify::parse_identity`] as `/v1/certificates`
/// reads it.
pub fn certificate_path(data: &[u8]) {
    let f = fixtures();
    let (scheme, parts) = split_parts(data);
    let [signature, certificate, chain @ ..] = parts.as_slice() else {
        return;
    };
    let chain: Vec<Vec<u8>> = chain.iter().map(|c| c.to_vec()).collect();
    let check = SignatureCheck {
        digest: &f.digest,
        signature,
        scheme,
        certificate,
        chain: &chain,
        at: f.at,
    };
    let _ = verify::verify(&check, &f.anchors);
    let _ = verify::parse_identity(certificate);
}

/// A CMS SignedData (DER) over the fixture content, with the issuing CA given from outside as
/// the USB path's `chain`, through [`verify::verify_cms`].
pub fn cms(data: &[u8]) {
    let f = fixtures();
    let extra = [f.issuing_ca_der.clone()];
    let _ = verify::verify_cms(data, &f.digest, &f.anchors, f.at, &extra);
}

/// An OCSP response about either fixture leaf, as `kyso verify --ocsp-response` judges it (no
/// nonce) and as the online check does (with the nonce it sent).
pub fn ocsp_response(data: &[u8]) {
    let f = fixtures();
    for leaf in &f.leaves {
        let subject = Subject {
            leaf,
            issuer: &f.issuing_ca,
        };
        for nonce in [None, Some(&[7u8; 32][..])] {
            if let Ok(answer) = ocsp::judge(data, subject, nonce, f.at, f.now) {
                assert!(
                    answer.covers(f.at),
                    "a judged answer covers the signing time"
                );
                let _ = Finding::from_answer(&answer, f.at).map(|found| found.detail());
            }
        }
    }
}

/// A CRL from the issuing CA, parsed and asked about either fixture leaf.
pub fn crl(data: &[u8]) {
    let f = fixtures();
    let Ok(list) = crl::Crl::parse(data, &f.issuing_ca, f.now) else {
        return;
    };
    for leaf in &f.leaves {
        if let Ok(answer) = list.answer(leaf, f.at) {
            assert!(answer.covers(f.at), "a CRL answer covers the signing time");
            let _ = Finding::from_answer(&answer, f.at).map(|found| found.detail());
        }
    }
}

/// The body of `POST /v1/signatures`, read as the handler reads it and validated for both kinds
/// of signer with the default engine limits.
pub fn signature_request(data: &[u8]) {
    let Ok(input) = from_json::<SignatureInput>(data) else {
        return;
    };
    let engine = EngineSection::default();
    for signer_rule in [SignerRule::UserId, SignerRule::Msisdn] {
        let limits = Limits {
            signer_rule,
            default_timeout_s: 300,
            min_timeout_s: engine.min_timeout_s,
            max_timeout_s: engine.max_timeout_s,
        };
        let Ok(new) = NewSignature::parse(input.clone(), &limits) else {
            continue;
        };
        // What is stored and shown on the phone: bounded and printable.
        assert!(new.display_text.contains(&new.verification_code));
        assert!((limits.min_timeout_s..=limits.max_timeout_s).contains(&new.timeout_s));
        let texts = [
            Some(&new.display_text),
            new.reference.as_ref(),
            new.document_name.as_ref(),
        ];
        assert!(texts
            .iter()
            .flatten()
            .all(|t| !t.chars().any(char::is_control)));
        // The stored signer is already in stored form, so a second look agrees.
        assert_eq!(
            validate_signer(signer_rule, &new.signer).ok(),
            Some(new.signer)
        );
    }
}

/// The body of `POST /v1/verifications`, read and checked as the handler does, then judged as
/// the handler judges it (without revocation) against the fixture root, with a challenge taken
/// to be the fixture digest's preimage.
pub fn verification_request(data: &[u8]) {
    let f = fixtures();
    let Ok(input) = from_json::<VerificationInput>(data) else {
        return;
    };
    let Ok(request) = input.check() else {
        return;
    };
    let digest = match &request.signed {
        Signed::Digest(d) => *d,
        Signed::Challenge(_) => f.digest,
    };
    let certs = &request.certificates;
    // The handler's own reading of the request, so the fuzzer sees what it does.
    let verdict = match request.signature_check(&digest, f.at) {
        Some(check) => verify::verify(&check, &f.anchors),
        None => verify::verify_cms(&request.signature, &digest, &f.anchors, f.at, certs),
    };
    if let Some(signer) = &request.signer {
        let identity = verdict.as_ref().map_or(&f.director, |v| &v.identity);
        let _ = verify::signer_matches(identity, signer);
    }
}
