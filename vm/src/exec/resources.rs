//! What a started VM holds on the host, as plain data the daemon can persist.

use serde::{Deserialize, Serialize};
use virtnet_host::{HostUndo, UndoStack};

/// One host object a NIC uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicResource {
    /// Interface index in `<devices>`.
    pub nic: usize,
    /// `tap`, `macvtap` or `vf`.
    pub kind: String,
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
            .filter(|n| n.kind != "vf")
            .map(|n| n.name.as_str())
            .collect()
    }
}
