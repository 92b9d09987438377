//! Writing an [`Element`] tree in libvirt's canonical style: two-space indentation, attributes
//! in single quotes, `<empty/>` elements, text elements on one line.

use super::element::Element;

/// Escapes text or an attribute value as libvirt does (`<`, `>`, `&`, `'`, `"`), and a
/// carriage return as `&#13;` (a reader turns a raw one into a line feed).
pub fn escape(s: &str) -> String {
    escape_with(s, false)
}

/// [`escape`] for an attribute value: line feeds and tabs too are written as character
/// references, since a reader turns raw ones into spaces (attribute value normalisation).
fn escape_attr(s: &str) -> String {
    escape_with(s, true)
}

fn escape_with(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes one element and its subtree at the given indentation (in levels of two spaces).
pub fn write_element(out: &mut String, el: &Element, level: usize) {
    let indent = "  ".repeat(level);
    out.push_str(&indent);
    out.push('<');
    out.push_str(&el.name);
    for a in &el.attrs {
        out.push(' ');
        out.push_str(&a.name);
        out.push_str("='");
        out.push_str(&escape_attr(&a.value));
        out.push('\'');
    }
    match (&el.text, el.children.is_empty()) {
        (None, true) => out.push_str("/>\n"),
        (Some(t), true) => {
            out.push('>');
            out.push_str(&escape(t));
            out.push_str("</");
            out.push_str(&el.name);
            out.push_str(">\n");
        }
        (text, false) => {
            out.push('>');
            if let Some(t) = text {
                out.push_str(&escape(t));
            }
            out.push('\n');
            for c in &el.children {
                write_element(out, c, level + 1);
            }
            out.push_str(&indent);
            out.push_str("</");
            out.push_str(&el.name);
            out.push_str(">\n");
        }
    }
}

/// Writes a whole document (no XML declaration, trailing newline), as `virsh dumpxml` does.
pub fn write_document(root: &Element) -> String {
    let mut out = String::new();
    write_element(&mut out, root, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, Limits};

    #[test]
    fn canonical_style() {
        let el = Element::new("interface")
            .attr("type", "bridge")
            .child(Element::new("mac").attr("address", "52:54:00:00:00:01"))
            .child(Element::new("alias").attr("name", "a'b<"))
            .child(Element::new("description").text("x & y"));
        assert_eq!(
            write_document(&el),
            "<interface type='bridge'>\n  <mac address='52:54:00:00:00:01'/>\n  <alias name='a&apos;b&lt;'/>\n  <description>x &amp; y</description>\n</interface>\n"
        );
    }

    #[test]
    fn round_trip_keeps_values() {
        let src = "<a k=\"v&quot;'\"><b>t&lt;</b></a>";
        let doc = parse_document(src, Limits::default()).unwrap();
        let again = parse_document(&write_document(&doc), Limits::default()).unwrap();
        assert_eq!(doc.attrs[0].value, again.attrs[0].value);
        assert_eq!(doc.children[0].text, again.children[0].text);
    }

    /// White space given as character references survives a round trip: a raw line feed or
    /// tab in an attribute value would be read back as a space.
    #[test]
    fn whitespace_references_round_trip() {
        let src = "<a k='x&#10;y&#9;z&#13;'><b>l1&#13;\nl2</b></a>";
        let doc = parse_document(src, Limits::default()).unwrap();
        assert_eq!(doc.attrs[0].value, "x\ny\tz\r");
        let out = write_document(&doc);
        assert!(out.contains("k='x&#10;y&#9;z&#13;'"), "{out}");
        let again = parse_document(&out, Limits::default()).unwrap();
        assert_eq!(doc.attrs[0].value, again.attrs[0].value);
        assert_eq!(doc.children[0].text, again.children[0].text);
        assert_eq!(write_document(&again), out);
    }
}
