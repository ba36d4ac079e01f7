//! CRLs (RFC 5280 §5), the fallback when OCSP gives no answer: a CRL counts only when the
//! certificate's own issuer signed it (no indirect CRLs), it carries no critical extension kyso
//! does not understand (delta and partitioned CRLs are refused rather than misread), and it
//! covers the signing time. Parsed once into a serial lookup, so a cached CRL answers in O(1).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use der::asn1::ObjectIdentifier;
use der::Decode;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_cert::Certificate;

use super::certificate::{key_usage, to_utc};
use super::keys::{public_key, verify_signed};
use super::revocation::{require_not_future, Answer, Source, Status};
use super::{name, tlv};

const CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
const AUTHORITY_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
const CRL_REASON: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.21");
const INVALIDITY_DATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.24");

#[derive(Debug)]
pub(crate) struct Crl {
    pub this_update: DateTime<Utc>,
    pub next_update: Option<DateTime<Utc>>,
    /// Serial number (DER integer bytes) → revocation date and reason.
    revoked: HashMap<Vec<u8>, (DateTime<Utc>, Option<String>)>,
}

impl Crl {
    /// Parses and checks a DER CRL against the CA that issued the certificate in question.
    pub fn parse(der: &[u8], issuer: &Certificate, now: DateTime<Utc>) -> Result<Self, String> {
        let list = CertificateList::from_der(der).map_err(|e| format!("not a CRL: {e}"))?;
        let tbs = &list.tbs_cert_list;
        if list.signature_algorithm != tbs.signature {
            return Err("signature algorithm differs from the signed one".into());
        }
        if tbs.issuer != issuer.tbs_certificate.subject {
            return Err(format!(
                "issued by `{}`, not by the certificate's issuer",
                name::display(&tbs.issuer)
            ));
        }
        if key_usage(issuer)
            .map_err(|e| e.to_string())?
            .is_some_and(|ku| !ku.crl_sign())
        {
            return Err("the issuer's key usage lacks cRLSign".into());
        }
        // The signature covers tbsCertList exactly as the CA encoded it.
        let outer = tlv::single(der)?;
        let signed = tlv::Walker::new(outer.value).next()?.whole;
        let signature = list
            .signature
            .as_bytes()
            .ok_or("signature is not a whole number of bytes")?;
        let key = public_key(issuer).map_err(|e| e.to_string())?;
        verify_signed(list.signature_algorithm.oid, signed, signature, &key)
            .map_err(|why| format!("CRL signature: {why}"))?;
        refuse_unknown_critical(
            tbs.crl_extensions.iter().flatten(),
            &[CRL_NUMBER, AUTHORITY_KEY_ID],
        )?;

        let this_update = to_utc(tbs.this_update).map_err(|e| e.to_string())?;
        require_not_future(this_update, now)?;
        let next_update = tbs
            .next_update
            .map(to_utc)
            .transpose()
            .map_err(|e| e.to_string())?;
        let mut revoked = HashMap::new();
        for entry in tbs.revoked_certificates.iter().flatten() {
            let extensions = entry.crl_entry_extensions.iter().flatten();
            refuse_unknown_critical(extensions.clone(), &[CRL_REASON, INVALIDITY_DATE])?;
            let reason = extensions
                .clone()
                .find(|e| e.extn_id == CRL_REASON)
                .and_then(|e| CrlReason::from_der(e.extn_value.as_bytes()).ok())
                .map(|r| format!("{r:?}"));
            let date = to_utc(entry.revocation_date).map_err(|e| e.to_string())?;
            revoked.insert(entry.serial_number.as_bytes().to_vec(), (date, reason));
        }
        Ok(Self {
            this_update,
            next_update,
            revoked,
        })
    }

    /// What this CRL says about `leaf` at the signing time.
    pub fn answer(&self, leaf: &Certificate, at: DateTime<Utc>) -> Result<Answer, String> {
        let serial = leaf.tbs_certificate.serial_number.as_bytes();
        let status = match self.revoked.get(serial) {
            Some((since, reason)) => Status::Revoked {
                since: *since,
                reason: reason.clone(),
            },
            None => Status::Good,
        };
        let answer = Answer {
            status,
            source: Source::Crl,
            this_update: self.this_update,
            next_update: self.next_update,
        };
        if !answer.covers(at) {
            return Err(format!(
                "stale: thisUpdate {}, nextUpdate {:?}, signing time {at}",
                self.this_update, self.next_update
            ));
        }
        Ok(answer)
    }
}

fn refuse_unknown_critical<'a>(
    extensions: impl Iterator<Item = &'a Extension>,
    understood: &[ObjectIdentifier],
) -> Result<(), String> {
    match extensions
        .filter(|e| e.critical && !understood.contains(&e.extn_id))
        .map(|e| e.extn_id)
        .next()
    {
        Some(id) => Err(format!(
            "unsupported critical extension {id} (delta, partitioned or indirect CRL)"
        )),
        None => Ok(()),
    }
}
