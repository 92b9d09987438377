//! How a confined QEMU runs: the identity it switches to, the device nodes its private `/dev`
//! holds, and the directories its mount namespace hides. [`crate::QemuSpawn::sandbox`] applies
//! it between `fork` and `exec` (see `process/confine.rs`); the argv builder adds QEMU's own
//! seccomp filter (`-sandbox on,...`, [`crate::RuntimePaths::sandbox`]).
//!
//! `None` where a `Sandbox` is optional means QEMU runs as virtnetd's own user, unconfined
//! (the documented opt-out).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The unprivileged identity QEMU runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuUser {
    /// The user name (`virtnet-qemu` by default), for messages.
    pub name: String,
    /// Its uid (never 0 for a confined QEMU).
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Supplementary groups QEMU keeps: only what the VM needs (`kvm` for `/dev/kvm`).
    pub groups: Vec<u32>,
}

/// A device node of the private `/dev`: bind-mounted from the host's node of the same path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DevNode {
    /// `/dev/null`.
    Null,
    /// `/dev/zero`.
    Zero,
    /// `/dev/full`.
    Full,
    /// `/dev/random`.
    Random,
    /// `/dev/urandom`.
    Urandom,
    /// `/dev/kvm` (domains of `type='kvm'`).
    Kvm,
    /// `/dev/vfio/vfio`, the VFIO container (domains with PCI host devices).
    VfioContainer,
    /// `/dev/vfio/N`, the IOMMU group of the PCI device at `address` (`0000:01:00.1`),
    /// looked up in sysfs when QEMU is spawned.
    VfioGroupOf {
        /// The device's PCI address, `DDDD:BB:SS.F`.
        address: String,
    },
}

impl DevNode {
    /// The nodes every confined QEMU gets.
    pub const BASE: [DevNode; 5] = [
        DevNode::Null,
        DevNode::Zero,
        DevNode::Full,
        DevNode::Random,
        DevNode::Urandom,
    ];

    /// The node's fixed path, `None` for a VFIO group (known only from sysfs).
    pub fn fixed_path(&self) -> Option<&'static str> {
        Some(match self {
            DevNode::Null => "/dev/null",
            DevNode::Zero => "/dev/zero",
            DevNode::Full => "/dev/full",
            DevNode::Random => "/dev/random",
            DevNode::Urandom => "/dev/urandom",
            DevNode::Kvm => "/dev/kvm",
            DevNode::VfioContainer => "/dev/vfio/vfio",
            DevNode::VfioGroupOf { .. } => return None,
        })
    }
}

/// A confined QEMU: who it runs as and what it sees. Built with [`Sandbox::new`] by virtnetd
/// (or a test); the start plan fills in the device nodes and paths from the domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// The identity QEMU switches to before `exec`.
    pub user: QemuUser,
    /// The nodes of QEMU's private `/dev` (besides a new devpts instance with its `ptmx`).
    #[serde(default)]
    pub dev: Vec<DevNode>,
    /// Directories covered by an empty tmpfs in QEMU's mount namespace (virtnetd's state
    /// dir, its run-dir root: other VMs' run dirs and the API socket).
    #[serde(default)]
    pub hide: Vec<PathBuf>,
    /// Directories inside a hidden one that stay reachable at the same path (this VM's run
    /// dir): bind-mounted back over the tmpfs.
    #[serde(default)]
    pub keep: Vec<PathBuf>,
}

impl Sandbox {
    /// A sandbox for `user` with only the base `/dev` nodes and nothing hidden.
    pub fn new(user: QemuUser) -> Self {
        Sandbox {
            user,
            dev: DevNode::BASE.to_vec(),
            hide: Vec::new(),
            keep: Vec::new(),
        }
    }
}
