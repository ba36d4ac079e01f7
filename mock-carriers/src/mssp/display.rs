//! How long `DataToBeDisplayed` is on the SIM: text entirely in the GSM 03.38 default
//! alphabet is sent as GSM-7 (extension-table characters take two septets); anything else —
//! Vietnamese diacritics included — needs UCS-2, with its shorter limit. Over the limit, the
//! MSSP answers 103 WRONG_DATA_LENGTH.

use super::soap::{Element, Fault};
use super::wire::{DISPLAY_LIMIT_GSM7, DISPLAY_LIMIT_UCS2};

/// The GSM 03.38 default alphabet (the characters that take one septet).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table (escape + character: two septets).
const EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// The text's length in septets, or `None` when it needs UCS-2.
pub fn gsm7_length(text: &str) -> Option<usize> {
    text.chars().try_fold(0usize, |len, c| {
        if BASIC.contains(c) {
            Some(len + 1)
        } else if EXTENSION.contains(c) {
            Some(len + 2)
        } else {
            None
        }
    })
}

/// The display text, checked against the GSM-7 / UCS-2 limits (103 when over).
pub fn display_text(d: &Element) -> Result<String, Fault> {
    let mime = d
        .attr("MimeType")
        .unwrap_or("text/plain")
        .to_ascii_lowercase();
    if !mime.starts_with("text/plain") {
        return Err(Fault::status(107, "DataToBeDisplayed must be text/plain"));
    }
    let text = d.value().to_owned();
    let (len, limit) = match gsm7_length(&text) {
        Some(septets) => (septets, DISPLAY_LIMIT_GSM7),
        None => (text.encode_utf16().count(), DISPLAY_LIMIT_UCS2),
    };
    if len > limit {
        return Err(Fault::status(
            103,
            format!("DataToBeDisplayed is {len} characters; the limit is {limit}"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_text_is_gsm7_and_extension_characters_count_twice() {
        assert_eq!(gsm7_length("DVC: xac nhan dang ky - ma 4821"), Some(31));
        assert_eq!(gsm7_length("[a]"), Some(5));
        assert_eq!(gsm7_length(""), Some(0));
    }

    #[test]
    fn vietnamese_diacritics_need_ucs2() {
        assert_eq!(gsm7_length("Xác nhận đăng ký"), None);
        assert_eq!(gsm7_length("é"), Some(1), "é is in the default alphabet");
    }
}
