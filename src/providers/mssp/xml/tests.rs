//! The reader's refusals and the writer's escaping.

use super::*;

#[test]
fn elements_are_matched_by_local_name_whatever_the_prefix() {
    let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
        <e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"
            xmlns:m="http://uri.etsi.org/TS102204/v1.1.2#">
          <e:Body><X><m:Part A="1&amp;2" m:B="&#x41;">t&lt;x<![CDATA[<y>]]></m:Part></X></e:Body>
        </e:Envelope>"#;
    let root = parse(doc).expect("parses");
    assert_eq!(root.name, "Envelope");
    assert_eq!(
        root.namespace.as_deref(),
        Some("http://www.w3.org/2003/05/soap-envelope")
    );
    let part = root
        .child("Body")
        .and_then(|b| b.child("X"))
        .and_then(|x| x.child("Part"))
        .expect("part");
    assert_eq!(part.attr("A"), Some("1&2"));
    assert_eq!(part.attr("B"), Some("A"));
    assert_eq!(part.text, "t<x<y>");
    assert_eq!(
        part.namespace.as_deref(),
        Some("http://uri.etsi.org/TS102204/v1.1.2#")
    );
}

#[test]
fn doctypes_and_custom_entities_are_refused() {
    let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><a>&lol;</a>"#;
    assert_eq!(parse(bomb), Err(XmlError::Doctype));
    assert_eq!(parse(b"<a>&lol;</a>"), Err(XmlError::Entity("lol".into())));
    assert_eq!(
        parse(b"<a b=\"&xxe;\"/>"),
        Err(XmlError::Entity("xxe".into()))
    );
}

#[test]
fn oversized_deep_or_broken_documents_are_refused() {
    let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
    assert_eq!(parse(&big), Err(XmlError::TooLarge));
    let deep = "<a>".repeat(MAX_DEPTH + 1);
    assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
    for bad in [
        &b""[..],
        b"<a>",
        b"<a></b>",
        b"<a/><b/>",
        b"text",
        b"<p:a/>",
        b"<a>\xff</a>",
    ] {
        assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
    let latin1 = br#"<?xml version="1.0" encoding="ISO-8859-1"?><a/>"#;
    assert_eq!(parse(latin1), Err(XmlError::NotUtf8));
}

#[test]
fn the_writer_escapes_text_and_attributes() {
    let mut w = Writer::new();
    w.open("r", &[("a", "x\"<&\n")])
        .leaf("t", &[], "Mã <1> & 'b'")
        .empty("e", &[])
        .close("r");
    let out = w.finish();
    assert_eq!(
        out,
        "<r a=\"x&quot;&lt;&amp;&#10;\"><t>Mã &lt;1&gt; &amp; &apos;b&apos;</t><e/></r>"
    );
    let root = parse(out.as_bytes()).expect("round trip");
    assert_eq!(root.attr("a"), Some("x\"<&\n"));
    assert_eq!(
        root.child("t").map(|t| t.text.as_str()),
        Some("Mã <1> & 'b'")
    );
}
