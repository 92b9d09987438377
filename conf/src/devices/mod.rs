//! `<devices>`. PLACEHOLDER (being written).

use crate::interface::Interface;

/// All devices of a domain, grouped by kind in libvirt's canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Devices {
    /// `<interface>` elements, in input order.
    pub interfaces: Vec<Interface>,
}
