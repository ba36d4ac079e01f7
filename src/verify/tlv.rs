//! A few lines of raw DER: reading tag-length-value elements without decoding them, and writing
//! them. CMS and OCSP signatures cover exact bytes (the signed attributes as received, the
//! `tbsResponseData` as sent), and decoding into typed structures re-sorts SETs, so those bytes
//! are taken from the input as they are. Only single-byte tags and definite lengths exist here:
//! that is all DER needs, and BER's indefinite lengths are refused with a clear error.

/// One element: its tag byte, the whole encoding, and the value inside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub whole: &'a [u8],
    pub value: &'a [u8],
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;
pub(crate) const UTC_TIME: u8 = 0x17;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;

/// `[n]` constructed, context-specific.
pub(crate) const fn context(n: u8) -> u8 {
    0xA0 | n
}

/// Splits the first element off `bytes`.
pub(crate) fn split(bytes: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let (&tag, rest) = bytes.split_first().ok_or("unexpected end of data")?;
    if tag & 0x1F == 0x1F {
        return Err(format!("multi-byte tag {tag:#04x} is not expected here"));
    }
    let (&first, rest) = rest.split_first().ok_or("missing length")?;
    let (len, rest) = match first {
        0x80 => return Err("indefinite length (BER) is not accepted; send DER".into()),
        n if n < 0x80 => (usize::from(n), rest),
        n => {
            let count = usize::from(n & 0x7F);
            if count > 4 || rest.len() < count {
                return Err("length too large".into());
            }
            let (digits, rest) = rest.split_at(count);
            let len = digits
                .iter()
                .fold(0usize, |acc, &d| (acc << 8) | usize::from(d));
            (len, rest)
        }
    };
    if rest.len() < len {
        return Err("element longer than its container".into());
    }
    let header = bytes.len() - rest.len();
    let whole = &bytes[..header + len];
    let value = &rest[..len];
    Ok((Tlv { tag, whole, value }, &rest[len..]))
}

/// The single element that makes up all of `bytes`.
pub(crate) fn single(bytes: &[u8]) -> Result<Tlv<'_>, String> {
    let (tlv, rest) = split(bytes)?;
    if !rest.is_empty() {
        return Err("trailing data after the element".into());
    }
    Ok(tlv)
}

/// Reads the elements inside a constructed value one by one.
pub(crate) struct Walker<'a> {
    rest: &'a [u8],
}

impl<'a> Walker<'a> {
    pub fn new(value: &'a [u8]) -> Self {
        Self { rest: value }
    }

    pub fn next(&mut self) -> Result<Tlv<'a>, String> {
        let (tlv, rest) = split(self.rest)?;
        self.rest = rest;
        Ok(tlv)
    }

    /// The next element if it has this tag; otherwise nothing is consumed.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, String> {
        if self.rest.first() == Some(&tag) {
            self.next().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The next element, which must have this tag.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, String> {
        let tlv = self.next().map_err(|e| format!("{what}: {e}"))?;
        if tlv.tag != tag {
            return Err(format!(
                "{what}: expected tag {tag:#04x}, found {:#04x}",
                tlv.tag
            ));
        }
        Ok(tlv)
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Every remaining element.
    pub fn all(mut self) -> Result<Vec<Tlv<'a>>, String> {
        let mut out = Vec::new();
        while !self.is_empty() {
            out.push(self.next()?);
        }
        Ok(out)
    }
}

/// Encodes one element.
pub(crate) fn write(tag: u8, value: &[u8]) -> Vec<u8> {
    let len = value.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let digits: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | digits.len() as u8);
        out.extend_from_slice(&digits);
    }
    out.extend_from_slice(value);
    out
}

/// Encodes a constructed element from already-encoded parts.
pub(crate) fn write_all(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    write(tag, &parts.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let value = vec![7u8; len];
            let encoded = write(OCTET_STRING, &value);
            let tlv = single(&encoded).expect("reads back");
            assert_eq!(tlv.tag, OCTET_STRING);
            assert_eq!(tlv.value.len(), len);
            assert_eq!(tlv.whole, encoded.as_slice());
        }
    }

    #[test]
    fn an_indefinite_length_is_refused_with_a_reason() {
        let err = split(&[0x30, 0x80, 0x00, 0x00]).expect_err("BER");
        assert!(err.contains("indefinite"), "{err}");
    }

    #[test]
    fn a_length_beyond_the_data_is_refused() {
        assert!(split(&[0x04, 0x05, 1, 2]).is_err());
        assert!(split(&[0x04, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }

    #[test]
    fn the_walker_reads_optional_elements_only_when_present() {
        let inner = [write(INTEGER, &[1]), write(context(0), &[])].concat();
        let mut w = Walker::new(&inner);
        assert!(w.optional(context(1)).expect("ok").is_none());
        assert_eq!(w.expect(INTEGER, "version").expect("int").value, &[1]);
        assert!(w.optional(context(0)).expect("ok").is_some());
        assert!(w.is_empty());
    }
}
