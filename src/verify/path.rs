//! Certification path building: from the signer's certificate, through whatever intermediates
//! the provider (or a USB token's output) sent, in any order and possibly with the root, up to a
//! configured trust anchor. Each link is a name match, the CA rules and a verified signature;
//! every intermediate must be a CA valid at the signing time. Anchors are taken as they are:
//! configuring one is the act of trust.
//!
//! The supplied certificates come from outside, so the search is bounded by construction rather
//! than by hope: breadth first, each certificate joins the path graph at most once (at its
//! shortest distance from the signer, which is also the most permissive for path-length
//! constraints), issuers are grouped by (subject, public key) so a (child, issuer key) signature
//! is checked at most once, and a hard cap on signature checks refuses a chain built to make the
//! search expensive ("certificate path too complex"). Eight self-issued CAs sharing one name and
//! key cost nine signature checks, not eight factorial.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use der::Encode;
use x509_cert::Certificate;

use super::certificate::{
    basic_constraints, key_usage, require_understood_extensions, require_valid_at, to_utc,
};
use super::keys::{public_key, verify_certificate_signature, PublicKey};
use super::name;
use super::VerifyError;

/// Real Vietnamese paths are two or three links; a bound keeps a hostile chain from making the
/// search expensive.
const MAX_INTERMEDIATES: usize = 6;
/// Certificates a caller may send beside the signer's: a real chain is one to three.
pub(crate) const MAX_SUPPLIED: usize = 16;
/// Signature checks one path search may spend. A real path costs two or three; a re-keyed CA or
/// a cross-certificate a few more. Past this the chain was built to be expensive.
pub(crate) const MAX_SIGNATURE_CHECKS: usize = 24;

const TOO_COMPLEX: &str = "certificate path too complex";

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
    let mut checks = 0;
    let found = search(leaf, chain, anchors, at, &mut checks);
    metrics::counter!("kyso_path_signature_checks_total").increment(checks as u64);
    if matches!(&found, Err(VerifyError::UntrustedCertificate(why)) if why.starts_with(TOO_COMPLEX))
    {
        metrics::counter!("kyso_path_too_complex_total").increment(1);
    }
    found
}

/// [`build`], telling `checks` how many signature checks it spent.
pub(crate) fn search(
    leaf: &Certificate,
    chain: &[Certificate],
    anchors: &[Certificate],
    at: DateTime<Utc>,
    checks: &mut usize,
) -> Result<Found, VerifyError> {
    if anchors.is_empty() {
        return Err(untrusted("no trust anchors configured"));
    }
    if chain.len() > MAX_SUPPLIED {
        return Err(untrusted(&format!(
            "{TOO_COMPLEX}: {} certificates supplied, at most {MAX_SUPPLIED}",
            chain.len()
        )));
    }
    let mut search = Search::new(chain, anchors, at)?;
    let outcome = search.run(leaf);
    *checks = search.checks;
    let Some((top, anchor)) = outcome? else {
        let why = search
            .obstacle
            .unwrap_or_else(|| "no path to a trust anchor".into());
        return Err(untrusted(&why));
    };
    // The path from the signer's issuer up to `top`, whose issuer is the anchor.
    let mut path = Vec::new();
    let mut at_node = top;
    while at_node != LEAF {
        path.push(search.nodes[at_node].candidate);
        at_node = search.nodes[at_node].parent;
    }
    path.reverse();
    let issuer = match path.first() {
        Some(&first) => search.candidates[first].cert.clone(),
        None => anchors[anchor].clone(),
    };
    let mut found = Found {
        issuer,
        not_before: None,
        not_after: None,
    };
    for ca in path.iter().map(|&c| search.candidates[c].cert) {
        let validity = &ca.tbs_certificate.validity;
        let (from, to) = (to_utc(validity.not_before)?, to_utc(validity.not_after)?);
        found.not_before = Some(found.not_before.map_or(from, |f| f.max(from)));
        found.not_after = Some(found.not_after.map_or(to, |t| t.min(to)));
    }
    Ok(found)
}

fn untrusted(why: &str) -> VerifyError {
    VerifyError::UntrustedCertificate(why.to_owned())
}

/// Index of the signer's node in [`Search::nodes`].
const LEAF: usize = 0;

/// A supplied certificate that may act as an issuer, and the key group it signs with.
#[derive(Clone, Copy)]
struct Candidate<'a> {
    cert: &'a Certificate,
    group: usize,
}

/// A certificate on some path from the signer: `parent` is the node it issued.
struct Node<'a> {
    cert: &'a Certificate,
    /// Index into `candidates`; unused for the leaf.
    candidate: usize,
    parent: usize,
    /// Intermediates between the signer and this node, this node included.
    depth: usize,
}

struct Search<'a> {
    candidates: Vec<Candidate<'a>>,
    /// Anchors with their key group.
    anchors: Vec<(&'a Certificate, usize)>,
    /// One public key per (subject, key) group, read when first needed.
    keys: Vec<Option<Result<PublicKey, String>>>,
    at: DateTime<Utc>,
    nodes: Vec<Node<'a>>,
    /// (node, key group) → whether the group's key signed that node's certificate.
    verdicts: HashMap<(usize, usize), Result<(), String>>,
    checks: usize,
    /// The most recent reason a candidate issuer was rejected, reported if no path is found.
    obstacle: Option<String>,
}

impl<'a> Search<'a> {
    fn new(
        chain: &'a [Certificate],
        anchors: &'a [Certificate],
        at: DateTime<Utc>,
    ) -> Result<Self, VerifyError> {
        let mut groups = KeyGroups::default();
        let anchors = anchors
            .iter()
            .map(|a| Ok((a, groups.of(a)?)))
            .collect::<Result<Vec<_>, VerifyError>>()?;
        let anchor_groups = groups.0.len();
        let mut candidates: Vec<Candidate<'a>> = Vec::new();
        for cert in chain {
            let group = groups.of(cert)?;
            // The root sent along, or a cross-certificate for an anchor's key: reaching that
            // key is reaching the anchor. An exact repeat adds nothing either.
            if group < anchor_groups || candidates.iter().any(|c| c.cert == cert) {
                continue;
            }
            candidates.push(Candidate { cert, group });
        }
        Ok(Self {
            candidates,
            anchors,
            keys: vec![None; groups.0.len()],
            at,
            nodes: Vec::new(),
            verdicts: HashMap::new(),
            checks: 0,
            obstacle: None,
        })
    }

    /// Breadth first from the signer; answers the node whose issuer is an anchor, and which
    /// anchor, or `None` when no path exists.
    fn run(&mut self, leaf: &'a Certificate) -> Result<Option<(usize, usize)>, VerifyError> {
        self.nodes.push(Node {
            cert: leaf,
            candidate: usize::MAX,
            parent: LEAF,
            depth: 0,
        });
        let mut placed = vec![false; self.candidates.len()];
        let mut queue = VecDeque::from([LEAF]);
        while let Some(at_node) = queue.pop_front() {
            if let Some(anchor) = self.anchor_for(at_node)? {
                return Ok(Some((at_node, anchor)));
            }
            let (child, depth) = (self.nodes[at_node].cert, self.nodes[at_node].depth);
            if depth >= MAX_INTERMEDIATES {
                self.note(child, "path longer than any CA hierarchy kyso accepts");
                continue;
            }
            let issuer = &child.tbs_certificate.issuer;
            let mut named_issuer = false;
            for (index, placed) in placed.iter_mut().enumerate() {
                let Candidate { cert: ca, group } = self.candidates[index];
                if *placed || ca.tbs_certificate.subject != *issuer {
                    continue;
                }
                named_issuer = true;
                let checked = match check_ca(ca, self.at, depth) {
                    Ok(()) => self.signed_by(at_node, group)?,
                    Err(why) => Err(why),
                };
                match checked {
                    Ok(()) => {
                        *placed = true;
                        self.nodes.push(Node {
                            cert: ca,
                            candidate: index,
                            parent: at_node,
                            depth: depth + 1,
                        });
                        queue.push_back(self.nodes.len() - 1);
                    }
                    Err(why) => self.note(child, &why),
                }
            }
            let anchor_named = self
                .anchors
                .iter()
                .any(|(a, _)| a.tbs_certificate.subject == *issuer);
            if !named_issuer && !anchor_named && self.obstacle.is_none() {
                self.obstacle = Some(format!(
                    "issuer `{}` is neither a trust anchor nor in the chain",
                    name::display(issuer)
                ));
            }
        }
        Ok(None)
    }

    /// The anchor that signed this node's certificate, if one did.
    fn anchor_for(&mut self, at_node: usize) -> Result<Option<usize>, VerifyError> {
        let child = self.nodes[at_node].cert;
        for index in 0..self.anchors.len() {
            let (anchor, group) = self.anchors[index];
            if anchor.tbs_certificate.subject != child.tbs_certificate.issuer {
                continue;
            }
            match self.signed_by(at_node, group)? {
                Ok(()) => return Ok(Some(index)),
                Err(why) => self.note(child, &format!("trust anchor: {why}")),
            }
        }
        Ok(None)
    }

    /// Whether key group `group` signed node `at_node`'s certificate (the inner result, with
    /// the reason it did not): checked once, counted against the budget, whose exhaustion is
    /// the outer error.
    fn signed_by(
        &mut self,
        at_node: usize,
        group: usize,
    ) -> Result<Result<(), String>, VerifyError> {
        if let Some(verdict) = self.verdicts.get(&(at_node, group)) {
            return Ok(verdict.clone());
        }
        if self.checks >= MAX_SIGNATURE_CHECKS {
            return Err(untrusted(&format!(
                "{TOO_COMPLEX}: more than {MAX_SIGNATURE_CHECKS} signature checks"
            )));
        }
        let key = self.keys[group]
            .get_or_insert_with(|| {
                let cert = self
                    .anchors
                    .iter()
                    .find(|(_, g)| *g == group)
                    .map(|(c, _)| *c)
                    .or_else(|| {
                        self.candidates
                            .iter()
                            .find(|c| c.group == group)
                            .map(|c| c.cert)
                    });
                cert.ok_or_else(|| "no certificate for the key".to_owned())
                    .and_then(|c| public_key(c).map_err(|e| e.to_string()))
            })
            .clone();
        self.checks += 1;
        let verdict =
            key.and_then(|key| verify_certificate_signature(self.nodes[at_node].cert, &key));
        self.verdicts.insert((at_node, group), verdict.clone());
        Ok(verdict)
    }

    fn note(&mut self, child: &Certificate, why: &str) {
        self.obstacle = Some(format!(
            "issuer of `{}`: {why}",
            name::display(&child.tbs_certificate.subject)
        ));
    }
}

/// Numbers certificates by (subject, public key): the same key under the same name signs
/// the same things, whatever else its certificates say.
#[derive(Default)]
struct KeyGroups(HashMap<(Vec<u8>, Vec<u8>), usize>);

impl KeyGroups {
    fn of(&mut self, cert: &Certificate) -> Result<usize, VerifyError> {
        let tbs = &cert.tbs_certificate;
        let id = (
            tbs.subject.to_der().map_err(malformed)?,
            tbs.subject_public_key_info.to_der().map_err(malformed)?,
        );
        let next = self.0.len();
        Ok(*self.0.entry(id).or_insert(next))
    }
}

/// The rules a CA on the path must meet apart from its signature, cheapest first so a
/// certificate that is no CA costs no RSA operation. `below` counts the intermediates already
/// between this CA and the signer, which is what a pathLenConstraint limits.
fn check_ca(ca: &Certificate, at: DateTime<Utc>, below: usize) -> Result<(), String> {
    require_valid_at(ca, at).map_err(|e| e.to_string())?;
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

fn malformed(e: der::Error) -> VerifyError {
    VerifyError::MalformedCertificate(e.to_string())
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
