//! The one error type of the `conf` crate.
//!
//! Every error carries the position ([`Pos`]) of the element or attribute it is about, so that
//! front ends can print `FILE:LINE:COL: message`. [`std::fmt::Display`] gives the message
//! alone; [`ConfError::pos`] gives the position.

use crate::xml::Pos;

/// Something wrong with a domain definition: malformed XML, a value we cannot read, or a
/// configuration that cannot work. Messages say what was wrong and, where it helps, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    /// The input is not well-formed XML, is not text, or is beyond our size limits.
    #[error("XML error: {message}")]
    Syntax {
        /// Where the parser stopped.
        pos: Pos,
        /// What the parser found.
        message: String,
    },
    /// The document's root element is not the one expected (e.g. `<domain>`).
    #[error("XML error: expected root element <{expected}>, found <{found}>")]
    WrongRoot {
        /// Position of the root element.
        pos: Pos,
        /// The root element we need.
        expected: String,
        /// The root element we found.
        found: String,
    },
    /// An attribute value that cannot be read (libvirt: "Invalid value for attribute ...").
    #[error("XML error: Invalid value for attribute '{attr}' in element '{element}': '{value}'. Expected {expected}")]
    InvalidAttr {
        /// Position of the attribute.
        pos: Pos,
        /// The element holding the attribute.
        element: String,
        /// The attribute name.
        attr: String,
        /// The value found.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// Element text that cannot be read.
    #[error("XML error: Invalid value in element '{element}': '{value}'. Expected {expected}")]
    InvalidText {
        /// Position of the element.
        pos: Pos,
        /// The element.
        element: String,
        /// The text found.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// A required attribute is missing.
    #[error("XML error: missing attribute '{attr}' in element '{element}'{hint}")]
    MissingAttr {
        /// Position of the element.
        pos: Pos,
        /// The element.
        element: String,
        /// The missing attribute.
        attr: String,
        /// Extra advice, starting with "; " when not empty.
        hint: String,
    },
    /// A required child element is missing.
    #[error("XML error: missing element <{child}> in <{element}>{hint}")]
    MissingElement {
        /// Position of the parent element.
        pos: Pos,
        /// The parent element.
        element: String,
        /// The missing child.
        child: String,
        /// Extra advice, starting with "; " when not empty.
        hint: String,
    },
    /// A well-formed definition that cannot work (validation). libvirt's class prefix is kept.
    #[error("unsupported configuration: {message}")]
    Unsupported {
        /// Position of the offending element.
        pos: Pos,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A conflict between two devices (same socket path, MAC, PCI address, ...).
    #[error("{message}")]
    Conflict {
        /// Position of the second (offending) element.
        pos: Pos,
        /// Names both parties.
        message: String,
    },
}

impl ConfError {
    /// Where in the input the problem is (line and column, 1-based; 0 when unknown).
    pub fn pos(&self) -> Pos {
        match self {
            ConfError::Syntax { pos, .. }
            | ConfError::WrongRoot { pos, .. }
            | ConfError::InvalidAttr { pos, .. }
            | ConfError::InvalidText { pos, .. }
            | ConfError::MissingAttr { pos, .. }
            | ConfError::MissingElement { pos, .. }
            | ConfError::Unsupported { pos, .. }
            | ConfError::Conflict { pos, .. } => *pos,
        }
    }

    /// Shorthand for [`ConfError::Unsupported`].
    pub fn unsupported(pos: Pos, message: impl Into<String>) -> Self {
        ConfError::Unsupported {
            pos,
            message: message.into(),
        }
    }

    /// Shorthand for [`ConfError::Conflict`].
    pub fn conflict(pos: Pos, message: impl Into<String>) -> Self {
        ConfError::Conflict {
            pos,
            message: message.into(),
        }
    }

    /// The message prefixed with `LINE:COL: ` (or nothing when the position is unknown).
    pub fn located(&self) -> String {
        let pos = self.pos();
        if pos.is_known() {
            format!("{}:{}: {}", pos.line, pos.col, self)
        } else {
            self.to_string()
        }
    }
}
