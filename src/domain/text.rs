//! Free text that a phone or a portal shows (`display_text`, `reference`, `document_name`):
//! which characters it may not hold. A format character (general category Cf) is invisible
//! yet steers how the text around it renders: U+202E turns the rest of the line around, so a
//! display text ending in it shows the verification code that kyso appends reversed. Line and
//! paragraph separators and control characters break the one line these fields are. None of
//! them has a use in a prompt, a file name or a portal's id, so they are refused, not removed.

/// General category Cf, every code point, from UnicodeData.txt as of Unicode 18.0 (the table
/// of the `unicode-properties` 0.1.5 crate, merged into ranges; it equals Python's
/// `unicodedata` 14.0 plus U+13439..U+1343F, which Unicode 15.0 added). Sorted, disjoint.
const FORMAT: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `c` is a format character (general category Cf).
pub fn is_format(c: char) -> bool {
    FORMAT
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The first character of `s` that shown text may not hold: a control character (Cc), a
/// format character (Cf), or the line or paragraph separator (Zl, Zp).
pub fn first_unshowable(s: &str) -> Option<char> {
    s.chars()
        .find(|&c| c.is_control() || is_format(c) || matches!(c, '\u{2028}' | '\u{2029}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_table_is_sorted_and_disjoint() {
        for pair in FORMAT.windows(2) {
            assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:?}");
        }
        let total: u32 = FORMAT
            .iter()
            .map(|&(lo, hi)| hi as u32 - lo as u32 + 1)
            .sum();
        assert_eq!(total, 170, "Cf has 170 code points in Unicode 15 to 18");
    }

    #[test]
    fn bidi_controls_and_other_invisible_formatting_are_unshowable() {
        let refused = [
            '\u{00AD}',
            '\u{061C}',
            '\u{180E}',
            '\u{200B}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{FFF9}',
            '\u{FFFB}',
            '\u{E0001}',
            '\u{E0020}',
            '\u{E007F}',
            '\u{13439}',
            '\u{1343F}',
            '\u{2028}',
            '\u{2029}',
            '\u{0000}',
            '\u{001B}',
            '\u{0085}',
            '\n',
        ];
        for c in refused {
            let text = format!("Dang nhap DVC{c}");
            assert_eq!(first_unshowable(&text), Some(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn vietnamese_text_and_its_neighbours_are_showable() {
        for ok in [
            "Đăng nhập Dịch vụ công - hồ sơ số 12/2026",
            "Hợp đồng (bản 2).pdf",
            "reg-7781_ü€ 合同 عقد",
        ] {
            assert_eq!(first_unshowable(ok), None, "{ok}");
        }
        // Around the table's ranges: the neighbours of Cf code points are not Cf.
        for c in [
            '\u{00AC}',
            '\u{00AE}',
            '\u{200A}',
            '\u{2010}',
            '\u{2065}',
            '\u{13440}',
            '\u{E0080}',
        ] {
            assert!(!is_format(c), "U+{:04X}", c as u32);
        }
    }
}
