//! The parts every device shares (libvirt's "device info"): boot order, alias, guest address.

use crate::address::DeviceAddress;
use crate::domain::util::{take_u32, unpositioned};
use crate::error::ConfError;
use crate::xml::Element;

/// `<boot order>`, `<acpi index>`, `<alias name>`, `<master>`, `<rom>` and `<address>` of a device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DevInfo {
    /// `<boot order='N'/>`.
    pub boot_order: Option<u32>,
    /// Other attributes of `<boot>` (e.g. `loadparm`), as written.
    pub boot_extra: Vec<crate::xml::Attr>,
    /// `<acpi index>` kept as written.
    pub acpi: Option<Element>,
    /// `<alias name>`.
    pub alias: Option<String>,
    /// `<master startport>` (USB companion controllers) kept as written.
    pub master: Option<Element>,
    /// `<rom>` kept as written.
    pub rom: Option<Element>,
    /// The guest address.
    pub address: Option<DeviceAddress>,
}

impl DevInfo {
    /// Takes the device-info children out of a device element.
    pub fn take_from(el: &mut Element) -> Result<DevInfo, ConfError> {
        let mut info = DevInfo::default();
        if let Some(mut b) = el.take_one("boot")? {
            info.boot_order = take_u32(&mut b, "order")?;
            if info.boot_order.is_none() {
                return Err(ConfError::MissingAttr {
                    pos: b.pos,
                    element: "boot".into(),
                    attr: "order".into(),
                    hint: "; inside a device use <boot order='N'/> (N >= 1)".into(),
                });
            }
            if info.boot_order == Some(0) {
                return Err(ConfError::InvalidAttr {
                    pos: b.pos,
                    element: "boot".into(),
                    attr: "order".into(),
                    value: "0".into(),
                    expected: "a positive number".into(),
                });
            }
            info.boot_extra = b.attrs;
        }
        info.acpi = el.take_one("acpi")?.map(|e| unpositioned(&e));
        if let Some(mut a) = el.take_one("alias")? {
            info.alias = a.take_attr_value("name");
        }
        info.master = el.take_one("master")?.map(|e| unpositioned(&e));
        info.rom = el.take_one("rom")?.map(|e| unpositioned(&e));
        info.address = el
            .take_one("address")?
            .map(DeviceAddress::from_element)
            .transpose()?;
        Ok(info)
    }

    /// Appends the device-info children in libvirt's order.
    pub fn push_into(&self, el: &mut Element) {
        if let Some(o) = self.boot_order {
            let mut b = Element::new("boot").attr("order", o);
            b.attrs.extend(self.boot_extra.iter().cloned().map(|mut a| {
                a.pos = crate::xml::Pos::UNKNOWN;
                a
            }));
            el.children.push(b);
        }
        el.children.extend(self.acpi.clone());
        if let Some(a) = &self.alias {
            el.children.push(Element::new("alias").attr("name", a));
        }
        el.children.extend(self.master.clone());
        el.children.extend(self.rom.clone());
        if let Some(a) = &self.address {
            el.children.push(a.to_element());
        }
    }

    /// The PCI address, if the device has one.
    pub fn pci(&self) -> Option<crate::address::PciAddress> {
        self.address.as_ref().and_then(DeviceAddress::pci)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    #[test]
    fn order_and_errors() {
        let mut el = parse_document(
            "<d><address type='pci' slot='3'/><alias name='ua-x'/><boot order='2'/><model/></d>",
            Limits::default(),
        )
        .unwrap();
        let info = DevInfo::take_from(&mut el).unwrap();
        assert_eq!(info.boot_order, Some(2));
        let mut out = Element::new("d");
        info.push_into(&mut out);
        assert_eq!(
            write_document(&out),
            "<d>\n  <boot order='2'/>\n  <alias name='ua-x'/>\n  <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>\n</d>\n"
        );
        assert_eq!(el.children.len(), 1);
        let mut bad = parse_document("<d><boot order='x'/></d>", Limits::default()).unwrap();
        assert!(DevInfo::take_from(&mut bad).is_err());
        let mut bad = parse_document("<d><boot/></d>", Limits::default()).unwrap();
        assert!(DevInfo::take_from(&mut bad).is_err());
    }
}
