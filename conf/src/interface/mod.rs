//! `<interface>`: the network interface of a guest, the centre of virtnet.
//!
//! PLACEHOLDER (being replaced by the full model): keeps the element as read.

use crate::address::DeviceAddress;
use crate::error::ConfError;
use crate::xml::{Element, Pos};

/// One `<interface>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Where the element starts in the input.
    pub pos: Pos,
    /// The guest address, if given or assigned.
    pub address: Option<DeviceAddress>,
    raw: Element,
}

impl Interface {
    /// Reads an `<interface>` element.
    pub fn from_element(mut el: Element) -> Result<Interface, ConfError> {
        let address = el
            .take_child("address")
            .map(DeviceAddress::from_element)
            .transpose()?;
        Ok(Interface {
            pos: el.pos,
            address,
            raw: el,
        })
    }

    /// Writes the canonical `<interface>` element.
    pub fn to_element(&self) -> Element {
        let mut el = self.raw.clone();
        if let Some(a) = &self.address {
            el.children.push(a.to_element());
        }
        el
    }

    /// Whether this NIC needs a guest PCI address (false for USB NICs such as `usb-net`).
    pub fn wants_pci_address(&self) -> bool {
        true
    }

    /// The user alias (`<alias name='ua-...'/>`), if any.
    pub fn alias(&self) -> Option<&str> {
        None
    }

    /// Whether this is `<interface type='hostdev'>` (a VF passed through with vfio-pci).
    pub fn is_hostdev(&self) -> bool {
        self.raw.get_attr("type") == Some("hostdev")
    }

    /// Fills libvirt's post-parse defaults that do not depend on the rest of the domain
    /// (e.g. the default model). Called by [`crate::domain::Domain::fill_defaults`] before
    /// guest addresses are assigned.
    pub fn fill_defaults(&mut self) {}
}
