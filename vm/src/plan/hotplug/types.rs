//! The value types of hot-plug plans: plain, serialisable data, so plans can be shown,
//! snapshot-tested, and (for a detach that stays pending) stored.

use std::fmt;

use serde::{Deserialize, Serialize};
use virtnet_conf::Interface;

use virtnet_host::{GrantSpec, HostUndo, MacAddr};

use crate::exec::HostResources;
use crate::plan::{HostStep, PlannedBackend, QmpCommand};

/// Which step of an attach: for messages and for fault injection
/// ([`crate::exec::HotplugOptions::fail_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachStepId {
    /// Give QEMU's user access to the path it opens (a confined VM's vhost-user client
    /// socket).
    Access,
    /// Host step `n` (tap, macvtap, vhost-net, VF).
    Host(usize),
    /// `getfd` number `n` (one per fd the host steps opened).
    GetFd(usize),
    /// `chardev-add` (vhost-user).
    ChardevAdd,
    /// Wait until a back end has connected to the chardev QEMU listens on (vhost-user
    /// `mode='server'`).
    WaitBackEnd,
    /// `netdev_add`.
    NetdevAdd,
    /// `device_add`.
    DeviceAdd,
    /// `set_link` (link configured down).
    SetLink,
}

impl fmt::Display for AttachStepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachStepId::Access => f.write_str("access"),
            AttachStepId::Host(n) => write!(f, "host step {n}"),
            AttachStepId::GetFd(n) => write!(f, "getfd {n}"),
            AttachStepId::ChardevAdd => f.write_str("chardev-add"),
            AttachStepId::WaitBackEnd => f.write_str("wait for the back end"),
            AttachStepId::NetdevAdd => f.write_str("netdev_add"),
            AttachStepId::DeviceAdd => f.write_str("device_add"),
            AttachStepId::SetLink => f.write_str("set_link"),
        }
    }
}

/// Which fd a `getfd` sends: fd `index` of host step `host_step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdFrom {
    /// The host step that opens it (index among the plan's host steps).
    pub host_step: usize,
    /// Which of its fds (queue number).
    pub index: usize,
}

/// What one attach step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachAction {
    /// Give QEMU's user access to a path it opens by name ([`virtnet_host::dac`]); its undo
    /// is a host undo record.
    Access(GrantSpec),
    /// Something on the host (creates a tap, opens fds, prepares a VF).
    Host(HostStep),
    /// A QMP command, with an fd passed alongside (`getfd`) when `fd` is set.
    Qmp {
        /// The command.
        command: QmpCommand,
        /// The fd to pass with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fd: Option<FdFrom>,
    },
    /// Wait until a back end has connected to the listening socket of chardev `chardev`
    /// (`query-chardev` shows its filename without the `disconnected:` prefix), within
    /// [`crate::exec::HotplugOptions::backend_timeout`].
    ///
    /// Why: QEMU 7.2's `netdev_add` of a vhost-user netdev blocks QEMU (monitor included)
    /// until a back end connects to the chardev and completes the handshake; so no
    /// `netdev_add` is sent before one has connected.
    WaitBackEnd {
        /// The chardev id (`charnet1`).
        chardev: String,
        /// The socket QEMU listens on (for messages).
        socket: String,
    },
}

/// How one attach step is undone when a later step fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachUndo {
    /// The host step's own undo records, known once it ran (names are chosen at run time):
    /// delete the tap/macvtap, take it off the bridge, restore the VF.
    HostUndo,
    /// A QMP command (`closefd`, `chardev-remove`, `netdev_del`). "Not found" counts as done:
    /// `netdev_add` takes the `getfd` fds it uses, and a failed command may have added nothing.
    Qmp(QmpCommand),
    /// `device_del`, then wait for `DEVICE_DELETED` (the guest must release the device).
    DeviceDel {
        /// The device id.
        id: String,
    },
    /// Nothing to undo (removing the device undoes it).
    Nothing,
}

/// One step of an attach and its undo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachStep {
    /// Which step.
    pub id: AttachStepId,
    /// What it does.
    #[serde(rename = "do")]
    pub action: AttachAction,
    /// How it is undone.
    pub undo: AttachUndo,
}

impl AttachStep {
    /// A one-line description: the host step, or the QMP command and its arguments.
    pub fn describe(&self) -> String {
        match &self.action {
            AttachAction::Access(g) => g.describe(),
            AttachAction::Host(h) => h.describe(),
            AttachAction::Qmp { command, .. } => {
                format!("{} {}", command.execute, command.arguments)
            }
            AttachAction::WaitBackEnd { chardev, socket } => {
                format!("wait until a back end has connected to {socket} (chardev {chardev})")
            }
        }
    }
}

/// Everything needed to hot-plug one interface into a running VM, decided before anything is
/// touched ([`super::plan_attach`]). Carry it out with [`crate::exec::attach`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttachPlan {
    /// The domain name.
    pub vm: String,
    /// The interface's index once added to the live domain (it goes last).
    pub index: usize,
    /// The interface type (`bridge`, `vhostuser`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// A name for messages (`interface 52:54:00:.. (#2, type='bridge')`).
    pub nic: String,
    /// QEMU device id (`net2`, `hostdev1`, or the user alias): for `device_del`, `set_link`.
    pub device_id: String,
    /// QEMU netdev id (`hostnet2`); none for hostdev.
    pub netdev_id: Option<String>,
    /// The vhost-user chardev id (`charnet2`).
    pub chardev_id: Option<String>,
    /// The guest MAC.
    pub mac: Option<MacAddr>,
    /// The guest PCI address given to the device (`0000:00:05.0`), if it is a PCI device.
    pub pci_address: Option<String>,
    /// QEMU's side.
    pub backend: PlannedBackend,
    /// The `getfd` names used (`tapfd-net2`, `vhostfd-net2-0`, ...).
    pub fd_names: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<AttachStep>,
    /// The interface as it goes into the live definition: with its alias (the device id) and
    /// guest PCI address filled in.
    pub interface_xml: String,
    /// The same, as a value.
    #[serde(skip)]
    pub interface: Interface,
}

impl AttachPlan {
    /// For a confined QEMU (`sandbox`), adds the step that gives its user the path it opens
    /// for this interface (a `mode='client'` vhost-user socket), first, so a path it cannot
    /// reach refuses the attach before anything changes. Held by `<vm>/<device id>`, so the
    /// detach of this NIC gives it back.
    pub fn confine(mut self, sandbox: Option<&virtnet_qemu::Sandbox>) -> Self {
        let Some(sb) = sandbox else {
            return self;
        };
        let Some(need) = crate::plan::paths::interface_path(&self.interface, &self.nic) else {
            return self;
        };
        let holder = format!("{}/{}", self.vm, self.device_id);
        let spec = crate::plan::paths::grants(vec![need], sb, &holder).remove(0);
        self.steps.insert(
            0,
            AttachStep {
                id: AttachStepId::Access,
                action: AttachAction::Access(spec),
                undo: AttachUndo::HostUndo,
            },
        );
        self
    }

    /// Every step id, in order (what a test iterates to fail each in turn).
    pub fn step_ids(&self) -> Vec<AttachStepId> {
        self.steps.iter().map(|s| s.id).collect()
    }

    /// The host steps, in order.
    pub fn host_steps(&self) -> impl Iterator<Item = &HostStep> {
        self.steps.iter().filter_map(|s| match &s.action {
            AttachAction::Host(h) => Some(h),
            AttachAction::Qmp { .. }
            | AttachAction::WaitBackEnd { .. }
            | AttachAction::Access(_) => None,
        })
    }

    /// The step with this id.
    pub fn step(&self, id: AttachStepId) -> Option<&AttachStep> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The QMP command of step `id`, if it is one (tests edit plans through this).
    pub fn qmp_mut(&mut self, id: AttachStepId) -> Option<&mut QmpCommand> {
        self.steps
            .iter_mut()
            .find(|s| s.id == id)
            .and_then(|s| match &mut s.action {
                AttachAction::Qmp { command, .. } => Some(command),
                AttachAction::Host(_)
                | AttachAction::WaitBackEnd { .. }
                | AttachAction::Access(_) => None,
            })
    }

    /// A short human summary: one line per step with its undo.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "attach {} to VM '{}' as {}\n",
            self.nic, self.vm, self.device_id
        );
        for st in &self.steps {
            let undo = match &st.undo {
                AttachUndo::HostUndo => "host undo".to_string(),
                AttachUndo::Qmp(c) => format!("{} {}", c.execute, c.arguments),
                AttachUndo::DeviceDel { id } => format!("device_del {id} + DEVICE_DELETED"),
                AttachUndo::Nothing => "-".to_string(),
            };
            s.push_str(&format!("  {}: {}  (undo: {undo})\n", st.id, st.describe()));
        }
        s
    }
}

/// One step of a detach, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum DetachStep {
    /// QMP `device_del`: ask the guest to release the device.
    DeviceDel {
        /// Device id.
        id: String,
    },
    /// Wait for `DEVICE_DELETED` (event-driven, with a timeout; on timeout the detach stays
    /// pending).
    WaitDeviceDeleted {
        /// Device id.
        id: String,
    },
    /// QMP `netdev_del` (closes QEMU's tap fds: a managed tap vanishes with them).
    NetdevDel {
        /// Netdev id.
        id: String,
    },
    /// QMP `chardev-remove` (vhost-user: closes the socket).
    ChardevRemove {
        /// Chardev id.
        id: String,
    },
    /// Release a host object (newest first): delete a tap or macvtap, restore a VF.
    Host {
        /// The undo step applied.
        undo: HostUndo,
    },
}

impl DetachStep {
    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            DetachStep::DeviceDel { id } => format!("device_del {id}"),
            DetachStep::WaitDeviceDeleted { id } => format!("wait for DEVICE_DELETED of {id}"),
            DetachStep::NetdevDel { id } => format!("netdev_del {id}"),
            DetachStep::ChardevRemove { id } => format!("chardev-remove {id}"),
            DetachStep::Host { undo } => format!("host: {}", describe_undo(undo)),
        }
    }
}

/// A one-line description of a host undo record.
pub fn describe_undo(u: &HostUndo) -> String {
    match u {
        HostUndo::DeleteLink { name, .. } => format!("delete link '{name}'"),
        HostUndo::DetachFromBridge { port, bridge } => {
            format!("take '{port}' off bridge '{bridge}'")
        }
        HostUndo::OvsDelPort { port, bridge } => {
            format!("remove port '{port}' from Open vSwitch bridge '{bridge}'")
        }
        HostUndo::SetMac { name, mac } => format!("give '{name}' back MAC {mac}"),
        HostUndo::RestoreVf(saved) => format!("restore VF {}", saved.addr),
        HostUndo::RunScript(run) => format!("run downscript {} {}", run.path.display(), run.ifname),
        HostUndo::RemoveCgroup(g) => format!("remove cgroup {}", g.describe()),
        HostUndo::Unshape { dev, .. } => format!("remove the bandwidth limits of '{dev}'"),
        HostUndo::RestoreOwner(g) => g.describe(),
        HostUndo::DeleteNftTable { family, name } => {
            format!("delete nftables table {family} {name}")
        }
    }
}

/// Everything needed to unplug one interface ([`super::plan_detach`]); carry it out with
/// [`crate::exec::detach`]. Plain data: a detach that stays pending is stored as its plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachPlan {
    /// The domain name.
    pub vm: String,
    /// The interface's index in the live domain when planned.
    pub index: usize,
    /// A name for messages.
    pub nic: String,
    /// The interface type.
    #[serde(rename = "type")]
    pub type_: String,
    /// The guest MAC.
    pub mac: Option<MacAddr>,
    /// QEMU device id.
    pub device_id: String,
    /// QEMU netdev id (none for hostdev).
    pub netdev_id: Option<String>,
    /// The vhost-user chardev id.
    pub chardev_id: Option<String>,
    /// The steps, in order.
    pub steps: Vec<DetachStep>,
    /// The host objects of this interface and their undo records (a part of the VM's
    /// [`HostResources`]): remove them from the VM's record once the detach is done
    /// ([`HostResources::remove_part`]).
    pub host: HostResources,
}

impl DetachPlan {
    /// A short human summary, one line per step.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "detach {} ({}) from VM '{}'\n",
            self.nic, self.device_id, self.vm
        );
        for st in &self.steps {
            s.push_str(&format!("  {}\n", st.describe()));
        }
        s
    }
}
