//! Small reading/writing helpers shared by the `<interface>` sub-elements.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use crate::error::ConfError;
use crate::xml::{Attr, Element, Pos};

/// A value together with where it was read (the attribute's position, or the element's).
/// Values built by code carry [`Pos::UNKNOWN`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was read.
    pub pos: Pos,
}

impl<T> Spanned<T> {
    /// A value not read from any input.
    pub fn new(value: T) -> Self {
        Spanned {
            value,
            pos: Pos::UNKNOWN,
        }
    }

    /// A value read at `pos`.
    pub fn at(value: T, pos: Pos) -> Self {
        Spanned { value, pos }
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// The position of an attribute, falling back to its element's.
pub(crate) fn attr_pos(el: &Element, a: &Attr) -> Pos {
    if a.pos.is_known() {
        a.pos
    } else {
        el.pos
    }
}

/// Takes a string attribute with its position.
pub(crate) fn take_str(el: &mut Element, name: &str) -> Option<Spanned<String>> {
    let a = el.take_attr(name)?;
    let pos = attr_pos(el, &a);
    Some(Spanned::at(a.value, pos))
}

/// Takes a required string attribute; `hint` says how to fix its absence.
pub(crate) fn require_str(
    el: &mut Element,
    name: &str,
    hint: &str,
) -> Result<Spanned<String>, ConfError> {
    let a = el.require_attr(name, hint)?;
    let pos = attr_pos(el, &a);
    Ok(Spanned::at(a.value, pos))
}

/// Takes an attribute and maps it through `f`; `expected` describes the valid values.
pub(crate) fn take_with<T>(
    el: &mut Element,
    name: &str,
    expected: &str,
    f: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<Spanned<T>>, ConfError> {
    let Some(a) = el.take_attr(name) else {
        return Ok(None);
    };
    match f(a.value.trim()) {
        Some(v) => Ok(Some(Spanned::at(v, attr_pos(el, &a)))),
        None => Err(el.invalid_attr(&a, expected)),
    }
}

/// libvirt's wording for unsigned integer attributes.
pub(crate) const NON_NEGATIVE: &str = "non-negative integer value";

/// Takes an unsigned decimal attribute (libvirt: `virXMLPropUInt`, base 10).
pub(crate) fn take_uint<T: FromStr>(
    el: &mut Element,
    name: &str,
) -> Result<Option<Spanned<T>>, ConfError> {
    take_with(el, name, NON_NEGATIVE, |v| {
        if v.starts_with('-') || v.starts_with('+') {
            None
        } else {
            v.parse().ok()
        }
    })
}

/// Takes a `yes`/`no` attribute (libvirt: tristate bool).
pub(crate) fn take_yes_no(el: &mut Element, name: &str) -> Result<Option<bool>, ConfError> {
    Ok(take_with(el, name, "'yes' or 'no'", |v| match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    })?
    .map(|s| s.value))
}

/// Takes an `on`/`off` attribute (libvirt: tristate switch).
pub(crate) fn take_on_off(el: &mut Element, name: &str) -> Result<Option<bool>, ConfError> {
    Ok(take_with(el, name, "'on' or 'off'", |v| match v {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    })?
    .map(|s| s.value))
}

/// Takes an attribute that must be one of `choices` (exact match).
pub(crate) fn take_choice(
    el: &mut Element,
    name: &str,
    choices: &[&str],
) -> Result<Option<Spanned<String>>, ConfError> {
    let expected = one_of(choices);
    take_with(el, name, &expected, |v| {
        choices.iter().find(|c| **c == v).map(|c| c.to_string())
    })
}

/// "one of 'a', 'b', 'c'".
pub(crate) fn one_of(choices: &[&str]) -> String {
    let list: Vec<String> = choices.iter().map(|c| format!("'{c}'")).collect();
    format!("one of {}", list.join(", "))
}

/// `yes`/`no` for formatting.
pub(crate) fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `on`/`off` for formatting.
pub(crate) fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Refuses control characters (newline included) anywhere in an element's attributes and text:
/// such values end up in QEMU arguments, host interface names or helper command lines where
/// they would be misread.
pub(crate) fn refuse_control_chars(el: &Element) -> Result<(), ConfError> {
    for a in &el.attrs {
        if a.value.chars().any(char::is_control) {
            return Err(ConfError::InvalidAttr {
                pos: attr_pos(el, a),
                element: el.name.clone(),
                attr: a.name.clone(),
                value: a.value.escape_debug().to_string(),
                expected: "a value without control characters (newline, tab, ...): it would \
                           be misread where virtnet passes it on (QEMU arguments, interface \
                           names, helper programs)"
                    .into(),
            });
        }
    }
    if let Some(t) = &el.text {
        if t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
        {
            return Err(ConfError::InvalidText {
                pos: el.pos,
                element: el.name.clone(),
                value: t.escape_debug().to_string(),
                expected: "text without control characters".into(),
            });
        }
    }
    el.children.iter().try_for_each(refuse_control_chars)
}
