//! SOAP 1.2 for the mock MSSP: a safe, bounded XML reader (quick-xml) that turns a request
//! body into a small element tree — refusing DTDs and any entity other than the five XML
//! predefined ones, and limiting depth, element count, attributes and namespace declarations
//! in scope — then unwraps the
//! envelope (version, `mustUnderstand` headers, Body → RPC wrapper → part element); a refusal
//! is a [`Fault`]. Elements are matched by local name; the wrapper's
//! namespace and whether the part was namespace-qualified are kept so the answer can mirror
//! the caller's style.

use quick_xml::events::Event;
use quick_xml::name::{NamespaceError, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

pub use super::fault::{Fault, FaultCode};

pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

const MAX_DEPTH: usize = 32;
const MAX_ELEMENTS: usize = 4_096;
const MAX_ATTRIBUTES: usize = 64;
/// quick-xml refuses the binding over this before storing it (RUSTSEC-2026-0195).
const MAX_NAMESPACES: usize = 64;

/// One XML element: namespace URI, local name, attributes by local name, text and children.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub ns: Option<String>,
    pub local: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.local == local)
    }

    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(name, _)| name == local)
            .map(|(_, v)| v.as_str())
    }

    /// The element's text with surrounding whitespace removed.
    pub fn value(&self) -> &str {
        self.text.trim()
    }
}

/// Why a body is not acceptable XML.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("DTDs (<!DOCTYPE>) are not allowed")]
    Dtd,
    #[error("entity &{0}; is not allowed (only the five predefined XML entities)")]
    Entity(String),
    #[error("namespace prefix {0:?} is not declared")]
    UnboundPrefix(String),
    #[error("the document nests deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("the document has more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("an element has more than {MAX_ATTRIBUTES} attributes")]
    TooManyAttributes,
    #[error("more than {MAX_NAMESPACES} namespace declarations in scope")]
    TooManyNamespaces,
    #[error("the document has no root element")]
    Empty,
    #[error("malformed XML: {0}")]
    Syntax(String),
}

/// Parses `bytes` into an element tree.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    reader
        .resolver_mut()
        .set_max_namespace_bindings(MAX_NAMESPACES);
    let syntax = |e: quick_xml::Error| match e {
        quick_xml::Error::Namespace(NamespaceError::TooManyBindings(_)) => {
            XmlError::TooManyNamespaces
        }
        e => XmlError::Syntax(e.to_string()),
    };
    let mut version = XmlVersion::Implicit1_0;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let event = reader.read_event().map_err(syntax)?;
        match event {
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Start(ref start) | Event::Empty(ref start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let element = open(&reader, start, version)?;
                if matches!(event, Event::Start(_)) {
                    stack.push(element);
                } else {
                    attach(&mut stack, &mut root, element)?;
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError::Syntax("unexpected end tag".into()))?;
                attach(&mut stack, &mut root, element)?;
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml_content(version));
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c.xml_content(version));
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(syntax)?
                } else {
                    match &*r {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        other => return Err(XmlError::Entity(other.chars().take(32).collect())),
                    }
                };
                if let (Some(top), Some(c)) = (stack.last_mut(), resolved) {
                    top.text.push(c);
                }
            }
            Event::Decl(decl) => version = decl.xml_version().map_err(syntax)?,
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax("unclosed element".into()));
    }
    root.ok_or(XmlError::Empty)
}

fn open(
    reader: &NsReader<&[u8]>,
    start: &quick_xml::events::BytesStart<'_>,
    version: XmlVersion,
) -> Result<Element, XmlError> {
    let (ns, local) = reader.resolver().resolve_element(start.name());
    let ns = match ns {
        ResolveResult::Bound(ns) => Some(ns.as_ref().to_owned()),
        ResolveResult::Unbound => None,
        ResolveResult::Unknown(p) => {
            return Err(XmlError::UnboundPrefix(p.chars().take(32).collect()))
        }
    };
    let mut element = Element {
        ns,
        local: local.as_ref().to_owned(),
        ..Element::default()
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError::Syntax(e.to_string()))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        if element.attrs.len() >= MAX_ATTRIBUTES {
            return Err(XmlError::TooManyAttributes);
        }
        let value = attr.normalized_value(version).map_err(|e| match e {
            quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(_, n)) => {
                XmlError::Entity(n.chars().take(32).collect())
            }
            other => XmlError::Syntax(other.to_string()),
        })?;
        let local = attr.key.local_name();
        element
            .attrs
            .push((local.as_ref().to_owned(), value.into_owned()));
    }
    Ok(element)
}

fn attach(
    stack: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(XmlError::Syntax("more than one root element".into())),
    }
    Ok(())
}

/// A request unwrapped from its envelope.
#[derive(Debug)]
pub struct Envelope {
    /// The operation wrapper (`MSS_Signature`, …); `None` when the part sat in the Body.
    pub wrapper: Option<Element>,
    /// The part element (`MSS_SignatureReq`, …).
    pub part: Element,
}

impl Envelope {
    /// The namespace the caller put the wrapper in, echoed on the response wrapper.
    pub fn wrapper_ns(&self) -> Option<&str> {
        self.wrapper.as_ref().and_then(|w| w.ns.as_deref())
    }

    /// Whether the part was namespace-qualified (ETSI style) or not (VN style).
    pub fn part_qualified(&self) -> bool {
        self.part.ns.is_some()
    }
}

/// Checks the envelope and finds the operation.
pub fn unwrap(root: Element) -> Result<Envelope, Fault> {
    if root.local != "Envelope" || root.ns.as_deref() != Some(SOAP12_NS) {
        let why = if root.ns.as_deref() == Some(SOAP11_NS) {
            "SOAP 1.1 envelopes are not supported; use SOAP 1.2"
        } else {
            "the document is not a SOAP 1.2 envelope"
        };
        return Err(Fault::new(FaultCode::VersionMismatch, None, why));
    }
    if let Some(header) = root.child("Header") {
        for block in &header.children {
            if matches!(block.attr("mustUnderstand"), Some("true" | "1")) {
                return Err(Fault::new(
                    FaultCode::MustUnderstand,
                    None,
                    format!("header block {} is not understood", block.local),
                ));
            }
        }
    }
    let mut root = root;
    let body_at = root
        .children
        .iter()
        .position(|c| c.local == "Body" && c.ns.as_deref() == Some(SOAP12_NS))
        .ok_or_else(|| Fault::wrong_param("the envelope has no Body"))?;
    let mut body = root.children.swap_remove(body_at);
    if body.children.is_empty() {
        return Err(Fault::missing_param("the Body is empty"));
    }
    let mut first = body.children.swap_remove(0);
    if first.local.ends_with("Req") {
        return Ok(Envelope {
            wrapper: None,
            part: first,
        });
    }
    if first.children.is_empty() {
        return Err(Fault::missing_param(format!(
            "{} carries no request element",
            first.local
        )));
    }
    let part = first.children.remove(0);
    Ok(Envelope {
        wrapper: Some(first),
        part,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &str) -> String {
        format!(
            "<env:Envelope xmlns:env=\"{SOAP12_NS}\"><env:Body>{body}</env:Body></env:Envelope>"
        )
    }

    #[test]
    fn a_wrapped_part_is_found_by_local_name_with_its_namespaces() -> Result<(), XmlError> {
        let xml = envelope(
            "<tns:MSS_Signature xmlns:tns=\"urn:w\"><MSS_SignatureReq MajorVersion=\"1\">\
             <mss:AP_Info xmlns:mss=\"http://uri.etsi.org/TS102204/v1.1.2#\" AP_ID=\"a&amp;b\"/>\
             </MSS_SignatureReq></tns:MSS_Signature>",
        );
        let env = unwrap(parse(xml.as_bytes())?).map_err(|f| XmlError::Syntax(f.detail))?;
        assert_eq!(env.wrapper_ns(), Some("urn:w"));
        assert!(!env.part_qualified());
        assert_eq!(env.part.local, "MSS_SignatureReq");
        let ap = env.part.child("AP_Info").expect("AP_Info");
        assert_eq!(ap.ns.as_deref(), Some(crate::mssp::wire::MSS_NS));
        assert_eq!(ap.attr("AP_ID"), Some("a&b"));
        Ok(())
    }

    #[test]
    fn dtds_and_custom_entities_are_refused() {
        let dtd = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]><x>&e;</x>";
        assert!(matches!(parse(dtd.as_bytes()), Err(XmlError::Dtd)));
        assert!(matches!(parse(b"<x>&e;</x>"), Err(XmlError::Entity(_))));
        assert!(matches!(parse(b"<x a=\"&e;\"/>"), Err(XmlError::Entity(_))));
        let ok = parse(b"<x>&lt;&#233;&#x41;</x>").expect("predefined entities");
        assert_eq!(ok.text, "<\u{e9}A");
    }

    #[test]
    fn deep_wide_or_broken_documents_are_refused() {
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert!(matches!(parse(deep.as_bytes()), Err(XmlError::TooDeep)));
        let wide = format!("<a>{}</a>", "<b/>".repeat(5000));
        assert!(matches!(
            parse(wide.as_bytes()),
            Err(XmlError::TooManyElements)
        ));
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<p:a/>").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn soap_11_and_must_understand_headers_fault() -> Result<(), XmlError> {
        let v11 = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>";
        let fault = unwrap(parse(v11.as_bytes())?).expect_err("SOAP 1.1");
        assert_eq!(fault.code, FaultCode::VersionMismatch);
        let mu = format!(
            "<env:Envelope xmlns:env=\"{SOAP12_NS}\"><env:Header><h:x xmlns:h=\"urn:h\" \
             env:mustUnderstand=\"true\"/></env:Header><env:Body><x/></env:Body></env:Envelope>"
        );
        let fault = unwrap(parse(mu.as_bytes())?).expect_err("mustUnderstand");
        assert_eq!(fault.code, FaultCode::MustUnderstand);
        Ok(())
    }
}
