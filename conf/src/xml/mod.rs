//! A small positioned XML tree: read with quick-xml, written in libvirt's canonical style.
//!
//! We read into a tree rather than straight into serde types because every element and
//! attribute then keeps its line and column for error messages, and because unknown content
//! can be kept ([`Extra`]) and written back instead of being dropped silently.

mod element;
mod read;
mod write;

pub use element::{Attr, Element, Extra, Pos};
pub use read::{parse_document, Limits};
pub use write::{escape, write_document, write_element};
