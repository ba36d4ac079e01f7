//! Safe XML for the SOAP wire: a bounded reader that turns a document into a small element tree
//! matched by local name, and a writer that escapes everything it is given. The reader refuses
//! what an MSSP never needs and an attacker loves: a DOCTYPE (so no DTD, no entity
//! definitions, no expansion), references to entities other than the five predefined ones,
//! documents over a size, depth, element, attribute or namespace budget, and any encoding but
//! UTF-8.

use std::fmt::Write as _;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{NamespaceError, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

/// Largest SOAP body read from an MSSP or accepted as a notification. A response carries at
/// most a CMS SignedData with a short chain, a few KiB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
const MAX_DEPTH: usize = 32;
const MAX_ELEMENTS: usize = 4096;
/// Attributes on one element, namespace declarations aside. An ETSI element has at most six.
const MAX_ATTRIBUTES: usize = 64;
/// Namespace bindings in scope at once. quick-xml refuses the one over this before storing
/// it, so a tag declaring thousands (RUSTSEC-2026-0195) costs no memory; SOAP answers use a
/// handful.
const MAX_NAMESPACES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("document over {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("document nested deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("document has more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("an element has more than {MAX_ATTRIBUTES} attributes")]
    TooManyAttributes,
    #[error("more than {MAX_NAMESPACES} namespace declarations in scope")]
    TooManyNamespaces,
    #[error("document type declarations (DTDs) are refused")]
    Doctype,
    #[error("entity reference `&{0};` is refused")]
    Entity(String),
    #[error("document is not UTF-8")]
    NotUtf8,
    #[error("no root element")]
    Empty,
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// One element: its local name and namespace, attributes by local name, child elements, and
/// its own character data (text outside child elements, concatenated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub namespace: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == local)
            .map(|(_, v)| v.as_str())
    }

    /// The first child with this local name, whatever its namespace: MSSPs disagree on
    /// qualification (notes §1), so matching by local name is the only portable rule.
    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == local)
    }

    /// Every element below this one (depth first, document order) with this local name.
    pub fn descendants_named<'a>(&'a self, local: &'a str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.name == local {
                out.push(c);
            }
            c.descendants_named(local, out);
        }
    }

    pub fn trimmed_text(&self) -> &str {
        self.text.trim()
    }
}

/// Parses a whole document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(XmlError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(false);
    reader
        .resolver_mut()
        .set_max_namespace_bindings(MAX_NAMESPACES);
    let mut version = XmlVersion::Implicit1_0;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| match e {
            quick_xml::Error::Namespace(NamespaceError::TooManyBindings(_)) => {
                XmlError::TooManyNamespaces
            }
            e => XmlError::Malformed(e.to_string()),
        })?;
        let namespace = namespace_of(&ns)?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() && stack.is_empty() => {
                return Err(XmlError::Malformed("more than one root element".into()));
            }
            Event::Start(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(element(&start, namespace, version)?);
            }
            Event::Empty(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                let el = element(&start, namespace, version)?;
                attach(&mut stack, &mut root, el);
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                attach(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                push_text(&mut stack, &root, &t.xml_content(version))?;
            }
            Event::CData(c) => {
                push_text(&mut stack, &root, &c.xml_content(version))?;
            }
            Event::GeneralRef(r) => {
                let c = resolve_reference(&r)?;
                push_text(&mut stack, &root, c.encode_utf8(&mut [0; 4]))?;
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(decl) => {
                if let Some(Ok(enc)) = decl.encoding() {
                    let enc = enc.to_ascii_lowercase();
                    if enc != "utf-8" && enc != "utf8" {
                        return Err(XmlError::NotUtf8);
                    }
                }
                version = decl
                    .xml_version()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "document ends inside an element".into(),
        ));
    }
    root.ok_or(XmlError::Empty)
}

fn namespace_of(ns: &ResolveResult<'_>) -> Result<Option<String>, XmlError> {
    match ns {
        ResolveResult::Bound(n) => Ok(Some(n.as_ref().to_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(p) => Err(XmlError::Malformed(format!(
            "undeclared namespace prefix `{}`",
            p.chars().take(40).collect::<String>()
        ))),
    }
}

fn element(
    start: &BytesStart<'_>,
    namespace: Option<String>,
    version: XmlVersion,
) -> Result<Element, XmlError> {
    let name = start.local_name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        if attributes.len() >= MAX_ATTRIBUTES {
            return Err(XmlError::TooManyAttributes);
        }
        let value = attr.normalized_value(version).map_err(|e| match e {
            quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
                _,
                name,
            )) => XmlError::Entity(name),
            other => XmlError::Malformed(other.to_string()),
        })?;
        attributes.push((key.local_name().as_ref().to_owned(), value.into_owned()));
    }
    Ok(Element {
        name,
        namespace,
        attributes,
        ..Element::default()
    })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], root: &Option<Element>, s: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => el.text.push_str(s),
        // Whitespace around the root is allowed; anything else is not a document.
        None if s.trim().is_empty() => {}
        None => {
            let place = if root.is_some() { "after" } else { "before" };
            return Err(XmlError::Malformed(format!(
                "text {place} the root element"
            )));
        }
    }
    Ok(())
}

/// The five predefined entities and character references; nothing else exists without a DTD.
fn resolve_reference(r: &BytesRef<'_>) -> Result<char, XmlError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            _ => Err(XmlError::Malformed("invalid character reference".into())),
        };
    }
    match &**r {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        other => Err(XmlError::Entity(other.chars().take(40).collect())),
    }
}

/// A minimal XML writer: elements with a literal (already prefixed) name, escaped attribute
/// values and text. Nothing is written unescaped.
#[derive(Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Self {
        Self {
            out: String::with_capacity(2048),
        }
    }

    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "</{name}>");
        self
    }

    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push_str("/>");
        self
    }

    pub fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push('>');
        self.out.push_str(&escape(text));
        self.close(name)
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        let _ = write!(self.out, "<{name}");
        for (k, v) in attrs {
            let _ = write!(self.out, " {k}=\"{}\"", escape(v));
        }
    }
}

/// Escapes for both text and double-quoted attributes, including the line breaks and tabs an
/// attribute would otherwise normalise away.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
