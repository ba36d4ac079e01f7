//! Fitting the session's display text into what a SIM toolkit prompt can show. The carrier sends
//! `DataToBeDisplayed` in one SMS-sized frame: GSM-7 text up to a septet budget (characters
//! from the GSM 03.38 extension table take two septets), and text with anything outside GSM-7,
//! which Vietnamese diacritics always are, as UCS-2 with a much shorter budget. An instance may
//! ask for GSM-7 only, and then Vietnamese is written without diacritics. Whatever is cut, the
//! verification code the portal shows stays: only the free text in front of it is shortened.

use serde::Deserialize;

/// The marker the session's display text puts before the verification code.
const CODE_MARKER: &str = " - Mã xác nhận ";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayEncoding {
    /// GSM-7 when every character allows it, else UCS-2 with diacritics kept.
    #[default]
    Auto,
    /// Always GSM-7: Vietnamese is transliterated to plain letters.
    Gsm7,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Septets available for GSM-7 text.
    pub gsm7: usize,
    /// UTF-16 code units available for UCS-2 text.
    pub ucs2: usize,
}

/// The text to send and how it will travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    pub text: String,
    pub gsm7: bool,
}

/// Fits `display_text` (which ends with [`CODE_MARKER`] and the code) to the limits.
pub fn fit(display_text: &str, encoding: DisplayEncoding, limits: Limits) -> Fitted {
    let text = match encoding {
        DisplayEncoding::Auto => display_text.to_owned(),
        DisplayEncoding::Gsm7 => to_gsm7(display_text),
    };
    let gsm7 = text.chars().all(|c| gsm7_septets(c).is_some());
    let (cost, budget): (fn(char) -> usize, usize) = if gsm7 {
        (|c| gsm7_septets(c).unwrap_or(2), limits.gsm7)
    } else {
        (char::len_utf16, limits.ucs2)
    };
    let (free, suffix) = split_code(&text);
    let len = |s: &str| s.chars().map(cost).sum::<usize>();
    if len(&text) <= budget {
        return Fitted { text, gsm7 };
    }
    // The free text is cut and marked; the suffix with the code is kept whole, and when even
    // the suffix is too long, the bare code is what must survive.
    let ellipsis = if gsm7 { "..." } else { "…" };
    if len(suffix) > budget {
        let code = suffix.trim_start_matches(|c: char| !c.is_ascii_digit());
        return Fitted {
            text: code.to_owned(),
            gsm7,
        };
    }
    let room = budget.saturating_sub(len(suffix) + len(ellipsis));
    let mut kept = String::new();
    let mut used = 0;
    for c in free.chars() {
        used += cost(c);
        if used > room {
            break;
        }
        kept.push(c);
    }
    let kept = kept.trim_end();
    let text = if kept.is_empty() {
        suffix.trim_start_matches([' ', '-']).to_owned()
    } else {
        format!("{kept}{ellipsis}{suffix}")
    };
    Fitted { text, gsm7 }
}

/// Splits at the last code marker; without one, the trailing run of digits is the code.
fn split_code(text: &str) -> (&str, &str) {
    let marker = to_gsm7(CODE_MARKER);
    for m in [CODE_MARKER, marker.as_str()] {
        if let Some(at) = text.rfind(m) {
            return text.split_at(at);
        }
    }
    let digits = text.len() - text.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    text.split_at(text.len() - digits)
}

/// Septets a character takes in GSM-7 (GSM 03.38 default alphabet and its extension table),
/// or `None` when it has no GSM-7 form.
pub fn gsm7_septets(c: char) -> Option<usize> {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
        ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const EXTENSION: &str = "^{}\\[~]|€\u{c}";
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Vietnamese written in plain letters (`Mã xác nhận` → `Ma xac nhan`, `Đ` → `D`), whether it
/// arrives precomposed or decomposed; other characters without a GSM-7 form become `?`.
pub fn to_gsm7(text: &str) -> String {
    const GROUPS: &[(char, &str)] = &[
        ('a', "àáảãạăằắẳẵặâầấẩẫậ"),
        ('A', "ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ"),
        ('e', "èéẻẽẹêềếểễệ"),
        ('E', "ÈÉẺẼẸÊỀẾỂỄỆ"),
        ('i', "ìíỉĩị"),
        ('I', "ÌÍỈĨỊ"),
        ('o', "òóỏõọôồốổỗộơờớởỡợ"),
        ('O', "ÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ"),
        ('u', "ùúủũụưừứửữự"),
        ('U', "ÙÚỦŨỤƯỪỨỬỮỰ"),
        ('y', "ỳýỷỹỵ"),
        ('Y', "ỲÝỶỸỴ"),
        ('d', "đ"),
        ('D', "Đ"),
    ];
    text.chars()
        // Combining marks (decomposed tones and hats) are simply dropped.
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .map(|c| {
            if let Some(&(base, _)) = GROUPS.iter().find(|(_, g)| g.contains(c)) {
                return base;
            }
            match c {
                c if gsm7_septets(c).is_some() => c,
                '“' | '”' => '"',
                '‘' | '’' => '\'',
                '–' | '—' => '-',
                '…' => '.',
                _ => '?',
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        gsm7: 160,
        ucs2: 70,
    };

    fn ucs2_len(s: &str) -> usize {
        s.encode_utf16().count()
    }

    #[test]
    fn vietnamese_text_that_fits_is_sent_unchanged_as_ucs2() {
        let text = "Đăng ký tài khoản - Mã xác nhận 4821";
        let f = fit(text, DisplayEncoding::Auto, LIMITS);
        assert_eq!(
            f,
            Fitted {
                text: text.into(),
                gsm7: false
            }
        );
    }

    #[test]
    fn long_vietnamese_text_is_cut_to_the_ucs2_limit_and_keeps_the_code() {
        let text = "Xác nhận đăng ký tài khoản doanh nghiệp trên Cổng Dịch vụ công quốc gia \
                    cho Công ty TNHH Thương mại Ánh Dương - Mã xác nhận 0093";
        let f = fit(text, DisplayEncoding::Auto, LIMITS);
        assert!(!f.gsm7);
        assert!(
            ucs2_len(&f.text) <= 70,
            "{} ({})",
            f.text,
            ucs2_len(&f.text)
        );
        assert!(f.text.ends_with("… - Mã xác nhận 0093"), "{}", f.text);
        assert!(f.text.starts_with("Xác nhận đăng ký"), "{}", f.text);
    }

    #[test]
    fn plain_ascii_text_uses_the_gsm7_budget() {
        let free = "x".repeat(150);
        let text = format!("{free} - Ma xac nhan 1234");
        let f = fit(&text, DisplayEncoding::Auto, LIMITS);
        assert!(f.gsm7);
        assert_eq!(f.text.chars().count(), 160);
        assert!(f.text.ends_with("x... - Ma xac nhan 1234"));
        // A GSM-7 extension character costs two septets.
        let braces = format!("{} - Ma xac nhan 1234", "{".repeat(80));
        let f = fit(&braces, DisplayEncoding::Auto, LIMITS);
        let septets: usize = f.text.chars().filter_map(gsm7_septets).sum();
        assert!(septets <= 160, "{septets}");
        assert!(f.text.ends_with("1234"));
    }

    #[test]
    fn the_gsm7_setting_transliterates_vietnamese() {
        let text = "Đăng ký tài khoản Cổng Dịch vụ công - Mã xác nhận 4821";
        let f = fit(text, DisplayEncoding::Gsm7, LIMITS);
        assert!(f.gsm7);
        assert_eq!(
            f.text,
            "Dang ky tai khoan Cong Dich vu cong - Ma xac nhan 4821"
        );
        assert_eq!(to_gsm7("ĐƯỜNG Ơn đức"), "DUONG On duc");
        // Decomposed input (NFD) folds the same way.
        assert_eq!(to_gsm7("Hoa\u{323}t \u{111}o\u{323}\u{302}ng"), "Hoat dong");
        assert_eq!(to_gsm7("Gửi “A” – 日"), "Gui \"A\" - ?");
    }

    #[test]
    fn gsm7_text_over_its_limit_is_cut_before_the_code() {
        let free = "Xác nhận đăng ký ".repeat(20);
        let text = format!("{free}- Mã xác nhận 7777");
        let f = fit(&text, DisplayEncoding::Gsm7, Limits { gsm7: 60, ucs2: 70 });
        assert!(f.text.chars().count() <= 60, "{}", f.text);
        assert!(f.text.ends_with("... - Ma xac nhan 7777"), "{}", f.text);
    }

    #[test]
    fn a_tiny_limit_still_keeps_the_bare_code() {
        let text = "Đăng ký - Mã xác nhận 4821";
        let f = fit(text, DisplayEncoding::Auto, Limits { gsm7: 10, ucs2: 8 });
        assert_eq!(f.text, "4821");
        let f = fit(
            "Đăng ký tài khoản 4821",
            DisplayEncoding::Auto,
            Limits { gsm7: 10, ucs2: 12 },
        );
        assert!(
            f.text.ends_with("4821") && ucs2_len(&f.text) <= 12,
            "{}",
            f.text
        );
    }
}
