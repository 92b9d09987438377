//! QEMU ids and the guest PCI slot for a hot-plugged interface.
//!
//! The live domain's interfaces keep the ids QEMU knows them by: their alias when the live
//! definition records one (the daemon pins them at start), else libvirt's positional
//! `netN`/`hostdevK`. A new interface gets, as libvirt does (`qemuAssignDeviceNetAlias`), one
//! more than the highest `netN` (`hostdevK`) in use, so an id is never reused while the
//! device may still be around.

use std::collections::BTreeSet;

use virtnet_conf::address::DeviceAddress;
use virtnet_conf::interface::Leaf;
use virtnet_conf::{Domain, Interface};
use virtnet_qemu::NicIds;

use crate::error::VmError;

/// The QEMU ids of every interface of the live domain: device, netdev and chardev ids.
pub fn live_ids(live: &Domain) -> BTreeSet<String> {
    let list = &live.devices.interfaces;
    let mut ids = BTreeSet::new();
    for i in 0..list.len() {
        let n = NicIds::new(list, i);
        ids.insert(n.device);
        ids.insert(n.netdev);
        ids.insert(n.chardev);
    }
    ids
}

/// The next free `<prefix>N` among `used`: one more than the highest in use (0 if none).
fn next_id(used: &BTreeSet<String>, prefix: &str) -> String {
    let next = used
        .iter()
        .filter_map(|id| id.strip_prefix(prefix)?.parse::<u32>().ok())
        .max()
        .map_or(0, |n| n + 1);
    format!("{prefix}{next}")
}

/// Gives `new` its QEMU id as an alias (unless the user gave one, which must be free), so the
/// id stays the same whatever happens to the other interfaces.
pub fn assign_alias(live: &Domain, new: &mut Interface, nic: &str) -> Result<(), VmError> {
    let used = live_ids(live);
    if let Some(a) = new.alias() {
        let ids = NicIds::new(std::slice::from_ref(new), 0);
        for id in [&ids.device, &ids.netdev, &ids.chardev] {
            if used.contains(id) {
                return Err(VmError::InvalidHotplug {
                    vm: live.name().to_string(),
                    nic: nic.to_string(),
                    problems: vec![format!(
                        "its alias '{a}' gives QEMU id '{id}', which an interface of the \
                         running VM already uses: choose another <alias name='ua-...'/>"
                    )],
                });
            }
        }
        return Ok(());
    }
    let prefix = if new.is_hostdev() { "hostdev" } else { "net" };
    new.alias = Some(Leaf::new(next_id(&used, prefix)));
    Ok(())
}

/// Gives `new` the first free hot-pluggable guest PCI slot when it is a PCI device without an
/// address; returns the address it ends up with.
pub fn assign_pci_slot(
    live: &Domain,
    new: &mut Interface,
    nic: &str,
) -> Result<Option<String>, VmError> {
    if new.address.is_none() && new.wants_pci_address() {
        let Some(addr) = live.next_free_pci_slot() else {
            return Err(VmError::InvalidHotplug {
                vm: live.name().to_string(),
                nic: nic.to_string(),
                problems: vec![
                    "the running VM has no free hot-pluggable PCI slot left (on q35: add \
                     <controller type='pci' model='pcie-root-port'/> to the definition and \
                     restart it)"
                        .into(),
                ],
            });
        };
        new.address = Some(DeviceAddress::Pci {
            addr,
            multifunction: None,
            extra: Default::default(),
        });
    }
    Ok(match &new.address {
        Some(DeviceAddress::Pci { addr, .. }) => Some(addr.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_id_is_one_past_the_highest() {
        let used: BTreeSet<String> = ["net0", "hostnet0", "net3", "ua-x", "hostdev1", "netfoo"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(next_id(&used, "net"), "net4");
        assert_eq!(next_id(&used, "hostdev"), "hostdev2");
        assert_eq!(next_id(&BTreeSet::new(), "net"), "net0");
    }
}
