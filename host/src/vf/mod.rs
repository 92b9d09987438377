//! SR-IOV virtual functions: find the PF, save and set MAC/VLAN through it, move the VF to
//! vfio-pci, and put everything back on release.

mod addr;
mod nl;
mod prepare;
mod sysfs;

pub use addr::PciAddr;
pub(crate) use prepare::{prepare, restore};
pub use sysfs::{Sysfs, WriteHook};

use crate::undo::HostUndo;
use virtnet_conf::interface::MacAddr;

/// The driver a VF is given to for device assignment.
pub const VFIO_PCI: &str = "vfio-pci";

/// Which VF to prepare and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfSpec {
    /// The VF's PCI address (`<source><address .../></source>`).
    pub addr: PciAddr,
    /// MAC to give the VF (set through the PF), `None` = leave as is.
    pub mac: Option<MacAddr>,
    /// VLAN tag to give the VF (`<vlan><tag id=.../></vlan>`), `None` = leave as is.
    pub vlan: Option<u16>,
    /// Driver the VF must be on (normally [`VFIO_PCI`]).
    pub driver: String,
    /// `managed='yes'`: virtnet binds the VF to `driver` and gives it back to its original
    /// driver on release. `managed='no'` (libvirt's meaning): the user has bound it already;
    /// virtnet only checks that and never writes the driver (MAC/VLAN are still set and
    /// restored through the PF).
    pub managed: bool,
}

impl VfSpec {
    /// A managed spec for `addr`, bound to vfio-pci, MAC and VLAN untouched.
    pub fn new(addr: PciAddr) -> Self {
        VfSpec {
            addr,
            mac: None,
            vlan: None,
            driver: VFIO_PCI.to_string(),
            managed: true,
        }
    }
}

/// What a VF looked like before we changed it. Stored (inside [`HostUndo::RestoreVf`]) with
/// the address under the key `pci`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedVf {
    /// The VF's PCI address.
    #[serde(rename = "pci")]
    pub addr: PciAddr,
    /// The PF's network device name.
    pub pf: String,
    /// The VF's index on the PF (`virtfnN`).
    pub index: u32,
    /// The VF's MAC before.
    pub mac: MacAddr,
    /// The VF's VLAN before (0 = none).
    pub vlan: u16,
    /// The VF's VLAN QoS before.
    pub qos: u32,
    /// The driver it was bound to before (`None` = unbound).
    pub driver: Option<String>,
    /// Whether virtnet manages the driver binding: restoring rebinds `driver` only if so.
    /// Records stored before this field existed were all managed.
    #[serde(default = "managed_default")]
    pub managed: bool,
}

fn managed_default() -> bool {
    true
}

/// A VF ready for the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedVf {
    /// The saved state.
    pub saved: SavedVf,
    /// Restores the saved state.
    pub undo: HostUndo,
}
