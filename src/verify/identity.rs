//! The signer's identity as the portal's registration screen needs it: every subject attribute
//! kyso reads (by OID), the typed UID identifiers, issuer, serial, validity and fingerprint.
//! Whether they name the signer the portal asked for is [`super::signer`]'s business.

use chrono::{DateTime, Utc};
use der::Decode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::certificate::to_utc;
use super::name;
use super::uid::{self, UidKind};
use super::VerifyError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    Organization,
    Individual,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Identity {
    pub kind: IdentityKind,
    /// CN: the person's or the company's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizational_unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// ST (Windows prints it as `S=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// MSISDN in `84…` form when the number is Vietnamese, from telephoneNumber or a phone UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// `MST:`, with any branch suffix (`0100686209-199`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<String>,
    /// `MNS:`, carried by state agencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_code: Option<String>,
    /// `CCCD:`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citizen_id: Option<String>,
    /// `CMND:`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_id: Option<String>,
    /// `HC:`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passport: Option<String>,
    /// `BHXH:`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub social_insurance: Option<String>,
    /// `PID:` or `PPID:`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_id: Option<String>,
    /// Every UID value exactly as the certificate carries it, known prefix or not.
    #[serde(default)]
    pub uids: Vec<String>,
    /// The issuing CA's CN, or its whole DN when it has no CN.
    pub issuer: String,
    /// Serial number in lower-case hex, without the DER sign byte.
    pub serial: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Lower-case hex SHA-256 of the certificate's DER.
    pub fingerprint_sha256: String,
}

/// Reads the identity from a DER certificate without judging it; `verify` is what judges.
pub fn parse_identity(certificate_der: &[u8]) -> Result<Identity, VerifyError> {
    let cert = Certificate::from_der(certificate_der)
        .map_err(|e| VerifyError::MalformedCertificate(e.to_string()))?;
    from_certificate(&cert, certificate_der)
}

/// `der` is the certificate as received: the fingerprint is over those bytes, which is what
/// every other tool (and the portal's own records) will compute.
pub(crate) fn from_certificate(cert: &Certificate, der: &[u8]) -> Result<Identity, VerifyError> {
    let tbs = &cert.tbs_certificate;
    let subject = &tbs.subject;
    let uids: Vec<String> = name::values(subject, name::UID).collect();

    let mut identity = Identity {
        kind: IdentityKind::Individual,
        name: name::first(subject, name::CN),
        organization: name::first(subject, name::ORGANIZATION),
        organizational_unit: name::first(subject, name::ORGANIZATIONAL_UNIT),
        title: name::first(subject, name::TITLE),
        locality: name::first(subject, name::LOCALITY),
        province: name::first(subject, name::PROVINCE),
        country: name::first(subject, name::COUNTRY),
        email: name::first(subject, name::EMAIL),
        phone: name::first(subject, name::TELEPHONE).map(|p| uid::msisdn(&p).unwrap_or(p)),
        tax_code: None,
        budget_code: None,
        citizen_id: None,
        old_id: None,
        passport: None,
        social_insurance: None,
        personal_id: None,
        uids: Vec::new(),
        issuer: name::first(&tbs.issuer, name::CN).unwrap_or_else(|| name::display(&tbs.issuer)),
        serial: serial_hex(tbs.serial_number.as_bytes()),
        not_before: to_utc(tbs.validity.not_before)?,
        not_after: to_utc(tbs.validity.not_after)?,
        fingerprint_sha256: hex::encode(Sha256::digest(der)),
    };
    for raw in &uids {
        if let (Some(kind), id) = uid::split(raw) {
            if !id.is_empty() {
                fill(&mut identity, kind, id);
            }
        }
    }
    identity.uids = uids;
    identity.kind = kind_of(&identity);
    Ok(identity)
}

/// The first UID of each kind wins; the rest stay visible in `uids`.
fn fill(identity: &mut Identity, kind: UidKind, id: &str) {
    let slot = match kind {
        UidKind::TaxCode => &mut identity.tax_code,
        UidKind::BudgetCode => &mut identity.budget_code,
        UidKind::CitizenId => &mut identity.citizen_id,
        UidKind::OldId => &mut identity.old_id,
        UidKind::Passport => &mut identity.passport,
        UidKind::SocialInsurance => &mut identity.social_insurance,
        UidKind::PersonalId => &mut identity.personal_id,
        UidKind::Phone => &mut identity.phone,
    };
    if slot.is_none() {
        *slot = Some(match kind {
            UidKind::Phone => uid::msisdn(id).unwrap_or_else(|| id.to_owned()),
            _ => id.to_owned(),
        });
    }
}

/// A personal id makes the holder an individual even next to a tax code: that is a person
/// (director, accountant) signing for a business. Only an organisation code on its own means
/// the certificate is the organisation's (or its seal's).
fn kind_of(identity: &Identity) -> IdentityKind {
    let personal = identity.citizen_id.is_some()
        || identity.old_id.is_some()
        || identity.passport.is_some()
        || identity.personal_id.is_some();
    let organisational = identity.tax_code.is_some() || identity.budget_code.is_some();
    if organisational && !personal {
        IdentityKind::Organization
    } else {
        IdentityKind::Individual
    }
}

fn serial_hex(bytes: &[u8]) -> String {
    let significant = match bytes.iter().position(|&b| b != 0) {
        Some(start) => &bytes[start..],
        None => &bytes[bytes.len().saturating_sub(1)..],
    };
    hex::encode(significant)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    const DIRECTOR: &[u8] = include_bytes!("../../tests/fixtures/director.der");
    pub(in crate::verify) const ORG: &[u8] = include_bytes!("../../tests/fixtures/org.der");
    pub(in crate::verify) const SIM: &[u8] = include_bytes!("../../tests/fixtures/sim.der");

    pub(in crate::verify) fn parsed(der: &[u8]) -> Identity {
        parse_identity(der).expect("fixture certificate parses")
    }

    /// The organisation fixture's identity with these UIDs and no phone number.
    pub(in crate::verify) fn with_uids(uids: &[&str]) -> Identity {
        let mut identity = parsed(ORG);
        identity.uids = uids.iter().map(|u| (*u).to_owned()).collect();
        identity.phone = None;
        identity
    }

    #[test]
    fn an_organisation_certificate_yields_its_branch_tax_code() {
        let org = parsed(ORG);
        assert_eq!(org.kind, IdentityKind::Organization);
        assert_eq!(org.tax_code.as_deref(), Some("0100686209-199"));
        assert_eq!(org.province.as_deref(), Some("Hà Nội"));
        assert_eq!(org.locality.as_deref(), Some("Cầu Giấy"));
        assert_eq!(org.country.as_deref(), Some("VN"));
        assert_eq!(org.issuer, "Interop Issuing CA");
        assert_eq!(org.uids, ["MST:0100686209-199"]);
        assert_eq!(org.fingerprint_sha256, hex::encode(Sha256::digest(ORG)));
    }

    #[test]
    fn a_director_with_tax_code_and_citizen_id_is_an_individual_with_both() {
        let director = parsed(DIRECTOR);
        assert_eq!(director.kind, IdentityKind::Individual);
        assert_eq!(director.tax_code.as_deref(), Some("0100686209"));
        assert_eq!(director.citizen_id.as_deref(), Some("001099012345"));
        assert_eq!(director.name.as_deref(), Some("Lê Tuấn Anh"));
        assert_eq!(director.uids, ["MST:0100686209", "CCCD:001099012345"]);
    }

    #[test]
    fn a_sim_certificate_names_its_msisdn() {
        assert_eq!(parsed(SIM).phone.as_deref(), Some("84912345678"));
    }

    #[test]
    fn a_phone_number_in_a_uid_fills_the_phone() {
        let mut identity = with_uids(&[]);
        fill(&mut identity, UidKind::Phone, "0912345678");
        assert_eq!(identity.phone.as_deref(), Some("84912345678"));
    }

    #[test]
    fn kind_follows_the_ids_present() {
        let mut identity = with_uids(&[]);
        identity.tax_code = None;
        identity.budget_code = Some("1012345".into());
        assert_eq!(kind_of(&identity), IdentityKind::Organization);
        identity.passport = Some("B1234567".into());
        assert_eq!(kind_of(&identity), IdentityKind::Individual);
    }

    #[test]
    fn absent_fields_are_left_out_of_the_json() {
        let json = serde_json::to_value(parsed(ORG)).expect("identity serialises");
        assert_eq!(json["kind"], "organization");
        assert!(json.get("citizen_id").is_none());
        assert!(json.get("phone").is_none());
        assert_eq!(json["tax_code"], "0100686209-199");
    }

    #[test]
    fn serial_numbers_drop_the_sign_byte() {
        assert_eq!(serial_hex(&[0x00, 0x9f, 0x01]), "9f01");
        assert_eq!(serial_hex(&[0x10, 0x00]), "1000");
        assert_eq!(serial_hex(&[0x00]), "00");
    }
}
