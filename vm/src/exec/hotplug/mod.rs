//! Carrying out hot-plug plans on a running VM: [`attach`] with undo of every earlier step on
//! any failure, [`detach`] with a removal that stays pending when the guest does not release
//! the device in time, and [`complete_detach`] to finish such a removal later.
//!
//! A vhost-user NIC whose socket QEMU listens on (`mode='server'`) gets `netdev_add` only once
//! a back end has connected ([`HotplugOptions::backend_timeout`], [`VmError::NoBackEnd`]).
//! Every QMP command has its own deadline ([`HotplugOptions::command_timeout`]): QEMU 7.2 can
//! still stall inside `netdev_add` (a back end that connects but does not answer, or fails
//! the handshake). When a deadline passes, the command may still take
//! effect later, so its undo is sent too: QEMU runs the queued undo commands in order once its
//! monitor answers again. The error then says which undo commands were only sent.
//!
//! Host calls are synchronous and quick (netlink, ioctls); they run on the calling task, so the
//! thread's network namespace is the one taps are made in.

mod attach;
mod detach;
mod qmp;

#[cfg(test)]
mod fake_qmp;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use attach::attach;
pub use detach::{
    complete_detach, detach, DetachOutcome, DetachReport, PendingDetach, PendingDetaches,
};

use super::resources::HostResources;
use crate::error::VmError;
use crate::plan::hotplug::parse_interface;
use crate::plan::AttachStepId;
use virtnet_conf::Interface;

/// How to run hot-plug plans.
#[derive(Debug, Clone)]
pub struct HotplugOptions {
    /// Test hook: fail with [`VmError::InjectedHotplug`] at this attach step, before doing it.
    pub fail_at: Option<AttachStepId>,
    /// Deadline of each QMP command. Default 10 s.
    pub command_timeout: Duration,
    /// How long to wait for `DEVICE_DELETED` after `device_del`: in [`detach`] (then the
    /// removal stays pending) and when undoing a `device_add`. Default 10 s.
    pub unplug_timeout: Duration,
    /// How long to wait for a vhost-user back end to connect to a socket QEMU listens on
    /// (`mode='server'`) before `netdev_add` ([`crate::plan::AttachAction::WaitBackEnd`]);
    /// then the attach fails with [`VmError::NoBackEnd`]. Default 10 s.
    pub backend_timeout: Duration,
    /// Deadline of each undo command once a command has timed out (QEMU's monitor is then
    /// likely stalled; the undo commands are sent and run when it answers again). Default 1 s.
    pub stalled_undo_timeout: Duration,
    /// Deadline of each `<script>`/`<downscript>`. Default
    /// [`virtnet_host::DEFAULT_SCRIPT_TIMEOUT`] (10 s).
    pub script_timeout: Duration,
    /// The VM's log, where scripts' output goes ([`crate::exec::RunningVm::log_path`]).
    pub vm_log: Option<PathBuf>,
}

impl Default for HotplugOptions {
    fn default() -> Self {
        HotplugOptions {
            fail_at: None,
            command_timeout: Duration::from_secs(10),
            unplug_timeout: Duration::from_secs(10),
            backend_timeout: Duration::from_secs(10),
            stalled_undo_timeout: Duration::from_secs(1),
            script_timeout: virtnet_host::DEFAULT_SCRIPT_TIMEOUT,
            vm_log: None,
        }
    }
}

/// An interface hot-plugged by [`attach`]: what it is in QEMU and on the host, as plain data
/// the daemon persists (with the VM's live status) to detach it later, after a restart too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedNic {
    /// The domain name.
    pub vm: String,
    /// Its index in the live domain (it was added last).
    pub index: usize,
    /// The interface type.
    #[serde(rename = "type")]
    pub type_: String,
    /// The guest MAC.
    pub mac: Option<virtnet_host::MacAddr>,
    /// QEMU device id.
    pub device_id: String,
    /// QEMU netdev id.
    pub netdev_id: Option<String>,
    /// vhost-user chardev id.
    pub chardev_id: Option<String>,
    /// Guest PCI address.
    pub pci_address: Option<String>,
    /// The `getfd` names the fds were passed under (QEMU's `netdev_add` took them over).
    pub fd_names: Vec<String>,
    /// The host objects it uses (tap, macvtap, VF) and the undo records that release them.
    /// Add them to the VM's record ([`HostResources::add`]).
    pub host: HostResources,
    /// The interface as it now is in the live definition: alias (= device id), guest PCI
    /// address, and `<target dev>` naming the tap/macvtap created.
    pub interface_xml: String,
}

impl AttachedNic {
    /// The interface as it now is in the live definition (see [`AttachedNic::interface_xml`]).
    pub fn interface(&self) -> Result<Interface, VmError> {
        parse_interface(&self.interface_xml)
    }
}

impl VmError {
    /// For [`VmError::AttachFailed`], the step that failed.
    pub fn failed_attach_step(&self) -> Option<AttachStepId> {
        match self {
            VmError::AttachFailed { step_id, .. } => Some(*step_id),
            _ => None,
        }
    }
}

impl VmError {
    /// Whether QEMU's monitor stopped answering: a QMP command of the operation (directly, or
    /// as the cause of a failed attach or detach) got no reply within its deadline. The
    /// command, and the undo sent after it, may still run once QEMU answers again.
    pub fn qemu_stalled(&self) -> bool {
        match self {
            VmError::AttachFailed { cause, .. } | VmError::DetachFailed { cause, .. } => {
                cause.qemu_stalled()
            }
            VmError::Qemu { source, .. } => {
                matches!(**source, virtnet_qemu::QemuError::CommandTimeout { .. })
            }
            _ => false,
        }
    }
}

/// Milliseconds since the epoch.
fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
