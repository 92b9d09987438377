//! Devices kept as written and typed minimally (video, sound, hostdev, graphics, watchdog, rng,
//! filesystem, ...): enough to order them, find their model, and give them guest addresses.

use crate::address::{DeviceAddress, PciAddress};
use crate::domain::util::unpositioned;
use crate::error::ConfError;
use crate::xml::{Element, Pos};

/// A device element kept as written, except its `<address>`, which is read (so that PCI
/// assignment sees and avoids it) and written back canonically in the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericDevice {
    /// Where the element starts.
    pub pos: Pos,
    /// The element without its `<address>` child.
    pub element: Element,
    /// The guest address.
    pub address: Option<DeviceAddress>,
    address_at: Option<usize>,
}

impl GenericDevice {
    /// Reads a device element.
    pub fn from_element(mut el: Element) -> Result<GenericDevice, ConfError> {
        let pos = el.pos;
        let address_at = el.children.iter().position(|c| c.name == "address");
        let address = match address_at {
            Some(i) => Some(DeviceAddress::from_element(el.children.remove(i))?),
            None => None,
        };
        if el.name == "hostdev" {
            canonical_hostdev_source(&mut el)?;
        }
        Ok(GenericDevice {
            pos,
            element: unpositioned(&el),
            address,
            address_at,
        })
    }

    /// A new device made by the defaults (e.g. the implicit iTCO watchdog).
    pub fn new(element: Element) -> GenericDevice {
        GenericDevice {
            pos: Pos::UNKNOWN,
            element,
            address: None,
            address_at: None,
        }
    }

    /// The element name (`video`, `sound`, `hostdev`, ...).
    pub fn kind(&self) -> &str {
        &self.element.name
    }

    /// An attribute of the device element.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.element.get_attr(name)
    }

    /// An attribute of the first child `child`.
    pub fn child_attr(&self, child: &str, name: &str) -> Option<&str> {
        self.element.get_child(child).and_then(|c| c.get_attr(name))
    }

    /// The device model as libvirt reads it for this kind of device (lower case).
    pub fn model(&self) -> Option<String> {
        let m = match self.kind() {
            "video" => self.child_attr("model", "type"),
            "filesystem" => self.attr("model"),
            "hostdev" => self.attr("type"),
            _ => self.attr("model"),
        };
        m.map(str::to_ascii_lowercase)
    }

    /// `<alias name>`.
    pub fn alias(&self) -> Option<&str> {
        self.child_attr("alias", "name")
    }

    /// `<boot order>`.
    pub fn boot_order(&self) -> Option<u32> {
        self.child_attr("boot", "order")
            .and_then(|o| o.parse().ok())
    }

    /// The PCI address, if any.
    pub fn pci(&self) -> Option<PciAddress> {
        self.address.as_ref().and_then(DeviceAddress::pci)
    }

    /// Writes the element with its address back in place.
    pub fn to_element(&self) -> Element {
        let mut el = self.element.clone();
        if let Some(a) = &self.address {
            let at = self
                .address_at
                .unwrap_or(el.children.len())
                .min(el.children.len());
            el.children.insert(at, a.to_element());
        }
        el
    }
}

/// libvirt writes a PCI hostdev's `<source><address>` without `type` and in hex.
fn canonical_hostdev_source(el: &mut Element) -> Result<(), ConfError> {
    if el.get_attr("type") != Some("pci") {
        return Ok(());
    }
    if let Some(src) = el.children.iter_mut().find(|c| c.name == "source") {
        if let Some(i) = src.children.iter().position(|c| c.name == "address") {
            let a = src.children.remove(i);
            let (addr, extra) = PciAddress::from_element(a)?;
            src.children
                .insert(i, addr.put_into(Element::new("address")).with_extra(&extra));
        }
    }
    Ok(())
}

/// libvirt's order of device kinds inside `<devices>`; `interface` and the typed kinds are
/// included so that every kind has a rank.
pub const DEVICE_ORDER: &[&str] = &[
    "emulator",
    "disk",
    "controller",
    "lease",
    "filesystem",
    "interface",
    "smartcard",
    "serial",
    "parallel",
    "console",
    "channel",
    "input",
    "tpm",
    "graphics",
    "sound",
    "audio",
    "video",
    "hostdev",
    "redirdev",
    "redirfilter",
    "hub",
    "watchdog",
    "memballoon",
    "rng",
    "nvram",
    "panic",
    "shmem",
    "memory",
    "iommu",
    "vsock",
    "crypto",
    "pstore",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn dev(s: &str) -> GenericDevice {
        GenericDevice::from_element(parse_document(s, Limits::default()).unwrap()).unwrap()
    }

    #[test]
    fn address_is_canonical_and_in_place() {
        let d =
            dev("<video><model type='VGA'/><address type='pci' slot='2'/><driver x='1'/></video>");
        assert_eq!(d.model().as_deref(), Some("vga"));
        assert_eq!(d.pci(), Some(PciAddress::slot(2)));
        assert_eq!(
            write_document(&d.to_element()),
            "<video>\n  <model type='VGA'/>\n  <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>\n  <driver x='1'/>\n</video>\n"
        );
    }

    #[test]
    fn new_address_goes_last_and_hostdev_source_is_canonical() {
        let mut d = dev("<hostdev mode='subsystem' type='pci'><source><address type='pci' bus='3' slot='7' function='1'/></source></hostdev>");
        d.address = Some(DeviceAddress::from_pci(PciAddress::slot(5)));
        assert_eq!(
            write_document(&d.to_element()),
            "<hostdev mode='subsystem' type='pci'>\n  <source>\n    <address domain='0x0000' bus='0x03' slot='0x07' function='0x1'/>\n  </source>\n  <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>\n</hostdev>\n"
        );
        let bad = GenericDevice::from_element(
            parse_document(
                "<sound><address type='pci' slot='99'/></sound>",
                Limits::default(),
            )
            .unwrap(),
        );
        assert!(bad.is_err());
    }
}
