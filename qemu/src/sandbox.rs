//! How a confined QEMU runs: the identity it switches to. The rest of the confinement
//! (capabilities, NoNewPrivs, `-sandbox`, the private mount namespace) is decided from a
//! [`Sandbox`] when QEMU is spawned.
//!
//! `None` where a `Sandbox` is optional means QEMU runs as virtnetd's own user, unconfined
//! (the documented opt-out).

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

/// A confined QEMU: who it runs as. Built by virtnetd (or a test) and carried in the
/// start plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// The identity QEMU switches to before `exec`.
    pub user: QemuUser,
}
