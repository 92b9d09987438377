//! Which of a VM's host objects belong to one interface, and keeping the VM's record in step
//! as interfaces come and go.

use virtnet_conf::interface::InterfaceKind;
use virtnet_conf::Interface;
use virtnet_host::HostUndo;

use crate::exec::{HostResources, NicResourceKind};

/// The part of `held` that belongs to `iface` (index `index` of the live domain): its links
/// by `<target dev>` (which the live definition records), its VF by address, else (a NIC with a
/// host link but no recorded name) the objects recorded for `index`; with the undo records
/// that release them.
pub(super) fn of_interface(held: &HostResources, iface: &Interface, index: usize) -> HostResources {
    let link = iface.target_dev();
    let vf = iface.hostdev_source().map(|a| a.to_string());
    let mut nics: Vec<_> = held
        .nics
        .iter()
        .filter(|r| {
            if r.kind == NicResourceKind::Vf {
                vf.as_deref() == Some(r.name.as_str())
            } else {
                link == Some(r.name.as_str())
            }
        })
        .cloned()
        .collect();
    // The index is only a fallback for a NIC with a host link whose name was not recorded:
    // indices shift as NICs are unplugged, so a NIC without host objects (vhost-user, user)
    // must never pick up what was recorded for another NIC at its index (the soak test found
    // an unplugged vhost-user NIC taking a bridge NIC's tap with it).
    let host_link = matches!(
        iface.kind,
        InterfaceKind::Bridge { .. }
            | InterfaceKind::Ethernet
            | InterfaceKind::Network { .. }
            | InterfaceKind::Direct { .. }
    );
    if nics.is_empty() && link.is_none() && host_link {
        nics = held
            .nics
            .iter()
            .filter(|r| r.nic == index)
            .cloned()
            .collect();
    }
    let links: Vec<&str> = nics
        .iter()
        .filter(|r| r.kind.is_link())
        .map(|r| r.name.as_str())
        .collect();
    let vfs: Vec<&str> = nics
        .iter()
        .filter(|r| r.kind == NicResourceKind::Vf)
        .map(|r| r.name.as_str())
        .collect();
    let lower = match &iface.kind {
        InterfaceKind::Direct { dev, .. } => Some(dev.value.as_str()),
        _ => None,
    };
    let undo = held
        .undo
        .iter()
        .filter(|u| match u {
            HostUndo::DeleteLink { name, .. } => links.contains(&name.as_str()),
            HostUndo::DetachFromBridge { port, .. } | HostUndo::OvsDelPort { port, .. } => {
                links.contains(&port.as_str())
            }
            HostUndo::SetMac { name, .. } => !links.is_empty() && lower == Some(name.as_str()),
            HostUndo::RestoreVf(saved) => vfs.contains(&saved.addr.to_string().as_str()),
            HostUndo::RunScript(run) => links.contains(&run.ifname.as_str()),
            HostUndo::Unshape { dev, .. } => links.contains(&dev.as_str()),
            HostUndo::DeleteNftTable { name, .. } => links
                .iter()
                .any(|l| virtnet_host::nwfilter::is_table_of(name, l)),
            HostUndo::RemoveCgroup(_) => false, // the VM's, never a NIC's
            // Held by `<vm>/<alias>` (a grant made when the NIC was plugged).
            HostUndo::RestoreOwner(g) => {
                iface.alias().is_some()
                    && g.holder.rsplit_once('/').map(|(_, a)| a) == iface.alias()
            }
        })
        .cloned()
        .collect();
    HostResources {
        nics,
        undo,
        cgroup: None,
    }
}

impl HostResources {
    /// Adds `part` (e.g. [`crate::exec::AttachedNic::host`] after a hot-plug) to this record.
    pub fn add(&mut self, part: &HostResources) {
        self.nics.extend(part.nics.iter().cloned());
        self.undo.extend(part.undo.iter().cloned());
    }

    /// Removes `part` (e.g. [`crate::plan::DetachPlan::host`] once the detach is done): each
    /// of its objects and undo records once.
    pub fn remove_part(&mut self, part: &HostResources) {
        for n in &part.nics {
            if let Some(i) = self.nics.iter().position(|x| x == n) {
                self.nics.remove(i);
            }
        }
        for u in &part.undo {
            if let Some(i) = self.undo.iter().rposition(|x| x == u) {
                self.undo.remove(i);
            }
        }
    }
}
