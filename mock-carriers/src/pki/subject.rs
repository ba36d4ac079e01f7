//! Who a signer id says the certificate holder is: the table that turns a provider user id
//! (`0101234567`, `0101234567-001`, `001099012345`, …) into the subject of the certificate the
//! mock provisions — an organisation with `UID=MST:…` or an individual with `UID=CCCD:…`,
//! `CMND:…`, `HC:…` or `PID:…` — following the shapes in `protocols/vn-certificates.md`; and
//! the SIM-certificate subject for a MSISDN (a person, `telephoneNumber` and `UID=CCCD:…`).

/// Whether the certificate names a person or a business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HolderKind {
    Individual,
    Organization,
}

/// The subject attributes a signer certificate carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    pub kind: HolderKind,
    /// CN: a Vietnamese name with diacritics, or the company name.
    pub common_name: String,
    /// O: the company name for organisations.
    pub organization: Option<String>,
    /// The UID value with its prefix, e.g. `MST:0101234567-001`.
    pub uid: String,
    /// telephoneNumber (2.5.4.20): the MSISDN (`84…`) on SIM certificates.
    #[serde(default)]
    pub telephone: Option<String>,
}

impl Subject {
    /// The one-line form SmartCA shows in `cert_subject` (most specific attribute first).
    pub fn display(&self) -> String {
        let mut parts = vec![format!("CN={}", self.common_name)];
        parts.push(format!("UID={}", self.uid));
        if let Some(phone) = &self.telephone {
            parts.push(format!("telephoneNumber={phone}"));
        }
        if let Some(org) = &self.organization {
            parts.push(format!("O={org}"));
        }
        parts.push("C=VN".to_owned());
        parts.join(", ")
    }
}

/// Signer ids double as file names, so only a conservative alphabet is accepted.
pub fn is_valid_signer_id(signer: &str) -> bool {
    !signer.is_empty()
        && signer.len() <= 64
        && signer
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !signer.starts_with('-')
}

/// Names for individuals, picked by the signer's digits so a signer always gets the same one.
const NAMES: [&str; 8] = [
    "Nguyễn Văn An",
    "Trần Thị Bích",
    "Lê Hoàng Cường",
    "Phạm Thị Dung",
    "Hoàng Văn Đức",
    "Vũ Thị Hương",
    "Đặng Quốc Khánh",
    "Bùi Thị Lan",
];

/// The subject for a signer id:
///
/// | signer | holder | UID |
/// |---|---|---|
/// | 10 digits | organisation | `MST:<10>` |
/// | 10 digits `-` 3 digits | organisation (branch) | `MST:<10>-<3>` |
/// | 13 digits | organisation (branch) | `MST:<first 10>-<last 3>` |
/// | 12 digits | individual | `CCCD:<12>` |
/// | 9 digits | individual | `CMND:<9>` |
/// | one letter + 7 or 8 digits | individual | `HC:<id>` (passport) |
/// | anything else | individual | `PID:<id>` |
pub fn subject_for(signer: &str) -> Subject {
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let organisation = |tax_code: String| Subject {
        kind: HolderKind::Organization,
        common_name: format!("Công ty TNHH Mock {signer}"),
        organization: Some(format!("Công ty TNHH Mock {signer}")),
        uid: format!("MST:{tax_code}"),
        telephone: None,
    };
    let individual = |uid: String| Subject {
        kind: HolderKind::Individual,
        common_name: name_for(signer).to_owned(),
        organization: None,
        uid,
        telephone: None,
    };

    if all_digits(signer) {
        match signer.len() {
            10 => return organisation(signer.to_owned()),
            13 => return organisation(format!("{}-{}", &signer[..10], &signer[10..])),
            12 => return individual(format!("CCCD:{signer}")),
            9 => return individual(format!("CMND:{signer}")),
            _ => {}
        }
    }
    if let Some((head, branch)) = signer.split_once('-') {
        if head.len() == 10 && branch.len() == 3 && all_digits(head) && all_digits(branch) {
            return organisation(signer.to_owned());
        }
    }
    let mut chars = signer.chars();
    let passport = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && matches!(signer.len(), 8 | 9)
        && all_digits(chars.as_str());
    if passport {
        return individual(format!("HC:{signer}"));
    }
    individual(format!("PID:{signer}"))
}

/// The subject of a SIM certificate for a normalised MSISDN (`84` + 9 digits): a person with
/// a Vietnamese name, `telephoneNumber` = the MSISDN, and a citizen id derived from the
/// number (`CCCD:0010` + its last 8 digits) so the identity the portal shows is complete.
pub fn sim_subject(msisdn: &str) -> Subject {
    let tail = msisdn
        .get(msisdn.len().saturating_sub(8)..)
        .unwrap_or(msisdn);
    Subject {
        kind: HolderKind::Individual,
        common_name: name_for(msisdn).to_owned(),
        organization: None,
        uid: format!("CCCD:0010{tail:0>8}"),
        telephone: Some(msisdn.to_owned()),
    }
}

fn name_for(signer: &str) -> &'static str {
    let sum: usize = signer.bytes().map(usize::from).sum();
    NAMES[sum % NAMES.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_digits_is_an_organisation_with_a_tax_code() {
        let s = subject_for("0101234567");
        assert_eq!(s.kind, HolderKind::Organization);
        assert_eq!(s.uid, "MST:0101234567");
        assert_eq!(
            s.organization.as_deref(),
            Some("Công ty TNHH Mock 0101234567")
        );
    }

    #[test]
    fn a_branch_tax_code_keeps_its_suffix_in_either_spelling() {
        assert_eq!(subject_for("0101234567-001").uid, "MST:0101234567-001");
        assert_eq!(subject_for("0101234567001").uid, "MST:0101234567-001");
        assert_eq!(subject_for("0101234567001").kind, HolderKind::Organization);
    }

    #[test]
    fn twelve_digits_is_a_citizen_and_nine_an_old_id_card() {
        let s = subject_for("001099012345");
        assert_eq!(s.kind, HolderKind::Individual);
        assert_eq!(s.uid, "CCCD:001099012345");
        assert!(s.organization.is_none());
        assert!(!s.common_name.is_ascii(), "names carry diacritics");
        assert_eq!(subject_for("012345678").uid, "CMND:012345678");
    }

    #[test]
    fn other_shapes_are_individuals_with_a_passport_or_generic_id() {
        assert_eq!(subject_for("B1234567").uid, "HC:B1234567");
        assert_eq!(subject_for("qa_user_1").uid, "PID:qa_user_1");
    }

    #[test]
    fn a_sim_subject_names_the_msisdn_and_a_citizen_id() {
        let s = sim_subject("84912345678");
        assert_eq!(s.telephone.as_deref(), Some("84912345678"));
        assert_eq!(s.uid, "CCCD:001012345678");
        assert_eq!(s.kind, HolderKind::Individual);
        assert!(s.display().contains("telephoneNumber=84912345678"));
    }

    #[test]
    fn signer_ids_that_could_escape_the_state_directory_are_refused() {
        assert!(is_valid_signer_id("0101234567-001"));
        for bad in ["", "../x", "a/b", "-rf", "a b", "Nguyễn"] {
            assert!(!is_valid_signer_id(bad), "{bad:?}");
        }
    }
}
