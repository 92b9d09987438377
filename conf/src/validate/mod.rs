//! Validation: configurations that parse but cannot work, or that QEMU would misread.
//!
//! [`validate()`] checks a whole domain; [`validate_interface`] one interface on its own;
//! [`validate_new_interface`] an interface about to be added (hot-plug). Every error carries
//! the position of the offending element or attribute.

mod conflicts;
mod interface;
pub mod names;

#[cfg(test)]
mod tests;

pub use conflicts::{check as check_conflicts, who, Context};
pub use interface::{validate_interface, MAX_QUEUES, QUEUE_SIZE_RANGE};

use crate::address::PciAddress;
use crate::devices::info::DevInfo;
use crate::domain::Domain;
use crate::error::ConfError;
use crate::interface::Interface;
use crate::xml::Pos;

/// `desc (line N)` when the position is known.
fn with_line(desc: String, pos: Pos) -> String {
    if pos.is_known() {
        format!("{desc} (line {})", pos.line)
    } else {
        desc
    }
}

/// The host PCI device of a `<hostdev mode='subsystem' type='pci'>`.
fn hostdev_pci_source(dev: &crate::devices::generic::GenericDevice) -> Option<PciAddress> {
    if dev.attr("type") != Some("pci") {
        return None;
    }
    let mut a = dev
        .element
        .get_child("source")?
        .get_child("address")?
        .clone();
    PciAddress::take_from(&mut a).ok()
}

/// What the cross-device rules need, taken from a domain.
fn context(domain: &Domain) -> Context<'_> {
    let v = &domain.devices;
    let pci_in_use = domain
        .pci_addresses_in_use()
        .into_iter()
        .map(|(d, a, p)| (with_line(d, p), a, p))
        .collect();
    let other_vhost_user = v
        .disks
        .iter()
        .filter(|d| d.disk_type == "vhostuser")
        .map(|d| {
            let desc = with_line(format!("disk '{}'", d.target.dev), d.pos);
            ("disk".to_string(), desc, d.pos)
        })
        .collect();
    let other_hostdev_sources = v
        .others_of("hostdev")
        .filter_map(|h| {
            let a = hostdev_pci_source(h)?;
            Some((with_line("hostdev".into(), h.pos), a, h.pos))
        })
        .collect();
    // Consoles are left out: in live XML libvirt gives the console the alias of the serial
    // port it stands for.
    let infos = v
        .disks
        .iter()
        .map(|d| (format!("disk '{}'", d.target.dev), d.pos, &d.info))
        .chain(v.controllers.iter().map(|c| (c.describe(), c.pos, &c.info)))
        .chain(
            v.serials
                .iter()
                .chain(&v.parallels)
                .chain(&v.channels)
                .map(|c| ("character device".to_string(), c.pos, &c.info)),
        )
        .chain(
            v.inputs
                .iter()
                .map(|i| ("input".to_string(), i.pos, &i.info)),
        )
        .chain(
            v.memballoon
                .iter()
                .map(|m| ("memballoon".to_string(), m.pos, &m.info)),
        );
    let mut other_aliases: Vec<(String, String, Pos)> = infos
        .filter_map(|(desc, pos, info): (String, Pos, &DevInfo)| {
            Some((with_line(desc, pos), info.alias.clone()?, pos))
        })
        .collect();
    other_aliases.extend(v.others.iter().filter_map(|o| {
        Some((
            with_line(o.kind().to_string(), o.pos),
            o.alias()?.to_string(),
            o.pos,
        ))
    }));
    Context {
        interfaces: &v.interfaces,
        shared_memory: domain.has_shared_memory(),
        pci_in_use: Some(pci_in_use),
        other_vhost_user,
        other_hostdev_sources,
        other_aliases,
    }
}

/// Every problem found in a domain (empty when valid): first each interface on its own, then
/// the rules across devices.
pub fn validate(domain: &Domain) -> Vec<ConfError> {
    let ctx = context(domain);
    let mut errs: Vec<ConfError> = ctx.interfaces.iter().flat_map(validate_interface).collect();
    errs.extend(check_conflicts(&ctx));
    errs
}

/// The problems `iface` would bring into `domain` if it were added (e.g. by hot-plug):
/// its own problems and its conflicts with the devices already there. Problems the domain
/// has already are not repeated.
pub fn validate_new_interface(domain: &Domain, iface: &Interface) -> Vec<ConfError> {
    let before = validate(domain);
    let mut with = domain.clone();
    with.devices.interfaces.push(iface.clone());
    validate(&with)
        .into_iter()
        .filter(|e| !before.contains(e))
        .collect()
}
