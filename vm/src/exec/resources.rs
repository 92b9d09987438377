//! What a started VM holds on the host, as plain data the daemon can persist.

use serde::{Deserialize, Serialize};
use virtnet_host::{HostUndo, MacAddr, PciAddr, SavedVf, UndoStack};

use crate::error::VmError;

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

/// One undo step, serialisable ([`HostUndo`] as plain strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum UndoRecord {
    /// Delete a link we created.
    DeleteLink {
        /// Name.
        name: String,
        /// Index it had (guards against deleting a reused name).
        ifindex: Option<u32>,
    },
    /// Take a port off a bridge.
    DetachFromBridge {
        /// Port.
        port: String,
        /// Bridge.
        bridge: String,
    },
    /// Give a link back its MAC.
    SetMac {
        /// Name.
        name: String,
        /// MAC.
        mac: String,
    },
    /// Give a VF back its saved state.
    RestoreVf {
        /// PCI address.
        pci: String,
        /// PF name.
        pf: String,
        /// VF index on the PF.
        index: u32,
        /// MAC before.
        mac: String,
        /// VLAN before.
        vlan: u16,
        /// VLAN QoS before.
        qos: u32,
        /// Driver before.
        driver: Option<String>,
        /// Whether virtnet manages the VF's driver (rebinds `driver` on restore). Records
        /// written before this field existed were all managed.
        #[serde(default = "managed_default")]
        managed: bool,
    },
}

fn managed_default() -> bool {
    true
}

impl From<&HostUndo> for UndoRecord {
    fn from(u: &HostUndo) -> Self {
        match u {
            HostUndo::DeleteLink { name, ifindex } => UndoRecord::DeleteLink {
                name: name.clone(),
                ifindex: *ifindex,
            },
            HostUndo::DetachFromBridge { port, bridge } => UndoRecord::DetachFromBridge {
                port: port.clone(),
                bridge: bridge.clone(),
            },
            HostUndo::SetMac { name, mac } => UndoRecord::SetMac {
                name: name.clone(),
                mac: mac.to_string(),
            },
            HostUndo::RestoreVf(s) => UndoRecord::RestoreVf {
                pci: s.addr.to_string(),
                pf: s.pf.clone(),
                index: s.index,
                mac: s.mac.to_string(),
                vlan: s.vlan,
                qos: s.qos,
                driver: s.driver.clone(),
                managed: s.managed,
            },
        }
    }
}

impl UndoRecord {
    /// Back to a step [`virtnet_host`] can apply.
    pub fn to_host_undo(&self) -> Result<HostUndo, VmError> {
        let bad = |what: &str, value: &str| {
            VmError::InvalidContext(format!(
                "stored undo step has an invalid {what} '{value}': the state file is damaged"
            ))
        };
        let mac = |m: &str| m.parse::<MacAddr>().map_err(|_| bad("MAC", m));
        Ok(match self {
            UndoRecord::DeleteLink { name, ifindex } => HostUndo::DeleteLink {
                name: name.clone(),
                ifindex: *ifindex,
            },
            UndoRecord::DetachFromBridge { port, bridge } => HostUndo::DetachFromBridge {
                port: port.clone(),
                bridge: bridge.clone(),
            },
            UndoRecord::SetMac { name, mac: m } => HostUndo::SetMac {
                name: name.clone(),
                mac: mac(m)?,
            },
            UndoRecord::RestoreVf {
                pci,
                pf,
                index,
                mac: m,
                vlan,
                qos,
                driver,
                managed,
            } => HostUndo::RestoreVf(SavedVf {
                addr: pci
                    .parse::<PciAddr>()
                    .map_err(|_| bad("PCI address", pci))?,
                pf: pf.clone(),
                index: *index,
                mac: mac(m)?,
                vlan: *vlan,
                qos: *qos,
                driver: driver.clone(),
                managed: *managed,
            }),
        })
    }
}

/// Everything a running VM holds on the host: per-NIC objects (names chosen at run time) and
/// the undo steps that release them, oldest first. Persist it to release the resources after
/// a daemon restart ([`HostResources::undo_stack`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostResources {
    /// Per-NIC host objects.
    pub nics: Vec<NicResource>,
    /// Undo steps, oldest first.
    pub undo: Vec<UndoRecord>,
}

impl HostResources {
    /// The undo steps as an [`UndoStack`] to roll back.
    pub fn undo_stack(&self) -> Result<UndoStack, VmError> {
        let steps = self
            .undo
            .iter()
            .map(UndoRecord::to_host_undo)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UndoStack::from(steps))
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
