//! Revocation evidence handed in as files, for `kyso verify`: OCSP responses and CRLs judged as
//! the online path would judge them, without the network.

use chrono::{DateTime, Utc};

use super::revocation::{Finding, Subject};
use super::{crl, ocsp};

/// Revocation evidence handed in as files (`kyso verify --crl … --ocsp-response …`).
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub ocsp_responses: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
}

impl Evidence {
    pub fn is_empty(&self) -> bool {
        self.ocsp_responses.is_empty() && self.crls.is_empty()
    }
}

/// Judges the given files only. OCSP responses go first, as online; a pre-made response has no
/// nonce to check.
pub(crate) fn offline(
    subject: Subject<'_>,
    evidence: &Evidence,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Finding {
    if evidence.is_empty() {
        return Finding::NotChecked {
            why: "no CRL or OCSP response was given".into(),
        };
    }
    let mut notes = Vec::new();
    for (i, response) in evidence.ocsp_responses.iter().enumerate() {
        match ocsp::judge(response, subject, None, at, now) {
            Ok(answer) => match Finding::from_answer(&answer, at) {
                Some(finding) => return finding,
                None => notes.push(format!("OCSP response {}: status unknown", i + 1)),
            },
            Err(why) => notes.push(format!("OCSP response {}: {why}", i + 1)),
        }
    }
    for (i, der) in evidence.crls.iter().enumerate() {
        let answer =
            crl::Crl::parse(der, subject.issuer, now).and_then(|crl| crl.answer(subject.leaf, at));
        match answer {
            Ok(answer) => {
                if let Some(finding) = Finding::from_answer(&answer, at) {
                    return finding;
                }
            }
            Err(why) => notes.push(format!("CRL {}: {why}", i + 1)),
        }
    }
    Finding::Unknown {
        why: notes.join("; "),
    }
}
