//! What a confined QEMU sees, decided from the domain and the context (pure): its `/dev`
//! nodes, the directories hidden from it, the ones kept reachable inside them.

use virtnet_conf::address::PciAddress;
use virtnet_conf::domain::DomainType;
use virtnet_conf::Domain;
use virtnet_qemu::{DevNode, Sandbox};

use super::PlanContext;

/// The sandbox QEMU runs in for `domain`: `None` when the context has none (virtnetd
/// `--sandbox off`) or the domain opts out (`<seclabel type='none'/>`); else the context's
/// identity with this VM's device nodes, and virtnetd's directories hidden except those the
/// context says QEMU reaches.
pub(crate) fn sandbox_for(domain: &Domain, ctx: &PlanContext) -> Option<Sandbox> {
    if domain.unconfined() {
        return None;
    }
    let mut sb = Sandbox::new(ctx.sandbox.as_ref()?.user.clone());
    if domain.domain_type() == DomainType::Kvm {
        sb.dev.push(DevNode::Kvm);
    }
    let pci = host_pci_devices(domain);
    if !pci.is_empty() {
        sb.dev.push(DevNode::VfioContainer);
    }
    for a in pci {
        let node = DevNode::VfioGroupOf {
            address: a.to_string(),
        };
        if !sb.dev.contains(&node) {
            sb.dev.push(node);
        }
    }
    sb.hide = ctx.hide.clone();
    // Not the run dir: what QEMU needs from it arrives as fds. Only what virtnetd says QEMU
    // must reach by path (the switch networks' sockets).
    sb.keep = ctx.reach.clone();
    Some(sb)
}

/// PCI addresses of the host devices QEMU opens through VFIO: hostdev interfaces and plain
/// `<hostdev mode='subsystem' type='pci'>`s.
fn host_pci_devices(domain: &Domain) -> Vec<PciAddress> {
    let mut v: Vec<PciAddress> = domain
        .devices
        .interfaces
        .iter()
        .filter_map(|i| i.hostdev_source())
        .collect();
    for g in domain.devices.others_of("hostdev") {
        let addr = g
            .element
            .get_child("source")
            .and_then(|s| s.get_child("address"))
            .and_then(|a| PciAddress::take_from(&mut a.clone()).ok());
        v.extend(addr);
    }
    v
}
