//! Reading text into a positioned [`Element`] tree with quick-xml.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::element::{Attr, Element, Pos};
use crate::error::ConfError;

/// Bounds on what we read, so that a hostile or broken file cannot exhaust memory or stack.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest input in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most elements in one document.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 << 20,
            max_depth: 64,
            max_elements: 100_000,
        }
    }
}

/// Maps byte offsets to line and column.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Pos {
            line: line as u32,
            col: col as u32,
        }
    }
}

/// Reads a whole document and returns its root element.
///
/// Refuses, with a positioned [`ConfError::Syntax`]: binary input (NUL bytes), input over the
/// size limit, malformed or truncated XML, more than one root, and nesting beyond the limit.
pub fn parse_document(text: &str, limits: Limits) -> Result<Element, ConfError> {
    let index = LineIndex::new(text);
    if text.len() > limits.max_bytes {
        return Err(ConfError::Syntax {
            pos: Pos { line: 1, col: 1 },
            message: format!(
                "input is {} bytes, more than the {} bytes a domain definition may have",
                text.len(),
                limits.max_bytes
            ),
        });
    }
    if let Some(nul) = text.find('\0') {
        return Err(ConfError::Syntax {
            pos: index.pos(nul),
            message: "input contains a NUL byte: this is binary data, not XML".into(),
        });
    }

    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;

    loop {
        let start = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| ConfError::Syntax {
            pos: index.pos(reader.error_position() as usize),
            message: e.to_string(),
        })?;
        let syntax = |offset: usize, message: String| ConfError::Syntax {
            pos: index.pos(offset),
            message,
        };
        match event {
            Event::Start(ref tag) | Event::Empty(ref tag) => {
                count += 1;
                if count > limits.max_elements {
                    return Err(syntax(
                        start,
                        format!("more than {} elements", limits.max_elements),
                    ));
                }
                if stack.len() >= limits.max_depth {
                    return Err(syntax(
                        start,
                        format!("elements nested deeper than {}", limits.max_depth),
                    ));
                }
                if stack.is_empty() && root.is_some() {
                    return Err(syntax(
                        start,
                        "content after the root element: a document has one root".into(),
                    ));
                }
                let el = read_start(tag, text, start, &index)?;
                if matches!(event, Event::Start(_)) {
                    stack.push(el);
                } else {
                    attach(&mut stack, &mut root, el);
                }
            }
            Event::End(_) => {
                let mut el = stack
                    .pop()
                    .ok_or_else(|| syntax(start, "unexpected end tag".into()))?;
                if let Some(t) = el.text.take() {
                    let trimmed = t.trim();
                    if !trimmed.is_empty() {
                        el.text = Some(trimmed.to_string());
                    }
                }
                attach(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let s: &str = &t;
                push_text(&mut stack, s, start, &index)?;
            }
            Event::CData(c) => {
                let s: &str = &c;
                push_text(&mut stack, s, start, &index)?;
            }
            Event::GeneralRef(r) => {
                let s = if let Some(ch) = r
                    .resolve_char_ref()
                    .map_err(|e| syntax(start, e.to_string()))?
                {
                    ch.to_string()
                } else {
                    let name: &str = &r;
                    quick_xml::escape::resolve_predefined_entity(name)
                        .ok_or_else(|| syntax(start, format!("unknown entity '&{name};'")))?
                        .to_string()
                };
                push_text(&mut stack, &s, start, &index)?;
            }
            Event::Eof => break,
            Event::DocType(_) => {
                return Err(syntax(
                    start,
                    "DOCTYPE declarations are not accepted in domain XML".into(),
                ))
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(ConfError::Syntax {
            pos: index.pos(text.len()),
            message: format!(
                "unexpected end of input: element <{}> opened at {} is not closed",
                open.name, open.pos
            ),
        });
    }
    root.ok_or_else(|| ConfError::Syntax {
        pos: Pos { line: 1, col: 1 },
        message: "no XML element found: the input is empty or only comments".into(),
    })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn push_text(
    stack: &mut [Element],
    s: &str,
    offset: usize,
    index: &LineIndex<'_>,
) -> Result<(), ConfError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.get_or_insert_with(String::new).push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(ConfError::Syntax {
            pos: index.pos(offset),
            message: "text outside the root element".into(),
        }),
    }
}

fn read_start(
    tag: &BytesStart<'_>,
    text: &str,
    start: usize,
    index: &LineIndex<'_>,
) -> Result<Element, ConfError> {
    let name = tag.name().as_ref().to_string();
    if !is_xml_name(&name) {
        return Err(ConfError::Syntax {
            pos: index.pos(start),
            message: format!("'{name}' is not a valid element name"),
        });
    }
    let mut el = Element::new(name);
    el.pos = index.pos(start);
    // The raw tag text, to find each attribute's offset.
    let raw_end = text[start..].find('>').map_or(text.len(), |i| start + i);
    let raw = &text[start..raw_end];
    for attr in tag.attributes().with_checks(true) {
        let attr = attr.map_err(|e| ConfError::Syntax {
            pos: el.pos,
            message: format!("in element <{}>: {e}", el.name),
        })?;
        let aname = attr.key.as_ref().to_string();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| ConfError::Syntax {
                pos: el.pos,
                message: format!("in attribute '{aname}' of element <{}>: {e}", el.name),
            })?
            .into_owned();
        let pos = find_attr(raw, &aname).map_or(el.pos, |off| index.pos(start + off));
        if !is_xml_name(&aname) {
            return Err(ConfError::Syntax {
                pos,
                message: format!(
                    "'{aname}' is not a valid attribute name (in element <{}>)",
                    el.name
                ),
            });
        }
        el.attrs.push(Attr {
            name: aname,
            value,
            pos,
        });
    }
    Ok(el)
}

/// Whether `s` is an XML name (a letter, '_' or ':', then also digits, '-' and '.'; letters
/// beyond ASCII count). quick-xml does not check names; without this, `< />` was read as an
/// element named "" and written back as `</>`, which no reader accepts.
fn is_xml_name(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let start = |c: char| c.is_alphabetic() || c == '_' || c == ':';
    start(first)
        && chars.all(|c| start(c) || c.is_alphanumeric() || matches!(c, '-' | '.' | '\u{b7}'))
}

/// Offset of ` name=` (any white space before, optional spaces before '=') in a raw start tag.
fn find_attr(raw: &str, name: &str) -> Option<usize> {
    let bytes = raw.as_bytes();
    let mut from = 0;
    while let Some(i) = raw[from..].find(name) {
        let at = from + i;
        let before_ok = at > 0 && bytes[at - 1].is_ascii_whitespace();
        let after = raw[at + name.len()..].trim_start();
        if before_ok && after.starts_with('=') {
            return Some(at);
        }
        from = at + name.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Element, ConfError> {
        parse_document(s, Limits::default())
    }

    #[test]
    fn positions_of_elements_and_attributes() {
        let doc = parse("<a>\n  <b x='1'\n     y=\"2\"/>\n</a>").unwrap();
        assert_eq!(doc.pos, Pos { line: 1, col: 1 });
        let b = &doc.children[0];
        assert_eq!(b.pos, Pos { line: 2, col: 3 });
        assert_eq!(b.attrs[0].pos, Pos { line: 2, col: 6 });
        assert_eq!(b.attrs[1].pos, Pos { line: 3, col: 6 });
        assert_eq!(b.attrs[1].value, "2");
    }

    #[test]
    fn text_is_trimmed_and_unescaped() {
        let doc = parse("<a> <n> x &amp; &#65;&lt; </n><m>\n</m></a>").unwrap();
        assert_eq!(doc.children[0].text.as_deref(), Some("x & A<"));
        assert_eq!(doc.children[1].text, None);
        assert_eq!(doc.text, None);
    }

    #[test]
    fn malformed_inputs_are_errors_with_positions() {
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a x='1' x='2'/>",
            "<a/><b/>",
            "text",
            "<a>&bogus;</a>",
            "<!DOCTYPE a><a/>",
            "<a>\0</a>",
            "<a x=1/>",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(matches!(err, ConfError::Syntax { .. }), "{bad:?}: {err:?}");
        }
        let err = parse("<a>\n  <b>\n</a>").unwrap_err();
        assert_eq!(err.pos().line, 3, "{err}");
    }

    /// Fuzzer find: `< />` was read as an element named "" and written as `</>`, which our
    /// own reader then refused. Element and attribute names must be XML names.
    #[test]
    fn element_and_attribute_names_are_checked() {
        for (bad, col) in [
            ("<a>\n< /></a>", 1),
            ("<a>\n<1b/></a>", 1),
            ("<a>\n<b na%e='x'/></a>", 4),
            ("<a>\n<b -x='1'/></a>", 4),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains("is not a valid"), "{bad:?}: {e}");
            assert_eq!((e.pos().line, e.pos().col), (2, col), "{bad:?}: {e:?}");
        }
        let ok = parse("<a xmlns:qemu='u'><qemu:commandline q.x-1='2'/><é_b/></a>").unwrap();
        assert_eq!(ok.children.len(), 2);
    }

    #[test]
    fn depth_and_size_limits() {
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep)
            .unwrap_err()
            .to_string()
            .contains("nested deeper"));
        let small = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert!(parse_document("<aaaaaaaaaaaa/>", small).is_err());
    }
}
