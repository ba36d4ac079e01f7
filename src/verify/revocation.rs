//! Revocation, judged at the signing time: what a provider's policy asks for, what an OCSP
//! answer or a CRL says about one certificate, and when such a statement covers the signing
//! time. The network side (fetching, caching) is in [`super::online`]; `kyso verify` feeds the
//! files it was given to [`super::evidence`], which never touches the network.

use chrono::{DateTime, Duration, Utc};
use der::asn1::ObjectIdentifier;
use serde::{Deserialize, Serialize};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityInfoAccessSyntax, CrlDistributionPoints};
use x509_cert::Certificate;

use super::extensions::extension;

const AUTHORITY_INFO_ACCESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");
const AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
const CRL_DISTRIBUTION_POINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.31");

/// Clocks of CAs, responders and kyso disagree a little.
pub(crate) const CLOCK_SKEW: Duration = Duration::minutes(5);
/// A certificate naming more places than this is odd; only the first few are tried.
const MAX_URLS: usize = 2;

/// How hard a provider (or the USB-token path) insists on a revocation answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationPolicy {
    /// No definite answer (OCSP and CRL both unavailable or unknown) refuses the signature.
    Require,
    /// Ask OCSP, then the CRL; without an answer the signature stands, marked `unknown`.
    #[default]
    Prefer,
    /// Do not ask; the verdict says `not_checked`.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Ocsp,
    Crl,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Good,
    Revoked {
        since: DateTime<Utc>,
        reason: Option<String>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// One signed statement (an OCSP SingleResponse or a CRL lookup) about one certificate.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: Status,
    pub source: Source,
    pub this_update: DateTime<Utc>,
    pub next_update: Option<DateTime<Utc>>,
}

impl Answer {
    /// Whether the statement tells the status at `at`: it was made after `at` (a revocation is
    /// forever and carries its date), or it was made before and promised no news until after
    /// `at`. Without a nextUpdate the issuer says newer information is always available, so
    /// only a statement made after `at` counts.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.this_update + CLOCK_SKEW >= at
            || self.next_update.is_some_and(|next| next + CLOCK_SKEW >= at)
    }

    /// The status at the signing time: a revocation dated after it does not undo a signature
    /// made while the certificate was good.
    pub fn status_at(&self, at: DateTime<Utc>) -> Status {
        match &self.status {
            Status::Revoked { since, .. } if *since > at => Status::Good,
            other => other.clone(),
        }
    }
}

/// Refuses statements from the future, which a skewed or hostile source could use to outlive
/// their nextUpdate.
pub(crate) fn require_not_future(
    this_update: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if this_update > now + CLOCK_SKEW {
        Err(format!("thisUpdate {this_update} is in the future"))
    } else {
        Ok(())
    }
}

/// What revocation checking found, as the verdict reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Finding {
    Good {
        source: Source,
    },
    Revoked {
        since: DateTime<Utc>,
        reason: Option<String>,
        source: Source,
    },
    /// Checked, but no source gave a definite answer covering the signing time.
    Unknown {
        why: String,
    },
    /// Not asked: policy off, or nothing to ask.
    NotChecked {
        why: String,
    },
}

impl Finding {
    pub fn label(&self) -> &'static str {
        match self {
            Finding::Good { .. } => "good",
            Finding::Revoked { .. } => "revoked",
            Finding::Unknown { .. } => "unknown",
            Finding::NotChecked { .. } => "not_checked",
        }
    }

    pub fn detail(&self) -> String {
        let name = |s: &Source| match s {
            Source::Ocsp => "OCSP",
            Source::Crl => "CRL",
        };
        match self {
            Finding::Good { source } => format!("{}: good at the signing time", name(source)),
            Finding::Revoked {
                since,
                reason,
                source,
            } => format!(
                "{}: revoked since {since}{}",
                name(source),
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            Finding::Unknown { why } | Finding::NotChecked { why } => why.clone(),
        }
    }

    /// The finding an answer gives at the signing time, if it is definite.
    pub fn from_answer(answer: &Answer, at: DateTime<Utc>) -> Option<Finding> {
        match answer.status_at(at) {
            Status::Good => Some(Finding::Good {
                source: answer.source,
            }),
            Status::Revoked { since, reason } => Some(Finding::Revoked {
                since,
                reason,
                source: answer.source,
            }),
            Status::Unknown => None,
        }
    }
}

/// The certificate being checked and the CA that issued it (found by path building).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub leaf: &'a Certificate,
    pub issuer: &'a Certificate,
}

impl Subject<'_> {
    /// HTTP(S) OCSP responders named in the certificate's AIA.
    pub fn ocsp_urls(&self) -> Vec<String> {
        let Ok(Some(aia)) =
            extension::<AuthorityInfoAccessSyntax>(self.leaf, AUTHORITY_INFO_ACCESS)
        else {
            return Vec::new();
        };
        let urls = aia
            .0
            .iter()
            .filter(|d| d.access_method == AD_OCSP)
            .filter_map(|d| match &d.access_location {
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
                _ => None,
            });
        http_only(urls)
    }

    /// HTTP(S) CRL distribution points; LDAP ones are skipped.
    pub fn crl_urls(&self) -> Vec<String> {
        let Ok(Some(points)) =
            extension::<CrlDistributionPoints>(self.leaf, CRL_DISTRIBUTION_POINTS)
        else {
            return Vec::new();
        };
        let urls = points
            .0
            .iter()
            // A CRL issued by someone else (indirect CRL) is not supported.
            .filter(|p| p.crl_issuer.is_none())
            .filter_map(|p| match &p.distribution_point {
                Some(DistributionPointName::FullName(names)) => Some(names.clone()),
                _ => None,
            })
            .flatten()
            .filter_map(|n| match n {
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
                _ => None,
            });
        http_only(urls)
    }
}

fn http_only(urls: impl Iterator<Item = String>) -> Vec<String> {
    urls.filter(|u| {
        let lower = u.to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    })
    .take(MAX_URLS)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0)
            .single()
            .expect("date")
    }

    fn answer(this: u32, next: Option<u32>, status: Status) -> Answer {
        Answer {
            status,
            source: Source::Ocsp,
            this_update: t(this),
            next_update: next.map(t),
        }
    }

    #[test]
    fn a_statement_covers_times_before_it_and_until_its_next_update() {
        let a = answer(10, Some(12), Status::Good);
        assert!(a.covers(t(1)));
        assert!(a.covers(t(11)));
        assert!(!a.covers(t(13)));
        let no_next = answer(10, None, Status::Good);
        assert!(no_next.covers(t(9)));
        assert!(!no_next.covers(t(11)));
    }

    #[test]
    fn a_revocation_dated_after_the_signing_time_leaves_the_signature_good() {
        let revoked = Status::Revoked {
            since: t(5),
            reason: None,
        };
        let a = answer(10, Some(12), revoked.clone());
        assert_eq!(a.status_at(t(4)), Status::Good);
        assert_eq!(a.status_at(t(6)), revoked);
    }

    #[test]
    fn a_statement_from_the_future_is_refused() {
        assert!(require_not_future(t(10), t(1)).is_err());
        assert!(require_not_future(t(1), t(10)).is_ok());
    }

    #[test]
    fn policies_read_as_lowercase_words() {
        let p: RevocationPolicy = serde_json::from_str("\"require\"").expect("parses");
        assert_eq!(p, RevocationPolicy::Require);
        assert_eq!(RevocationPolicy::default(), RevocationPolicy::Prefer);
        assert!(serde_json::from_str::<RevocationPolicy>("\"maybe\"").is_err());
    }
}
