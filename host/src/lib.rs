//! virtnet-host: Linux host network plumbing for VM NICs.
//!
//! Everything the VM start and hot-plug code needs from the host goes through the small
//! synchronous [`HostNet`] trait:
//! - taps on `/dev/net/tun` (`IFF_TAP|IFF_NO_PI|IFF_VNET_HDR`, multiqueue), created
//!   non-persistent so they vanish with their last fd (see [`tap`] for why), or opened by
//!   name for `managed='no'`;
//! - Linux bridge ports over rtnetlink (IFLA_MASTER, optional port isolation);
//! - macvtap devices on a host NIC, used through `/dev/tapN`;
//! - Open vSwitch ports for taps, with libvirt's `external_ids` ([`ovs`], through `ovs-vsctl`);
//! - SR-IOV VFs: MAC/VLAN through the PF, rebinding to vfio-pci, restore on release;
//! - an interface's `<script>`/`<downscript>`, run with the tap's name and a deadline
//!   ([`script`]);
//! - the VM's own cgroup with its memory, pids and CPU limits ([`cgroup`]);
//! - ownership of the files a confined QEMU opens by name, recorded and restored ([`dac`]).
//!
//! [`LinuxHost`] is the real implementation; [`FakeHost`] records calls and injects failures
//! for plan tests. Every change comes with a [`HostUndo`] step; [`UndoStack`] rolls back.
//! Netlink goes through [`netlink::NetlinkTransport`] so requests can be recorded
//! ([`netlink::RecordingNetlink`]); sysfs lives under a configurable root ([`Sysfs`]).

mod api;
pub mod bridge;
pub mod cgroup;
pub mod confine;
pub mod dac;
mod devnode;
mod error;
mod fake;
mod linux;
pub mod macvtap;
mod name;
pub mod netlink;
pub mod nft;
pub mod nwfilter;
pub mod ovn;
pub mod ovs;
pub mod script;
pub mod shaping;
pub mod switch_identity;
pub mod sysuser;
pub mod tap;
mod tun;
mod undo;
pub mod vf;

pub use api::HostNet;
pub use bridge::BridgePortOpts;
pub use cgroup::{CgroupGroup, CgroupLimits, CgroupPlacement, CgroupSpec, CreatedCgroup};
pub use confine::Confinement;
pub use dac::{Access, DacGrant, GrantSpec, Identity, PathNeed};
pub use error::{HostError, Result};
pub use fake::{FakeCall, FakeHost, OVS_BRIDGE};
pub use linux::LinuxHost;
pub use macvtap::{MacvtapHandle, MacvtapMode, MacvtapSpec};
pub use name::{validate_ifname, NameCounter, MAX_IFNAME_LEN};
pub use netlink::{LinkCounters, LinkStatus, Neighbour};
pub use nwfilter::{FilterSpec, FilterStatus, TapFilter};
pub use ovn::{LspOptionsChange, Nbctl};
pub use ovs::{OvsInterface, OvsNative, OvsPortSpec, OvsVlan, Vsctl};
pub use script::{
    ScriptFailure, ScriptKind, ScriptOutcome, ScriptRun, ScriptWait, DEFAULT_SCRIPT_TIMEOUT,
};
pub use shaping::{RateLimit, ShapeSpec};
pub use switch_identity::{SwitchIdentity, QEMU_USER, SWITCH_USER};
pub use sysuser::{ensure_system_group, ensure_system_user, lookup_group, lookup_user, SystemUser};
pub use tap::{TapHandle, TapSpec};
pub use tun::{open_tap_fd, tun_fd_info};
pub use undo::{HostUndo, UndoStack};
pub use vf::{PciAddr, PreparedVf, SavedVf, Sysfs, VfSpec};
/// The one MAC address type, conf's (its parser checks every group is hex).
pub use virtnet_conf::interface::{MacAddr, MacParseError};
