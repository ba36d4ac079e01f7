//! The QA convention: what the mock does for a signer, chosen by the signer id's last three
//! digits (SPEC §7). One table-like function picks the [`Behaviour`]; [`Faults`] keeps the
//! per-signer call counts the "fails the first two calls" row needs, and turns the
//! transport-level rows (HTTP 500, 503, dropped connection, slow answers) into a [`Fault`]
//! every provider front end applies the same way before doing any work.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// What the mock does for one signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Anything not below: the user approves after `approve_delay_ms`.
    Approve,
    /// `401`: the user refuses (after `approve_delay_ms`).
    Refuse,
    /// `402`: PIN blocked; the certificate is listed as locked and signing is refused.
    PinBlocked,
    /// `404`: no certificate / not subscribed.
    NoCertificate,
    /// `208`: the phone never answers; the request expires.
    NeverAnswers,
    /// `501`: signs correctly, with a certificate the mock's OCSP responder and CRL report
    /// revoked (keyCompromise, from its notBefore).
    RevokedCertificate,
    /// `503`: returns a corrupted signature.
    CorruptSignature,
    /// `505`: signs a different digest (SHA-256 of the requested digest).
    WrongDigest,
    /// `422`: signs with a certificate that has already expired.
    ExpiredCertificate,
    /// `900`: every call fails with HTTP 500.
    AlwaysFails,
    /// `901`: the first call of each kind fails with HTTP 503, the second drops the
    /// connection, then everything is normal.
    Flaky,
    /// `902`: every answer takes 5 s.
    Slow,
    /// `999`: waits for a person on the virtual phone.
    Manual,
}

impl Behaviour {
    pub fn for_signer(signer: &str) -> Self {
        let tail = signer.len().checked_sub(3).and_then(|i| signer.get(i..));
        match tail.unwrap_or("") {
            "401" => Self::Refuse,
            "402" => Self::PinBlocked,
            "404" => Self::NoCertificate,
            "208" => Self::NeverAnswers,
            "501" => Self::RevokedCertificate,
            "503" => Self::CorruptSignature,
            "505" => Self::WrongDigest,
            "422" => Self::ExpiredCertificate,
            "900" => Self::AlwaysFails,
            "901" => Self::Flaky,
            "902" => Self::Slow,
            "999" => Self::Manual,
            _ => Self::Approve,
        }
    }

    /// What the request turns into on its own, if nobody touches the phone.
    pub fn auto_outcome(self) -> AutoOutcome {
        match self {
            Self::Refuse => AutoOutcome::RefuseAfterDelay,
            Self::NeverAnswers | Self::Manual => AutoOutcome::ExpireAfterWindow,
            _ => AutoOutcome::ApproveAfterDelay,
        }
    }

    /// How the signature the phone sends back is made.
    pub fn signature_plan(self) -> SignaturePlan {
        match self {
            Self::CorruptSignature => SignaturePlan::Corrupted,
            Self::WrongDigest => SignaturePlan::OtherDigest,
            _ => SignaturePlan::Correct,
        }
    }
}

/// The fate of a pending request nobody acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOutcome {
    ApproveAfterDelay,
    RefuseAfterDelay,
    ExpireAfterWindow,
}

/// How to derive the returned signature from the requested digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePlan {
    Correct,
    /// A correct signature with some bytes flipped.
    Corrupted,
    /// A correct signature over SHA-256(digest) instead of the digest.
    OtherDigest,
}

/// The kinds of call the "first two calls fail" counter keeps apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// Certificate listings and profile queries.
    Certificates,
    Sign,
    Status,
    Receipt,
}

/// A transport-level misbehaviour applied before the call is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer HTTP 500.
    InternalError,
    /// Answer HTTP 503.
    Unavailable,
    /// Close the connection without an answer.
    DropConnection,
    /// Wait this long, then serve normally.
    Delay(Duration),
}

/// Per-(signer, call kind) counters for [`Behaviour::Flaky`], and of every call that arrived
/// (before any fault), which `GET /admin/calls/{signer}` shows.
#[derive(Default)]
pub struct Faults {
    calls: Mutex<HashMap<(String, CallKind), u32>>,
    arrived: Mutex<HashMap<(String, CallKind), u64>>,
}

/// Calls of each kind that arrived for one signer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Calls {
    pub certificates: u64,
    pub sign: u64,
    pub status: u64,
    pub receipt: u64,
}

/// Enough distinct flaky signers for any test run; past it the counters start over.
const FLAKY_CAP: usize = 10_000;

impl Faults {
    /// The fault (if any) to apply to this call. Counts the call for flaky signers.
    pub fn before_call(&self, signer: &str, kind: CallKind) -> Option<Fault> {
        self.arrive(signer, kind);
        match Behaviour::for_signer(signer) {
            Behaviour::AlwaysFails => Some(Fault::InternalError),
            Behaviour::Slow => Some(Fault::Delay(Duration::from_secs(5))),
            Behaviour::Flaky => {
                let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
                if calls.len() >= FLAKY_CAP {
                    calls.clear();
                }
                let n = calls.entry((signer.to_owned(), kind)).or_insert(0);
                *n = n.saturating_add(1);
                match *n {
                    1 => Some(Fault::Unavailable),
                    2 => Some(Fault::DropConnection),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

impl Faults {
    fn arrive(&self, signer: &str, kind: CallKind) {
        let mut arrived = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        if arrived.len() >= FLAKY_CAP {
            arrived.clear();
        }
        *arrived.entry((signer.to_owned(), kind)).or_insert(0) += 1;
    }

    /// The calls that arrived for `signer`, by kind.
    pub fn calls(&self, signer: &str) -> Calls {
        let arrived = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        let n = |kind| {
            arrived
                .get(&(signer.to_owned(), kind))
                .copied()
                .unwrap_or(0)
        };
        Calls {
            certificates: n(CallKind::Certificates),
            sign: n(CallKind::Sign),
            status: n(CallKind::Status),
            receipt: n(CallKind::Receipt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_three_digits_choose_the_behaviour() {
        assert_eq!(Behaviour::for_signer("001099012401"), Behaviour::Refuse);
        assert_eq!(Behaviour::for_signer("0101234567-999"), Behaviour::Manual);
        assert_eq!(
            Behaviour::for_signer("0101234422"),
            Behaviour::ExpiredCertificate
        );
        assert_eq!(Behaviour::for_signer("001099012345"), Behaviour::Approve);
        assert_eq!(Behaviour::for_signer("01"), Behaviour::Approve);
        assert_eq!(Behaviour::for_signer("ễ01"), Behaviour::Approve);
    }

    #[test]
    fn a_flaky_signer_fails_twice_per_kind_of_call_then_recovers() {
        let faults = Faults::default();
        for kind in [CallKind::Sign, CallKind::Status] {
            assert_eq!(faults.before_call("x901", kind), Some(Fault::Unavailable));
            assert_eq!(
                faults.before_call("x901", kind),
                Some(Fault::DropConnection)
            );
            assert_eq!(faults.before_call("x901", kind), None);
        }
        assert_eq!(
            faults.before_call("y901", CallKind::Sign),
            Some(Fault::Unavailable)
        );
    }
}
