//! Reading one extension of a certificate, for every rule that looks at one: the certificate's
//! own (key usage, basic constraints), extended key usage, revocation pointers and CMS signer
//! identifiers. Below all of them, so none imports another for it.

use der::asn1::ObjectIdentifier;
use der::Decode;
use x509_cert::Certificate;

use super::VerifyError;

/// The one extension with this id; a repeated extension is malformed (RFC 5280 §4.2) and
/// would let a verifier and a relying party disagree about which copy counts.
pub(crate) fn extension<'a, T: Decode<'a>>(
    cert: &'a Certificate,
    id: ObjectIdentifier,
) -> Result<Option<T>, VerifyError> {
    let mut found = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|ext| ext.extn_id == id);
    let Some(ext) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(VerifyError::MalformedCertificate(format!(
            "extension {id} appears more than once"
        )));
    }
    T::from_der(ext.extn_value.as_bytes())
        .map(Some)
        .map_err(|e| VerifyError::MalformedCertificate(format!("extension {id}: {e}")))
}
