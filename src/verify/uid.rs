//! The typed identifiers Vietnamese CAs put in UID (0.9.2342.19200300.100.1.1) values, and the
//! MSISDN normalisation that lets phone numbers in any form be compared. Prefixes live in a
//! table so a new one (Circular 28/2025/TT-BKHCN) is a one-line change; what a signer id names
//! is [`super::signer`]'s business.

/// What a UID value identifies, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UidKind {
    TaxCode,
    BudgetCode,
    CitizenId,
    OldId,
    Passport,
    SocialInsurance,
    PersonalId,
    Phone,
}

/// UID prefixes as CAs write them. Matched ASCII-case-insensitively.
const UID_PREFIXES: &[(&str, UidKind)] = &[
    ("MST:", UidKind::TaxCode),
    ("MNS:", UidKind::BudgetCode),
    ("CCCD:", UidKind::CitizenId),
    ("CMND:", UidKind::OldId),
    ("HC:", UidKind::Passport),
    ("BHXH:", UidKind::SocialInsurance),
    ("PID:", UidKind::PersonalId),
    ("PPID:", UidKind::PersonalId),
    ("SDT:", UidKind::Phone),
    ("SĐT:", UidKind::Phone),
];

pub(crate) fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

/// Splits a raw UID value into its kind (when the prefix is known) and its id part.
/// A bare Vietnamese MSISDN (`84` + 9 digits, optionally with `+`) counts as a phone number,
/// since some SIM certificates carry the subscriber number that way.
pub(crate) fn split(uid: &str) -> (Option<UidKind>, &str) {
    let uid = uid.trim();
    for (prefix, kind) in UID_PREFIXES {
        if let Some(id) = strip_prefix_ignore_case(uid, prefix) {
            return (Some(*kind), id.trim());
        }
    }
    let digits = uid.strip_prefix('+').unwrap_or(uid);
    if digits.len() == 11 && digits.starts_with("84") && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return (Some(UidKind::Phone), uid);
    }
    (None, uid)
}

/// Normalises a Vietnamese phone number to the stored MSISDN form `84…`: accepts `+84…`,
/// `0084…`, `84…` and the national `0…` form, with spaces, dots, dashes or brackets.
/// Anything else (letters, foreign numbers) is not an MSISDN kyso can compare.
pub(crate) fn msisdn(value: &str) -> Option<String> {
    let digits: String = value
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let digits = digits
        .strip_prefix('+')
        .or_else(|| digits.strip_prefix("00"))
        .unwrap_or(&digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.starts_with("84") {
        Some(digits.to_owned())
    } else {
        digits
            .strip_prefix('0')
            .map(|national| format!("84{national}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_in_the_table_is_recognised() {
        let cases = [
            ("MST:0100686209", UidKind::TaxCode, "0100686209"),
            ("MNS:1012345", UidKind::BudgetCode, "1012345"),
            ("CCCD:001099012345", UidKind::CitizenId, "001099012345"),
            ("CMND:012345678", UidKind::OldId, "012345678"),
            ("HC:B1234567", UidKind::Passport, "B1234567"),
            ("BHXH:0123456789", UidKind::SocialInsurance, "0123456789"),
            ("PID:123456", UidKind::PersonalId, "123456"),
            ("PPID:654321", UidKind::PersonalId, "654321"),
            ("SDT:0912345678", UidKind::Phone, "0912345678"),
            ("SĐT:0912345678", UidKind::Phone, "0912345678"),
        ];
        for (uid, kind, id) in cases {
            assert_eq!(split(uid), (Some(kind), id), "{uid}");
        }
        for (prefix, _) in UID_PREFIXES {
            assert!(
                cases.iter().any(|(uid, _, _)| uid.starts_with(prefix)),
                "no case for {prefix}"
            );
        }
    }

    #[test]
    fn a_tax_code_keeps_its_branch_suffix() {
        assert_eq!(
            split("MST:0100686209-199"),
            (Some(UidKind::TaxCode), "0100686209-199")
        );
    }

    #[test]
    fn prefixes_match_whatever_the_case_and_spacing() {
        assert_eq!(
            split(" mst: 0100686209 "),
            (Some(UidKind::TaxCode), "0100686209")
        );
        assert_eq!(
            strip_prefix_ignore_case("cmt_001099012345", "CMT_"),
            Some("001099012345")
        );
    }

    #[test]
    fn an_unknown_prefix_is_kept_whole() {
        assert_eq!(split("ABC:42"), (None, "ABC:42"));
    }

    #[test]
    fn a_bare_msisdn_uid_is_a_phone_number_but_a_citizen_id_is_not() {
        assert_eq!(split("84912345678").0, Some(UidKind::Phone));
        assert_eq!(split("001099012345").0, None);
    }

    #[test]
    fn phone_numbers_normalise_to_the_84_form() {
        for number in [
            "84912345678",
            "+84912345678",
            "0912345678",
            "0084 912 345 678",
            "091-234-5678",
        ] {
            assert_eq!(msisdn(number).as_deref(), Some("84912345678"), "{number}");
        }
        assert_eq!(msisdn("CMT_0912345678"), None);
        assert_eq!(msisdn("12345"), None);
        assert_eq!(msisdn(""), None);
    }
}
