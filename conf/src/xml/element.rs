//! The tree types and the "take" API used to read typed models out of a tree.
//!
//! Readers *take* what they understand out of an [`Element`]; whatever is left at the end is
//! unknown content, kept as [`Extra`] and written back after the known content.

use std::fmt;
use std::str::FromStr;

use crate::error::ConfError;

/// A position in the input text, 1-based. `Pos::UNKNOWN` (0:0) marks synthesized content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Line, starting at 1.
    pub line: u32,
    /// Column in characters, starting at 1.
    pub col: u32,
}

impl Pos {
    /// No position: the element was made by us, not read.
    pub const UNKNOWN: Pos = Pos { line: 0, col: 0 };

    /// Whether this position points into the input.
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            write!(f, "line {}, column {}", self.line, self.col)
        } else {
            write!(f, "unknown position")
        }
    }
}

/// One attribute, its value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Attribute name (with prefix, if any).
    pub name: String,
    /// Unescaped value.
    pub value: String,
    /// Where the attribute name starts.
    pub pos: Pos,
}

/// One element: name, attributes in input order, child elements, and its text.
///
/// Text is the concatenation of the element's character data with surrounding white space
/// removed; white-space-only text is `None`. Comments and processing instructions are dropped,
/// as libvirt drops them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Element name (with prefix, if any).
    pub name: String,
    /// Attributes, in input order.
    pub attrs: Vec<Attr>,
    /// Child elements, in input order.
    pub children: Vec<Element>,
    /// Trimmed text content, if any.
    pub text: Option<String>,
    /// Where the start tag begins (`<`).
    pub pos: Pos,
}

/// Content of an element that no model claimed: written back after the known content so that
/// nothing is lost silently.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extra {
    /// Unknown attributes.
    pub attrs: Vec<Attr>,
    /// Unknown child elements.
    pub children: Vec<Element>,
    /// Text where none was expected.
    pub text: Option<String>,
}

impl Extra {
    /// Whether nothing unknown was found.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.children.is_empty() && self.text.is_none()
    }
}

impl Element {
    /// A new element with no attributes, children or text, at an unknown position.
    pub fn new(name: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
            text: None,
            pos: Pos::UNKNOWN,
        }
    }

    // ----- building (for format) -----

    /// Adds an attribute (builder style).
    pub fn attr(mut self, name: &str, value: impl ToString) -> Self {
        self.push_attr(name, value);
        self
    }

    /// Adds an attribute when the value is present (builder style).
    pub fn attr_opt<T: ToString>(mut self, name: &str, value: Option<T>) -> Self {
        if let Some(v) = value {
            self.push_attr(name, v);
        }
        self
    }

    /// Adds an attribute.
    pub fn push_attr(&mut self, name: &str, value: impl ToString) {
        self.attrs.push(Attr {
            name: name.to_string(),
            value: value.to_string(),
            pos: Pos::UNKNOWN,
        });
    }

    /// Adds a child (builder style).
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(child);
        self
    }

    /// Adds a child when present (builder style).
    pub fn child_opt(mut self, child: Option<Element>) -> Self {
        if let Some(c) = child {
            self.children.push(c);
        }
        self
    }

    /// Sets the text (builder style).
    pub fn text(mut self, text: impl ToString) -> Self {
        self.text = Some(text.to_string());
        self
    }

    /// Appends unknown content kept from the input: attributes after ours, children last.
    pub fn with_extra(mut self, extra: &Extra) -> Self {
        self.attrs.extend(extra.attrs.iter().cloned());
        self.children.extend(extra.children.iter().cloned());
        if self.text.is_none() {
            self.text.clone_from(&extra.text);
        }
        self
    }

    /// Whether the element has no attributes, children or text (libvirt omits such wrappers).
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.children.is_empty() && self.text.is_none()
    }

    // ----- looking (non-consuming) -----

    /// The value of an attribute, if present.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }

    /// The first child with this name, if any.
    pub fn get_child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    // ----- taking (for parse) -----

    /// Removes and returns an attribute.
    pub fn take_attr(&mut self, name: &str) -> Option<Attr> {
        let i = self.attrs.iter().position(|a| a.name == name)?;
        Some(self.attrs.remove(i))
    }

    /// Removes an attribute and returns its value.
    pub fn take_attr_value(&mut self, name: &str) -> Option<String> {
        self.take_attr(name).map(|a| a.value)
    }

    /// Removes a required attribute; `hint` (may be empty) tells the user how to fix its absence.
    pub fn require_attr(&mut self, name: &str, hint: &str) -> Result<Attr, ConfError> {
        self.take_attr(name).ok_or_else(|| ConfError::MissingAttr {
            pos: self.pos,
            element: self.name.clone(),
            attr: name.to_string(),
            hint: if hint.is_empty() {
                String::new()
            } else {
                format!("; {hint}")
            },
        })
    }

    /// Removes an attribute and parses it with `FromStr`; `expected` describes valid values.
    pub fn take_attr_parsed<T: FromStr>(
        &mut self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, ConfError> {
        match self.take_attr(name) {
            None => Ok(None),
            Some(a) => self.parse_attr(&a, expected).map(Some),
        }
    }

    /// Removes an attribute and maps it with `f` (returning `None` for an invalid value).
    pub fn take_attr_with<T>(
        &mut self,
        name: &str,
        expected: &str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfError> {
        match self.take_attr(name) {
            None => Ok(None),
            Some(a) => match f(&a.value) {
                Some(v) => Ok(Some(v)),
                None => Err(self.invalid_attr(&a, expected)),
            },
        }
    }

    /// Parses an attribute already taken from this element.
    pub fn parse_attr<T: FromStr>(&self, attr: &Attr, expected: &str) -> Result<T, ConfError> {
        attr.value
            .parse()
            .map_err(|_| self.invalid_attr(attr, expected))
    }

    /// The libvirt-style "Invalid value for attribute" error for an attribute of this element.
    pub fn invalid_attr(&self, attr: &Attr, expected: &str) -> ConfError {
        ConfError::InvalidAttr {
            pos: if attr.pos.is_known() {
                attr.pos
            } else {
                self.pos
            },
            element: self.name.clone(),
            attr: attr.name.clone(),
            value: attr.value.clone(),
            expected: expected.to_string(),
        }
    }

    /// Removes and returns the first child with this name.
    pub fn take_child(&mut self, name: &str) -> Option<Element> {
        let i = self.children.iter().position(|c| c.name == name)?;
        Some(self.children.remove(i))
    }

    /// Removes and returns the child with this name, for elements that may appear only once:
    /// a second one is an error naming both (libvirt would silently use the first; keeping
    /// the second as unknown content would let it take the first one's place on a re-read).
    pub fn take_one(&mut self, name: &str) -> Result<Option<Element>, ConfError> {
        let Some(first) = self.take_child(name) else {
            return Ok(None);
        };
        if let Some(second) = self.get_child(name) {
            let first_at = if first.pos.is_known() {
                format!(" (the first is on line {})", first.pos.line)
            } else {
                String::new()
            };
            return Err(ConfError::unsupported(
                if second.pos.is_known() {
                    second.pos
                } else {
                    self.pos
                },
                format!(
                    "<{name}> appears more than once in <{}>{first_at}; it may be given only \
                     once: merge the two or remove one",
                    self.name
                ),
            ));
        }
        Ok(Some(first))
    }

    /// [`Element::require_child`] for an element that may appear only once (see
    /// [`Element::take_one`]).
    pub fn require_one(&mut self, name: &str, hint: &str) -> Result<Element, ConfError> {
        match self.take_one(name)? {
            Some(c) => Ok(c),
            None => self.require_child(name, hint),
        }
    }

    /// Removes the text of a child that may appear only once (see [`Element::take_one`]) and
    /// holds only text (`<title>text</title>`): attributes or child elements in it are an
    /// error, as keeping them would leave a second, text-less copy of the element.
    pub fn take_one_text(&mut self, name: &str) -> Result<Option<(String, Pos)>, ConfError> {
        let Some(mut c) = self.take_one(name)? else {
            return Ok(None);
        };
        let at = |p: Pos| if p.is_known() { p } else { c.pos };
        if let Some(a) = c.attrs.first() {
            return Err(ConfError::unsupported(
                at(a.pos),
                format!(
                    "<{name}> holds only text, but has attribute '{}': remove it",
                    a.name
                ),
            ));
        }
        if let Some(e) = c.children.first() {
            return Err(ConfError::unsupported(
                at(e.pos),
                format!(
                    "<{name}> holds only text, but has element <{}> inside: remove it",
                    e.name
                ),
            ));
        }
        Ok(Some((c.take_text().unwrap_or_default(), c.pos)))
    }

    /// Removes a required child; `hint` (may be empty) tells the user how to fix its absence.
    pub fn require_child(&mut self, name: &str, hint: &str) -> Result<Element, ConfError> {
        self.take_child(name)
            .ok_or_else(|| ConfError::MissingElement {
                pos: self.pos,
                element: self.name.clone(),
                child: name.to_string(),
                hint: if hint.is_empty() {
                    String::new()
                } else {
                    format!("; {hint}")
                },
            })
    }

    /// Removes and returns every child with this name, in order.
    pub fn take_children(&mut self, name: &str) -> Vec<Element> {
        let (taken, kept) = std::mem::take(&mut self.children)
            .into_iter()
            .partition(|c| c.name == name);
        self.children = kept;
        taken
    }

    /// Removes and returns the text.
    pub fn take_text(&mut self) -> Option<String> {
        self.text.take()
    }

    /// Removes the text of the first child with this name (`<name>text</name>`), keeping the
    /// child's other content as unknown if it has any.
    pub fn take_child_text(&mut self, name: &str) -> Option<(String, Pos)> {
        let mut child = self.take_child(name)?;
        let text = child.take_text().unwrap_or_default();
        let pos = child.pos;
        if !child.attrs.is_empty() || !child.children.is_empty() {
            // Put it back without its text: the caller's Extra keeps the rest.
            self.children.push(child);
        }
        Some((text, pos))
    }

    /// Parses the text of this element with `FromStr`.
    pub fn parse_text<T: FromStr>(&self, text: &str, expected: &str) -> Result<T, ConfError> {
        text.trim().parse().map_err(|_| ConfError::InvalidText {
            pos: self.pos,
            element: self.name.clone(),
            value: text.to_string(),
            expected: expected.to_string(),
        })
    }

    /// What is left after the typed reader took what it knows.
    pub fn into_extra(self) -> Extra {
        Extra {
            attrs: self.attrs,
            children: self.children,
            text: self.text,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::xml::{parse_document, Limits};

    fn doc(s: &str) -> super::Element {
        parse_document(s, Limits::default()).unwrap()
    }

    #[test]
    fn take_one_refuses_a_second_child() {
        let mut el = doc("<a><b x='1'/><c/>\n<b x='2'/></a>");
        let e = el.take_one("b").unwrap_err();
        assert_eq!((e.pos().line, e.pos().col), (2, 1), "{e:?}");
        assert!(e.to_string().contains("the first is on line 1"), "{e}");
        let mut el = doc("<a><b x='1'/><c/></a>");
        assert!(el.take_one("b").unwrap().is_some());
        assert!(el.take_one("b").unwrap().is_none());
        assert!(el.require_one("b", "").is_err());
        assert!(el.require_one("c", "").is_ok());
    }

    /// Fuzzer find: `<title offset='utc'/>` was read as an empty title and its attribute
    /// kept in a second, text-less `<title>`, which a re-read refused as a repeat.
    #[test]
    fn take_one_text_refuses_attributes_and_children() {
        let mut el = doc("<a><t>x</t></a>");
        assert_eq!(el.take_one_text("t").unwrap().unwrap().0, "x");
        let mut el = doc("<a>\n <t offset='utc'/></a>");
        let e = el.take_one_text("t").unwrap_err();
        assert!(e.to_string().contains("attribute 'offset'"), "{e}");
        assert_eq!(e.pos().line, 2);
        let mut el = doc("<a><t>x<u/></t></a>");
        assert!(el
            .take_one_text("t")
            .unwrap_err()
            .to_string()
            .contains("<u>"));
    }
}
