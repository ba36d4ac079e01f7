//! The signer check: whether a certificate belongs to the signer id the portal or a provider
//! gave. A signer id names an identifier type (from its prefix, or from its shape when it is
//! bare) and an id; only identifiers of that type are compared (SPEC 5.3), so a `BHXH:`, `PID:`
//! or `CMND:` UID that happens to hold a tax code's digits never passes for that taxpayer.

use super::identity::Identity;
use super::uid::{self, UidKind};

/// Whether the certificate belongs to the signer the portal asked for: one of its UIDs, or its
/// phone number, is an identifier of the type the signer id names with the same id (a tax code's
/// branch suffix included). Types never mix: `kinds_by_shape` says how a bare id gets its type.
pub fn signer_matches(identity: &Identity, signer: &str) -> bool {
    let Some(wanted) = Signer::parse(signer) else {
        return false;
    };
    identity.uids.iter().any(|raw| wanted.matches_uid(raw))
        || identity
            .phone
            .as_deref()
            .is_some_and(|phone| wanted.matches_phone(phone))
}

/// Typed signer prefixes: the UID forms (`MST:`) and the provider forms (MySign `MST_`, `CMT_`),
/// each with the UID kinds it may be compared with. Matched ASCII-case-insensitively.
/// `CMT_` is MySign's "chứng minh thư", the identity card: the 12-digit citizen card or the old
/// 9/12-digit card.
const TYPED: &[(&str, &[UidKind])] = &[
    ("MST:", &[UidKind::TaxCode]),
    ("MST_", &[UidKind::TaxCode]),
    ("MNS:", &[UidKind::BudgetCode]),
    ("MNS_", &[UidKind::BudgetCode]),
    ("CCCD:", &[UidKind::CitizenId]),
    ("CCCD_", &[UidKind::CitizenId]),
    ("CMND:", &[UidKind::OldId]),
    ("CMND_", &[UidKind::OldId]),
    ("CMT_", &[UidKind::CitizenId, UidKind::OldId]),
    ("HC:", &[UidKind::Passport]),
    ("HC_", &[UidKind::Passport]),
    ("BHXH:", &[UidKind::SocialInsurance]),
    ("BHXH_", &[UidKind::SocialInsurance]),
    ("PID:", &[UidKind::PersonalId]),
    ("PID_", &[UidKind::PersonalId]),
    ("PPID:", &[UidKind::PersonalId]),
    ("PPID_", &[UidKind::PersonalId]),
    ("SDT:", &[UidKind::Phone]),
    ("SĐT:", &[UidKind::Phone]),
    ("SDT_", &[UidKind::Phone]),
];

/// A signer id resolved to the identifier types it may match and its comparable id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signer {
    kinds: &'static [UidKind],
    /// Upper case without whitespace; for a phone, the `84…` MSISDN.
    id: String,
}

impl Signer {
    /// `None` when the id is empty or names no identifier type kyso knows: such a signer
    /// matches no certificate.
    pub(crate) fn parse(signer: &str) -> Option<Self> {
        let signer = signer.trim();
        let typed = TYPED.iter().find_map(|(prefix, kinds)| {
            uid::strip_prefix_ignore_case(signer, prefix).map(|id| (*kinds, id.trim()))
        });
        let (kinds, id) = match typed {
            Some(found) => found,
            None => (kinds_by_shape(signer), signer),
        };
        let id = if kinds == [UidKind::Phone] {
            uid::msisdn(id)?
        } else {
            comparable(id)
        };
        (!kinds.is_empty() && !id.is_empty()).then_some(Self { kinds, id })
    }

    /// Whether a raw UID value of the certificate is this signer: same type, same id.
    pub(crate) fn matches_uid(&self, raw: &str) -> bool {
        match uid::split(raw) {
            (Some(UidKind::Phone), id) => self.matches_phone(id),
            (Some(kind), id) => self.kinds.contains(&kind) && comparable(id) == self.id,
            (None, _) => false,
        }
    }

    /// Whether the certificate's phone number (telephoneNumber or a phone UID) is this signer.
    pub(crate) fn matches_phone(&self, phone: &str) -> bool {
        self.kinds == [UidKind::Phone] && uid::msisdn(phone).is_some_and(|p| p == self.id)
    }
}

/// What a bare id stands for, by shape:
///
/// | shape | type |
/// |---|---|
/// | 10 digits, 13 digits, or 10 digits `-` 3 digits (`0101234567-001`) | tax code (`MST:`) |
/// | 12 digits | citizen id (`CCCD:`), or an old 12-digit card (`CMND:`), which carries the same number |
/// | 9 digits | old identity card (`CMND:`) |
/// | `84` + 9 digits, or `+84…` | MSISDN (the certificate's phone) |
/// | 1–2 letters then 6–8 digits (`B1234567`) | passport (`HC:`) |
///
/// SmartCA's user id is one of these (CCCD, CMND, passport or tax code, bare). The national
/// phone form `0…` is 10 digits, a tax code's shape, so it means a tax code; a phone number is
/// asked for as `84…`, `+84…` or `SDT:…`. Anything else is no known type.
fn kinds_by_shape(id: &str) -> &'static [UidKind] {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((main, branch)) = id.split_once('-') {
        let branch_code = main.len() == 10 && digits(main) && branch.len() == 3 && digits(branch);
        return if branch_code {
            &[UidKind::TaxCode]
        } else {
            &[]
        };
    }
    if digits(id) {
        return match id.len() {
            9 => &[UidKind::OldId],
            10 | 13 => &[UidKind::TaxCode],
            11 if id.starts_with("84") => &[UidKind::Phone],
            12 => &[UidKind::CitizenId, UidKind::OldId],
            _ => &[],
        };
    }
    if id
        .strip_prefix("+84")
        .is_some_and(|national| national.len() == 9 && digits(national))
    {
        return &[UidKind::Phone];
    }
    let letters = id.bytes().take_while(u8::is_ascii_alphabetic).count();
    if (1..=2).contains(&letters)
        && (6..=8).contains(&(id.len() - letters))
        && digits(&id[letters..])
    {
        return &[UidKind::Passport];
    }
    &[]
}

/// Ids compare without whitespace and in ASCII upper case (passport numbers carry letters);
/// a branch suffix such as `-199` is kept, because a branch is another taxpayer.
fn comparable(id: &str) -> String {
    id.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::identity::tests::{parsed, with_uids, SIM};

    fn kinds(signer: &str) -> Option<&'static [UidKind]> {
        Signer::parse(signer).map(|s| s.kinds)
    }

    #[test]
    fn a_bare_id_takes_the_type_its_shape_implies() {
        use UidKind::*;
        let cases: &[(&str, &[UidKind])] = &[
            ("0101234567", &[TaxCode]),
            ("0101234567-001", &[TaxCode]),
            ("0101234567001", &[TaxCode]),
            ("001099012345", &[CitizenId, OldId]),
            ("012345678", &[OldId]),
            ("84912345678", &[Phone]),
            ("+84912345678", &[Phone]),
            ("B1234567", &[Passport]),
        ];
        for (signer, expected) in cases {
            assert_eq!(kinds(signer), Some(*expected), "{signer}");
        }
    }

    #[test]
    fn a_bare_id_of_no_known_shape_names_nothing() {
        for signer in [
            "",
            "  ",
            "12345",
            "01012345678901",
            "0101234567-01",
            "01-234",
            "ABC:42",
            "CMT_",
            "MST_ ",
            "SDT:12",
        ] {
            assert_eq!(Signer::parse(signer), None, "{signer:?}");
        }
    }

    #[test]
    fn a_typed_signer_means_exactly_its_type() {
        use UidKind::*;
        let cases: &[(&str, &[UidKind])] = &[
            ("MST:0101234567", &[TaxCode]),
            ("mst_0101234567", &[TaxCode]),
            ("CCCD_001099012345", &[CitizenId]),
            ("CMND:001099012345", &[OldId]),
            ("CMT_0123456789", &[CitizenId, OldId]),
            ("BHXH_0101234567", &[SocialInsurance]),
            ("PID:0101234567", &[PersonalId]),
            ("HC:b1234567", &[Passport]),
            ("MNS:1012345", &[BudgetCode]),
            ("SDT:0912345678", &[Phone]),
        ];
        for (signer, expected) in cases {
            assert_eq!(kinds(signer), Some(*expected), "{signer}");
        }
    }

    #[test]
    fn a_uid_of_another_type_with_the_same_digits_is_not_the_signer() {
        let tax_code = Signer::parse("MST_0101234567").expect("typed");
        assert!(tax_code.matches_uid("MST:0101234567"));
        for other in [
            "BHXH:0101234567",
            "PID:0101234567",
            "PPID:0101234567",
            "CMND:0101234567",
            "CCCD:0101234567",
            "MNS:0101234567",
            "HC:0101234567",
            "0101234567",
        ] {
            assert!(!tax_code.matches_uid(other), "{other}");
        }
    }

    #[test]
    fn a_phone_signer_matches_phone_uids_in_any_form() {
        let phone = Signer::parse("84912345678").expect("phone");
        for uid in ["SDT:0912345678", "SĐT:+84912345678", "84912345678"] {
            assert!(phone.matches_uid(uid), "{uid}");
        }
        assert!(phone.matches_phone("0912 345 678"));
        assert!(!phone.matches_uid("CCCD:84912345678"));
        assert!(!Signer::parse("0912345678")
            .expect("tax code shape")
            .matches_phone("84912345678"));
    }

    #[test]
    fn a_provider_user_id_matches_a_uid_of_its_own_type() {
        let director = with_uids(&["MST:0100686209-199", "CCCD:001099012345"]);
        for signer in [
            "001099012345",
            "CMT_001099012345",
            "CCCD:001099012345",
            "cccd_001099012345",
            "MST_0100686209-199",
            "MST:0100686209-199",
            "0100686209-199",
        ] {
            assert!(signer_matches(&director, signer), "{signer}");
        }
    }

    #[test]
    fn a_tax_code_signer_never_matches_another_identifier_with_the_same_digits() {
        for uid in [
            "BHXH:0101234567",
            "PID:0101234567",
            "PPID:0101234567",
            "CMND:0101234567",
            "CCCD:0101234567",
            "MNS:0101234567",
            "HC:0101234567",
        ] {
            let person = with_uids(&[uid]);
            for signer in ["MST_0101234567", "MST:0101234567", "0101234567"] {
                assert!(!signer_matches(&person, signer), "{signer} vs {uid}");
            }
        }
        let branch = with_uids(&["BHXH:0101234567-001"]);
        assert!(!signer_matches(&branch, "0101234567-001"));
    }

    #[test]
    fn a_typed_signer_never_matches_another_identifier_type() {
        let cases = [
            ("CCCD_001099012345", "CMND:001099012345"),
            ("CMND_001099012345", "CCCD:001099012345"),
            ("CCCD:001099012345", "PID:001099012345"),
            ("BHXH_0101234567", "MST:0101234567"),
            ("PID:0101234567", "MST:0101234567"),
            ("HC:B1234567", "PID:B1234567"),
            ("MNS_1012345", "MST:1012345"),
            ("CMT_012345678", "BHXH:012345678"),
        ];
        for (signer, uid) in cases {
            assert!(
                !signer_matches(&with_uids(&[uid]), signer),
                "{signer} vs {uid}"
            );
        }
        for (signer, uid) in [
            ("BHXH_0101234567", "BHXH:0101234567"),
            ("PID:0101234567", "PID:0101234567"),
            ("HC:b1234567", "HC:B1234567"),
            ("MNS_1012345", "MNS:1012345"),
        ] {
            assert!(
                signer_matches(&with_uids(&[uid]), signer),
                "{signer} vs {uid}"
            );
        }
    }

    #[test]
    fn a_bare_id_is_compared_as_the_type_its_shape_implies() {
        // 12 digits: a citizen id, or the old 12-digit card that carries the same number.
        assert!(signer_matches(
            &with_uids(&["CMND:001099012345"]),
            "001099012345"
        ));
        assert!(!signer_matches(
            &with_uids(&["PID:001099012345"]),
            "001099012345"
        ));
        assert!(!signer_matches(
            &with_uids(&["BHXH:001099012345"]),
            "001099012345"
        ));
        // 9 digits: the old identity card only.
        assert!(signer_matches(&with_uids(&["CMND:012345678"]), "012345678"));
        assert!(!signer_matches(&with_uids(&["PID:012345678"]), "012345678"));
        // A passport number, as SmartCA users registered with one are named.
        assert!(signer_matches(&with_uids(&["HC:B1234567"]), "B1234567"));
        assert!(!signer_matches(&with_uids(&["PID:B1234567"]), "B1234567"));
        // A UID with a prefix kyso does not know is no identifier of any type.
        assert!(!signer_matches(
            &with_uids(&["XYZ:0101234567"]),
            "0101234567"
        ));
    }

    #[test]
    fn a_tax_code_without_the_branch_is_another_signer() {
        let branch = with_uids(&["MST:0100686209-199"]);
        assert!(!signer_matches(&branch, "MST_0100686209"));
        assert!(!signer_matches(&branch, "0100686209-198"));
        assert!(!signer_matches(
            &with_uids(&["MST:0100686209"]),
            "0100686209-199"
        ));
    }

    #[test]
    fn an_empty_or_unrelated_signer_never_matches() {
        let person = with_uids(&["CCCD:001099012345"]);
        assert!(!signer_matches(&person, ""));
        assert!(!signer_matches(&person, "CMT_"));
        assert!(!signer_matches(&person, "001099012346"));
    }

    #[test]
    fn a_msisdn_matches_the_certificate_phone_in_any_international_form() {
        let sim = parsed(SIM);
        for signer in ["84912345678", "+84912345678", "SDT:0912345678"] {
            assert!(signer_matches(&sim, signer), "{signer}");
        }
        assert!(!signer_matches(&sim, "84912345679"));
        let phone_uid = with_uids(&["SDT:0912345678"]);
        assert!(signer_matches(&phone_uid, "84912345678"));
    }

    #[test]
    fn a_tax_code_never_passes_for_a_phone_number_with_the_same_digits() {
        // 0312345678 is a Ho Chi Minh City tax code and also a national-form mobile number.
        let mut sim = with_uids(&[]);
        sim.phone = Some("84312345678".into());
        assert!(!signer_matches(&sim, "0312345678"));
        assert!(!signer_matches(&sim, "MST_0312345678"));
        assert!(signer_matches(&sim, "84312345678"));
    }
}
