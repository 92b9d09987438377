//! What the device operations share: reading a device XML, finding the interface it names,
//! completing a new interface (MAC, model, guest PCI address). Which interfaces can be
//! plugged into a running VM is `virtnet_qemu::validate`'s to say.

use virtnet_conf::address::DeviceAddress;
use virtnet_conf::interface::{InterfaceType, MacAddr};
use virtnet_conf::xml::{parse_document, Limits};
use virtnet_conf::{Domain, Interface};

use super::invalid_xml;
use crate::error::{DaemonError, Result};

/// Reads a device XML: one `<interface>` element. Other devices are refused as such.
pub(crate) fn parse_interface(xml: &str) -> Result<Interface> {
    let el = parse_document(xml, Limits::default()).map_err(|e| invalid_xml(&[e]))?;
    if el.name != "interface" {
        return Err(DaemonError::NotHotpluggable(format!(
            "<{}> at line {}: virtnet attaches, detaches and updates network interfaces \
             (<interface>) only; a serial port's or channel's back end is switched with \
             `virtnet chardev-change`",
            el.name, el.pos.line
        )));
    }
    Interface::from_element(el).map_err(|e| invalid_xml(&[e]))
}

/// Which interface a detach or update means: by MAC and/or alias when given, else by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matcher {
    mac: Option<MacAddr>,
    alias: Option<String>,
    type_: Option<InterfaceType>,
}

impl Matcher {
    /// The interface `iface` (from a device XML) names: its MAC and alias when it has them,
    /// else its type.
    pub(crate) fn of(iface: &Interface) -> Matcher {
        let (mac, alias) = (iface.mac(), iface.alias().map(str::to_string));
        let type_ = (mac.is_none() && alias.is_none()).then(|| iface.type_());
        Matcher { mac, alias, type_ }
    }

    /// `virsh detach-interface --type T [--mac M]`.
    pub(crate) fn by_type(type_: &str, mac: Option<&str>) -> Result<Matcher> {
        let t = InterfaceType::parse(type_).ok_or_else(|| {
            let all: Vec<&str> = InterfaceType::ALL.iter().map(|t| t.as_str()).collect();
            DaemonError::BadRequest(format!(
                "unknown interface type '{type_}'; one of: {}",
                all.join(", ")
            ))
        })?;
        let mac = match mac {
            None => None,
            Some(m) => Some(m.parse::<MacAddr>().map_err(|_| {
                DaemonError::BadRequest(format!(
                    "'{m}' is not a MAC address: six hex bytes separated by ':'"
                ))
            })?),
        };
        Ok(Matcher {
            mac,
            alias: None,
            type_: Some(t),
        })
    }

    fn matches(&self, i: &Interface) -> bool {
        self.mac.is_none_or(|m| i.mac() == Some(m))
            && self.alias.as_deref().is_none_or(|a| i.alias() == Some(a))
            && self.type_.is_none_or(|t| i.type_() == t)
    }

    /// What the matcher looks for, in words.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = self.type_ {
            parts.push(format!("type {t}"));
        }
        if let Some(m) = self.mac {
            parts.push(format!("MAC {m}"));
        }
        if let Some(a) = &self.alias {
            parts.push(format!("alias {a}"));
        }
        parts.join(", ")
    }

    /// The index of the one interface of `d` that matches.
    pub(crate) fn find(&self, vm: &str, d: &Domain) -> Result<usize> {
        let hits: Vec<usize> = d
            .devices
            .interfaces
            .iter()
            .enumerate()
            .filter(|(_, i)| self.matches(i))
            .map(|(n, _)| n)
            .collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(DaemonError::NoSuchInterface {
                vm: vm.into(),
                key: self.describe(),
            }),
            many => Err(DaemonError::AmbiguousInterface {
                vm: vm.into(),
                key: self.describe(),
                count: many.len(),
            }),
        }
    }
}

/// Fills what a new interface lacks: the model's default and a guest PCI address (the one
/// `prefer`red when it is free in `d`, else `d`'s first free hot-pluggable slot).
pub(crate) fn complete_for(
    d: &Domain,
    iface: &Interface,
    prefer: Option<&DeviceAddress>,
) -> Result<Interface> {
    let mut i = iface.clone();
    i.fill_defaults();
    if i.address.is_none() && i.wants_pci_address() {
        let used: Vec<_> = d
            .pci_addresses_in_use()
            .into_iter()
            .map(|(_, a, _)| a)
            .collect();
        let preferred = prefer
            .and_then(DeviceAddress::pci)
            .filter(|a| !used.contains(a));
        let addr = preferred
            .or_else(|| d.next_free_pci_slot())
            .ok_or_else(|| {
                DaemonError::NotHotpluggable(format!(
                    "VM '{}' has no free hot-pluggable PCI slot left for {}",
                    d.name(),
                    i.describe()
                ))
            })?;
        i.address = Some(DeviceAddress::from_pci(addr));
    }
    Ok(i)
}

/// `d` with `iface` added at the end.
pub(crate) fn with_interface(d: &Domain, iface: Interface) -> Domain {
    let mut d = d.clone();
    d.devices.interfaces.push(iface);
    d
}

/// `d` without interface `index`.
pub(crate) fn without_interface(d: &Domain, index: usize) -> Domain {
    let mut d = d.clone();
    d.devices.interfaces.remove(index);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        let mut d = Domain::parse(
            "<domain type='qemu'><name>d</name><memory>65536</memory><os><type>hvm</type></os>\
             <devices><interface type='bridge'><mac address='52:54:00:00:00:01'/>\
             <source bridge='br0'/></interface>\
             <interface type='bridge'><mac address='52:54:00:00:00:02'/>\
             <source bridge='br0'/><alias name='ua-two'/></interface>\
             <interface type='user'><mac address='52:54:00:00:00:03'/></interface>\
             </devices></domain>",
        )
        .unwrap();
        d.fill_defaults().unwrap();
        d
    }

    #[test]
    fn parse_refuses_other_devices_and_bad_xml() {
        assert!(parse_interface("<interface type='user'/>").is_ok());
        let e = parse_interface("<disk type='file'/>").unwrap_err();
        assert_eq!(e.kind(), "not_hotpluggable");
        assert!(e.to_string().contains("<disk>"), "{e}");
        assert_eq!(
            parse_interface("<interface").unwrap_err().kind(),
            "invalid_xml"
        );
        assert_eq!(
            parse_interface("<interface type='nope'/>")
                .unwrap_err()
                .kind(),
            "invalid_xml"
        );
    }

    #[test]
    fn matching_by_mac_alias_type() {
        let d = domain();
        let by = |x: &str| Matcher::of(&parse_interface(x).unwrap()).find("d", &d);
        assert_eq!(
            by("<interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='x'/></interface>")
                .unwrap(),
            1
        );
        assert_eq!(
            by("<interface type='bridge'><source bridge='x'/><alias name='ua-two'/></interface>")
                .unwrap(),
            1
        );
        assert_eq!(by("<interface type='user'/>").unwrap(), 2);
        let e = by("<interface type='bridge'><source bridge='x'/></interface>").unwrap_err();
        assert_eq!(e.kind(), "ambiguous_interface");
        assert!(e.to_string().contains("2 interfaces"), "{e}");
        let e = by("<interface type='user'><mac address='52:54:00:00:00:09'/></interface>")
            .unwrap_err();
        assert_eq!(e.kind(), "no_such_interface");
        let m = Matcher::by_type("bridge", Some("52:54:00:00:00:01")).unwrap();
        assert_eq!(m.find("d", &d).unwrap(), 0);
        assert!(Matcher::by_type("bogus", None).is_err());
        assert!(Matcher::by_type("bridge", Some("zz")).is_err());
    }

    #[test]
    fn completes_with_a_free_slot() {
        let d = domain();
        let i = parse_interface("<interface type='user'/>").unwrap();
        let c = complete_for(&d, &i, None).unwrap();
        let slot = c.address.as_ref().and_then(DeviceAddress::pci).unwrap();
        assert!(!d.pci_addresses_in_use().iter().any(|(_, a, _)| *a == slot));
        assert!(c.model().is_some());
        // A preferred slot in use is not taken.
        let used = d.devices.interfaces[0].address.clone().unwrap();
        let c2 = complete_for(&d, &i, Some(&used)).unwrap();
        assert_ne!(c2.address, Some(used));
    }
}
