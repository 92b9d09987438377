//! Guest device addresses (`<address type='pci|usb|drive|ccw|...'/>`) and host PCI addresses.

use std::fmt;

use crate::error::ConfError;
use crate::xml::{Element, Extra, Pos};

/// A PCI address: domain, bus, slot, function. Used for guest addresses and for host devices
/// (a VF's `<source><address>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PciAddress {
    /// PCI domain (segment), 0..=0xffff.
    pub domain: u32,
    /// Bus, 0..=0xff.
    pub bus: u8,
    /// Slot (device), 0..=0x1f.
    pub slot: u8,
    /// Function, 0..=7.
    pub function: u8,
}

impl PciAddress {
    /// Bus 0, the given slot, function 0, domain 0.
    pub fn slot(slot: u8) -> Self {
        PciAddress {
            domain: 0,
            bus: 0,
            slot,
            function: 0,
        }
    }
}

impl fmt::Display for PciAddress {
    /// `0000:03:07.1`, as sysfs and `lspci -D` print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.slot, self.function
        )
    }
}

/// Where a device sits in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceAddress {
    /// `<address type='pci' .../>`.
    Pci {
        /// The address.
        addr: PciAddress,
        /// `multifunction='on|off'`, kept as written.
        multifunction: Option<String>,
        /// Unknown attributes/children (e.g. `<zpci>`), kept.
        extra: Extra,
    },
    /// `<address type='usb' bus='0' port='1'/>`.
    Usb {
        /// USB bus (controller index).
        bus: u32,
        /// Port path, e.g. "1" or "1.2".
        port: Option<String>,
        /// Unknown content, kept.
        extra: Extra,
    },
    /// `<address type='drive' controller bus target unit/>` (IDE/SATA/SCSI disks).
    Drive {
        /// Controller index.
        controller: u32,
        /// Bus.
        bus: u32,
        /// Target.
        target: u32,
        /// Unit.
        unit: u32,
        /// Unknown content, kept.
        extra: Extra,
    },
    /// Any other address type (ccw, virtio-serial, isa, ...), kept as written.
    Other(Element),
}

fn parse_hex_or_dec(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

fn take_num(el: &mut Element, name: &str, max: u64) -> Result<u64, ConfError> {
    let expected = format!("a number from 0 to {max:#x} (0x.. for hex)");
    Ok(el
        .take_attr_with(name, &expected, |v| {
            parse_hex_or_dec(v).filter(|n| *n <= max)
        })?
        .unwrap_or(0))
}

impl PciAddress {
    /// Reads the PCI attributes (domain, bus, slot, function) from an `<address>` element.
    pub fn take_from(el: &mut Element) -> Result<PciAddress, ConfError> {
        Ok(PciAddress {
            domain: take_num(el, "domain", 0xffff)? as u32,
            bus: take_num(el, "bus", 0xff)? as u8,
            slot: take_num(el, "slot", 0x1f)? as u8,
            function: take_num(el, "function", 7)? as u8,
        })
    }

    /// Adds libvirt's canonical PCI attributes to an `<address>` element.
    pub fn put_into(&self, el: Element) -> Element {
        el.attr("domain", format!("{:#06x}", self.domain))
            .attr("bus", format!("{:#04x}", self.bus))
            .attr("slot", format!("{:#04x}", self.slot))
            .attr("function", format!("{:#x}", self.function))
    }

    /// Reads a whole `<address type='pci' .../>` element (e.g. a hostdev source).
    pub fn from_element(mut el: Element) -> Result<(PciAddress, Extra), ConfError> {
        if let Some(t) = el.take_attr("type") {
            if t.value != "pci" {
                return Err(el.invalid_attr(&t, "'pci'"));
            }
        }
        let addr = PciAddress::take_from(&mut el)?;
        Ok((addr, el.into_extra()))
    }

    /// `<address type='pci' domain=... />`.
    pub fn to_element(&self) -> Element {
        self.put_into(Element::new("address").attr("type", "pci"))
    }
}

impl DeviceAddress {
    /// Reads an `<address>` element.
    pub fn from_element(mut el: Element) -> Result<DeviceAddress, ConfError> {
        let ty = el.get_attr("type").map(str::to_string);
        match ty.as_deref() {
            Some("pci") => {
                el.take_attr("type");
                let addr = PciAddress::take_from(&mut el)?;
                let multifunction = el.take_attr_value("multifunction");
                Ok(DeviceAddress::Pci {
                    addr,
                    multifunction,
                    extra: el.into_extra(),
                })
            }
            Some("usb") => {
                el.take_attr("type");
                let bus = el.take_attr_parsed("bus", "a USB bus number")?.unwrap_or(0);
                let port = el.take_attr_value("port");
                Ok(DeviceAddress::Usb {
                    bus,
                    port,
                    extra: el.into_extra(),
                })
            }
            Some("drive") => {
                el.take_attr("type");
                let n = "a non-negative integer";
                Ok(DeviceAddress::Drive {
                    controller: el.take_attr_parsed("controller", n)?.unwrap_or(0),
                    bus: el.take_attr_parsed("bus", n)?.unwrap_or(0),
                    target: el.take_attr_parsed("target", n)?.unwrap_or(0),
                    unit: el.take_attr_parsed("unit", n)?.unwrap_or(0),
                    extra: el.into_extra(),
                })
            }
            Some(_) => Ok(DeviceAddress::Other(el)),
            None => Err(ConfError::MissingAttr {
                pos: el.pos,
                element: "address".into(),
                attr: "type".into(),
                hint: "; use type='pci' with domain, bus, slot and function".into(),
            }),
        }
    }

    /// Writes the `<address>` element in libvirt's canonical form.
    pub fn to_element(&self) -> Element {
        match self {
            DeviceAddress::Pci {
                addr,
                multifunction,
                extra,
            } => addr
                .put_into(Element::new("address").attr("type", "pci"))
                .attr_opt("multifunction", multifunction.as_deref())
                .with_extra(extra),
            DeviceAddress::Usb { bus, port, extra } => Element::new("address")
                .attr("type", "usb")
                .attr("bus", bus)
                .attr_opt("port", port.as_deref())
                .with_extra(extra),
            DeviceAddress::Drive {
                controller,
                bus,
                target,
                unit,
                extra,
            } => Element::new("address")
                .attr("type", "drive")
                .attr("controller", controller)
                .attr("bus", bus)
                .attr("target", target)
                .attr("unit", unit)
                .with_extra(extra),
            DeviceAddress::Other(el) => {
                let mut el = el.clone();
                el.pos = Pos::UNKNOWN;
                el
            }
        }
    }

    /// The PCI address, if this is one.
    pub fn pci(&self) -> Option<PciAddress> {
        match self {
            DeviceAddress::Pci { addr, .. } => Some(*addr),
            _ => None,
        }
    }

    /// A plain PCI address with nothing else set.
    pub fn from_pci(addr: PciAddress) -> Self {
        DeviceAddress::Pci {
            addr,
            multifunction: None,
            extra: Extra::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_document, write_document, Limits};

    fn addr(s: &str) -> Result<DeviceAddress, ConfError> {
        DeviceAddress::from_element(parse_document(s, Limits::default()).unwrap())
    }

    #[test]
    fn pci_canonical_form() {
        let a = addr("<address type='pci' slot='3' bus='0' function='0x1'/>").unwrap();
        assert_eq!(
            write_document(&a.to_element()),
            "<address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x1'/>\n"
        );
        assert_eq!(a.pci().unwrap().to_string(), "0000:00:03.1");
    }

    #[test]
    fn pci_out_of_range_is_refused() {
        let e = addr("<address type='pci' slot='0x20'/>").unwrap_err();
        assert!(e.to_string().contains("'slot'"), "{e}");
        assert!(addr("<address slot='1'/>").is_err());
    }
}
