//! What a started VM holds on the host, as plain data the daemon can persist.

use serde::{Deserialize, Serialize};
use virtnet_host::{HostUndo, UndoStack};

/// What kind of host object a [`NicResource`] is (serialised `tap`, `macvtap`, `vf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NicResourceKind {
    /// A tap link (bridge, ethernet, network).
    Tap,
    /// A macvtap link (direct).
    Macvtap,
    /// An SR-IOV VF given to the guest (hostdev); its name is its PCI address, not a link.
    Vf,
}

impl NicResourceKind {
    /// Whether it is a network link on the host (a tap or macvtap), named by its interface
    /// name; a VF is named by its PCI address.
    pub fn is_link(self) -> bool {
        self != NicResourceKind::Vf
    }
}

/// One host object a NIC uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicResource {
    /// Interface index in `<devices>`.
    pub nic: usize,
    /// Tap, macvtap or VF.
    pub kind: NicResourceKind,
    /// Interface name (`vnet3`, `macvtap0`) or the VF's PCI address.
    pub name: String,
    /// Interface index, for links.
    pub ifindex: Option<u32>,
    /// Whether virtnet created it (and deletes it at stop): false for `managed='no'` taps;
    /// for a VF, whether virtnet binds its driver (false for `managed='no'`).
    pub managed: bool,
    /// The bridge a tap was attached to.
    pub bridge: Option<String>,
}

/// Everything a running VM holds on the host: per-NIC objects (names chosen at run time) and
/// the undo steps that release them, oldest first. Persist it to release the resources after
/// a daemon restart ([`HostResources::undo_stack`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostResources {
    /// Per-NIC host objects.
    pub nics: Vec<NicResource>,
    /// Undo steps, oldest first (stored as [`HostUndo`] serialises them).
    pub undo: Vec<HostUndo>,
    /// Where the VM's processes are accounted (its group, or why none); `None` when the
    /// plan made no group (or in a part of the record, e.g. one NIC's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<virtnet_host::CgroupPlacement>,
}

impl HostResources {
    /// The undo steps as an [`UndoStack`] to roll back.
    pub fn undo_stack(&self) -> UndoStack {
        UndoStack::from(self.undo.clone())
    }

    /// Names of the links (taps, macvtaps) the VM uses.
    pub fn link_names(&self) -> Vec<&str> {
        self.nics
            .iter()
            .filter(|n| n.kind.is_link())
            .map(|n| n.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind is stored as before (`"tap"`, `"macvtap"`, `"vf"`), so statuses written by
    /// an earlier virtnetd still load.
    #[test]
    fn kind_serialises_as_its_name() {
        for (k, s) in [
            (NicResourceKind::Tap, "\"tap\""),
            (NicResourceKind::Macvtap, "\"macvtap\""),
            (NicResourceKind::Vf, "\"vf\""),
        ] {
            assert_eq!(serde_json::to_string(&k).unwrap(), s);
            assert_eq!(serde_json::from_str::<NicResourceKind>(s).unwrap(), k);
        }
        assert!(!NicResourceKind::Vf.is_link() && NicResourceKind::Macvtap.is_link());
    }
}
