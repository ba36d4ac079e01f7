//! Reading X.500 names by attribute OID: the OIDs kyso cares about, the string types CAs use for
//! attribute values, and an RFC 4514-style rendering for names that must be shown whole (an
//! issuer without a CN, error messages). Nothing here ever parses a display string back.

use der::asn1::ObjectIdentifier;
use der::{Any, Tag, Tagged};
use x509_cert::name::Name;

pub(crate) const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
pub(crate) const COUNTRY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
pub(crate) const LOCALITY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.7");
pub(crate) const PROVINCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.8");
pub(crate) const ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
pub(crate) const ORGANIZATIONAL_UNIT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
pub(crate) const TITLE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.12");
pub(crate) const TELEPHONE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.20");
pub(crate) const EMAIL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");
pub(crate) const UID: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.9.2342.19200300.100.1.1");

/// Short names for rendering only; lookups always go by OID.
const SHORT_NAMES: &[(ObjectIdentifier, &str)] = &[
    (CN, "CN"),
    (COUNTRY, "C"),
    (LOCALITY, "L"),
    (PROVINCE, "ST"),
    (ORGANIZATION, "O"),
    (ORGANIZATIONAL_UNIT, "OU"),
    (TITLE, "T"),
    (TELEPHONE, "telephoneNumber"),
    (EMAIL, "E"),
    (UID, "UID"),
];

/// Decodes an attribute value in any of the string types CAs actually use. Vietnamese CAs mostly
/// emit UTF8String, but older Windows-issued certificates carry BMPString and some toolkits
/// still pick PrintableString or IA5String for ASCII-only values.
pub(crate) fn decode_string(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String => std::str::from_utf8(bytes).ok().map(str::to_owned),
        Tag::PrintableString | Tag::Ia5String | Tag::VisibleString | Tag::NumericString => {
            std::str::from_utf8(bytes)
                .ok()
                .filter(|s| s.is_ascii())
                .map(str::to_owned)
        }
        Tag::BmpString => {
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // T.61 is in practice written as Latin-1 by every CA that still uses it.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

/// Every decodable value of one attribute, in certificate order.
pub(crate) fn values(name: &Name, oid: ObjectIdentifier) -> impl Iterator<Item = String> + '_ {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(move |atv| atv.oid == oid)
        .filter_map(|atv| decode_string(&atv.value))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

pub(crate) fn first(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    values(name, oid).next()
}

/// RFC 4514 order (most specific first, e.g. `CN=Viettel-CA, O=Viettel Group, C=VN`), which is
/// how the portal and the CAs' own documents print issuers.
pub(crate) fn display(name: &Name) -> String {
    name.0
        .iter()
        .rev()
        .map(|rdn| {
            rdn.0
                .iter()
                .map(|atv| {
                    let key = SHORT_NAMES
                        .iter()
                        .find(|(oid, _)| *oid == atv.oid)
                        .map_or_else(|| atv.oid.to_string(), |(_, short)| (*short).to_owned());
                    let value = decode_string(&atv.value)
                        .map_or_else(|| format!("#{}", hex::encode(atv.value.value())), escape);
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn escape(value: String) -> String {
    if !value.contains([',', '+', '"', '\\', '<', '>', ';', '=']) {
        return value;
    }
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(tag: Tag, bytes: &[u8]) -> Any {
        Any::new(tag, bytes.to_vec()).expect("valid test value")
    }

    #[test]
    fn every_string_type_cas_use_is_decoded() {
        let thuy = "Trần Thị Thanh Thủy";
        let bmp: Vec<u8> = thuy.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(
            decode_string(&any(Tag::Utf8String, thuy.as_bytes())).as_deref(),
            Some(thuy)
        );
        assert_eq!(
            decode_string(&any(Tag::BmpString, &bmp)).as_deref(),
            Some(thuy)
        );
        assert_eq!(
            decode_string(&any(Tag::PrintableString, b"VN")).as_deref(),
            Some("VN")
        );
        assert_eq!(
            decode_string(&any(Tag::Ia5String, b"ke.toan@example.vn")).as_deref(),
            Some("ke.toan@example.vn")
        );
        assert_eq!(
            decode_string(&any(Tag::TeletexString, b"H\xe0 N")).as_deref(),
            Some("Hà N")
        );
    }

    #[test]
    fn malformed_strings_are_not_guessed_at() {
        assert_eq!(
            decode_string(&any(Tag::BmpString, &[0x00, 0x41, 0x00])),
            None
        );
        assert_eq!(decode_string(&any(Tag::Utf8String, &[0xff, 0xfe])), None);
        assert_eq!(
            decode_string(&any(Tag::PrintableString, "Hà".as_bytes())),
            None
        );
        assert_eq!(decode_string(&any(Tag::OctetString, b"MST:1")), None);
    }

    #[test]
    fn names_render_most_specific_first_with_escaping() {
        let name: Name = "CN=Viettel-CA,O=Viettel\\, Group,C=VN"
            .parse()
            .expect("valid test name");
        assert_eq!(display(&name), "CN=Viettel-CA, O=Viettel\\, Group, C=VN");
        assert_eq!(
            first(&name, ORGANIZATION).as_deref(),
            Some("Viettel, Group")
        );
    }
}
