//! Certification path building: from the signer's certificate, through whatever intermediates
//! the provider sent (any order, possibly with the root), up to a configured trust anchor.
//! Each link is a name match plus a verified signature; every intermediate must be a CA valid
//! at the signing time. Anchors are taken as they are: configuring one is the act of trust.

use chrono::{DateTime, Utc};
use x509_cert::Certificate;

use super::certificate::{
    basic_constraints, key_usage, require_understood_extensions, require_valid_at, to_utc,
};
use super::keys::{public_key, verify_certificate_signature};
use super::name;
use super::VerifyError;

/// Real Vietnamese paths are two or three links; a bound keeps a hostile chain from making the
/// search expensive.
const MAX_INTERMEDIATES: usize = 6;

/// What a found path tells the rest of the verifier.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The certificate that signed the leaf (an intermediate or the anchor itself): OCSP
    /// CertIDs and CRL signatures are checked against it.
    pub issuer: Certificate,
    /// When every intermediate on the path is valid; anchors are taken as they are.
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
}

/// Succeeds when `leaf` chains to one of `anchors`; otherwise explains the last obstacle found.
pub(crate) fn build(
    leaf: &Certificate,
    chain: &[Certificate],
    anchors: &[Certificate],
    at: DateTime<Utc>,
) -> Result<Found, VerifyError> {
    if anchors.is_empty() {
        return Err(VerifyError::UntrustedCertificate(
            "no trust anchors configured".into(),
        ));
    }
    let mut search = Search {
        chain,
        anchors,
        at,
        obstacle: None,
        leaf_anchor: None,
    };
    let mut used = Vec::new();
    if search.extend(leaf, &mut used) {
        let issuer = match (used.first(), search.leaf_anchor) {
            (Some(&index), _) => chain[index].clone(),
            (None, Some(index)) => anchors[index].clone(),
            (None, None) => {
                return Err(VerifyError::UntrustedCertificate(
                    "path found without an issuer".into(),
                ))
            }
        };
        let mut found = Found {
            issuer,
            not_before: None,
            not_after: None,
        };
        for ca in used.iter().map(|&i| &chain[i]) {
            let validity = &ca.tbs_certificate.validity;
            let (from, to) = (to_utc(validity.not_before)?, to_utc(validity.not_after)?);
            found.not_before = Some(found.not_before.map_or(from, |f| f.max(from)));
            found.not_after = Some(found.not_after.map_or(to, |t| t.min(to)));
        }
        return Ok(found);
    }
    let why = search
        .obstacle
        .unwrap_or_else(|| "no path to a trust anchor".into());
    Err(VerifyError::UntrustedCertificate(why))
}

struct Search<'a> {
    chain: &'a [Certificate],
    anchors: &'a [Certificate],
    at: DateTime<Utc>,
    /// The most recent reason a candidate issuer was rejected, reported if no path is found.
    obstacle: Option<String>,
    /// The anchor that signed the leaf directly, when no intermediate is in between.
    leaf_anchor: Option<usize>,
}

impl Search<'_> {
    /// Depth-first over candidate issuers so that a wrong candidate with the right name (a
    /// re-keyed CA, a cross-certificate) does not hide a good one. `used` holds chain indexes
    /// already on the path, which also stops loops through self-issued certificates.
    fn extend(&mut self, child: &Certificate, used: &mut Vec<usize>) -> bool {
        let issuer = &child.tbs_certificate.issuer;
        for (index, anchor) in self
            .anchors
            .iter()
            .enumerate()
            .filter(|(_, a)| a.tbs_certificate.subject == *issuer)
        {
            match public_key(anchor)
                .map_err(|e| e.to_string())
                .and_then(|key| verify_certificate_signature(child, &key))
            {
                Ok(()) => {
                    if used.is_empty() {
                        self.leaf_anchor = Some(index);
                    }
                    return true;
                }
                Err(why) => self.note(child, &format!("trust anchor: {why}")),
            }
        }
        if used.len() >= MAX_INTERMEDIATES {
            self.note(child, "path longer than any CA hierarchy kyso accepts");
            return false;
        }
        let mut named_issuer = false;
        for (index, ca) in self.chain.iter().enumerate() {
            if used.contains(&index) || ca.tbs_certificate.subject != *issuer {
                continue;
            }
            named_issuer = true;
            if let Err(why) = self.check_ca(ca, child, used.len()) {
                self.note(child, &why);
                continue;
            }
            used.push(index);
            if self.extend(ca, used) {
                return true;
            }
            used.pop();
        }
        let anchor_named = self
            .anchors
            .iter()
            .any(|a| a.tbs_certificate.subject == *issuer);
        if !named_issuer && !anchor_named && self.obstacle.is_none() {
            self.obstacle = Some(format!(
                "issuer `{}` is neither a trust anchor nor in the chain",
                name::display(issuer)
            ));
        }
        false
    }

    /// `below` counts the intermediates already between this CA and the signer, which is what
    /// a pathLenConstraint limits.
    fn check_ca(&self, ca: &Certificate, child: &Certificate, below: usize) -> Result<(), String> {
        let key = public_key(ca).map_err(|e| e.to_string())?;
        verify_certificate_signature(child, &key)?;
        require_valid_at(ca, self.at).map_err(|e| e.to_string())?;
        require_understood_extensions(ca).map_err(|e| e.to_string())?;
        match basic_constraints(ca).map_err(|e| e.to_string())? {
            Some(bc) if bc.ca => {
                if let Some(limit) = bc.path_len_constraint {
                    if below > usize::from(limit) {
                        return Err(format!("path length exceeds the CA's limit of {limit}"));
                    }
                }
            }
            _ => return Err("certificate is not a CA".into()),
        }
        match key_usage(ca).map_err(|e| e.to_string())? {
            Some(usage) if !usage.key_cert_sign() => Err("CA key usage lacks keyCertSign".into()),
            _ => Ok(()),
        }
    }

    fn note(&mut self, child: &Certificate, why: &str) {
        self.obstacle = Some(format!(
            "issuer of `{}`: {why}",
            name::display(&child.tbs_certificate.subject)
        ));
    }
}
