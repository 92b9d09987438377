//! Planning a live migration, source side: pure, no I/O. [`plan_migrate`] refuses what cannot
//! be migrated and turns the options into a [`MigratePlan`]: steps in order, each with the
//! undo that takes it back, which [`crate::exec::migrate`] carries out.
//!
//! The split follows libvirt's (qemu_migration.c): the destination *prepares* (defines the
//! VM if needed, creates its NICs' host side, starts QEMU with `-incoming defer` and runs
//! `migrate-incoming`), the source *performs* (`migrate`, then waits for `completed`), the
//! destination *finishes* (`cont`, `announce-self`) and the source *confirms* (stops its QEMU,
//! releases its taps). Until the destination's guest runs, any failure undoes everything: the
//! destination is aborted (QEMU killed, taps gone, a definition it made removed) and the
//! source's migration cancelled and its guest resumed.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;
use virtnet_conf::interface::{InterfaceKind, InterfaceType};
use virtnet_conf::Domain;

use super::QmpCommand;
use crate::error::VmError;
pub use ovn::{ovs_iface_ids, OvnMove};
use virtnet_host::LspOptionsChange;

/// QEMU migration capabilities the source turns on: `events` (QEMU reports each state
/// change as a `MIGRATION` event) and `pause-before-switchover` off (QEMU 7.2 default, named
/// so the plan shows it).
const CAPABILITIES: &[(&str, bool)] = &[("events", true), ("pause-before-switchover", false)];

/// The prepare's URI for [`Stream::Unix`]: the destination answers `unix:PATH`.
pub const UNIX_URI: &str = "unix";

/// `max-bandwidth` when none is asked for: 1 TiB/s, i.e. unlimited (QEMU 7.2's own default
/// is 32 MiB/s; libvirt too lifts it unless `--bandwidth` is given).
pub const UNLIMITED_BANDWIDTH: u64 = 1 << 40;

/// How the migration stream travels from the source QEMU to the destination QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stream {
    /// TCP: the destination QEMU listens on `host` (an address of the destination host on the
    /// migration network), the source QEMU connects there.
    Tcp {
        /// The address.
        host: String,
        /// The port; 0 = the destination QEMU picks a free one.
        port: u16,
    },
    /// A unix socket, both virtnetds on one host: the destination virtnetd listens in its
    /// run dir and hands the connection to its QEMU as an fd; the source virtnetd connects and
    /// hands its end to its QEMU the same way (`getfd`, `fd:` URIs), so neither confined QEMU
    /// needs to reach the socket's path.
    Unix,
}

/// What `virtnet migrate --live` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateOptions {
    /// The destination virtnetd, as given (its API socket).
    pub dest: String,
    /// How the migration stream travels.
    pub stream: Stream,
    /// How long the migration itself may take once started (then it is cancelled).
    pub timeout_ms: u64,
    /// Bandwidth limit of the migration stream in bytes/s (virsh `--bandwidth`, in MiB/s
    /// there); `None` = [`UNLIMITED_BANDWIDTH`].
    pub max_bandwidth: Option<u64>,
    /// Remove the source's persistent definition once the guest runs on the destination
    /// (virsh `--undefinesource`).
    pub undefine_source: bool,
    /// The switch networks of the source (a `type='network'` NIC on one is a vhost-user NIC on
    /// virtnet-vswitch).
    pub switch_networks: BTreeSet<String>,
    /// Where the switch networks' vhost-user sockets are.
    pub switch_socket_dir: Option<PathBuf>,
    /// OVN's part (`virtnetd --ovn-nb`): the chassis and the VM's logical switch ports;
    /// `None`: no OVN handling.
    pub ovn: Option<OvnMove>,
}

/// One thing the migration does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum MigrateAction {
    /// OVN: the logical switch port may be bound on both chassis while the guest moves
    /// (`requested-chassis=SRC,DST`, `activation-strategy=rarp`).
    OvnAllowBoth {
        /// The change in the Northbound database.
        change: LspOptionsChange,
    },
    /// The destination defines the VM (when it has no definition of it), creates its NICs'
    /// host side and starts QEMU with `-incoming defer`, listening on `uri`.
    Prepare {
        /// `tcp:HOST:PORT` (port 0: the destination's QEMU picks one and says which).
        uri: String,
    },
    /// `migrate-set-capabilities` on the source QEMU.
    SetCapabilities {
        /// `(capability, state)`.
        capabilities: Vec<(String, bool)>,
    },
    /// `migrate-set-parameters` on the source QEMU.
    SetParameters {
        /// `max-bandwidth` in bytes/s.
        max_bandwidth: u64,
    },
    /// `migrate` on the source QEMU to the URI the destination listens on.
    Migrate,
    /// Poll `query-migrate` until `completed` (the source's guest is paused then); `failed`,
    /// `cancelled` or the deadline fail the step.
    WaitCompleted {
        /// Deadline from the start of the step.
        timeout_ms: u64,
    },
    /// The destination `cont`s its QEMU and sends `announce-self`: the guest runs there now.
    Finish,
    /// OVN: the logical switch port is the destination's alone (`requested-chassis=DST`,
    /// no `activation-strategy`). No undo: the guest runs on the destination.
    OvnBindDestination {
        /// The change in the Northbound database.
        change: LspOptionsChange,
    },
    /// The source stops its QEMU and releases its host resources (taps, run dir). No undo:
    /// the guest runs on the destination.
    StopSource,
    /// The source removes its persistent definition (`--undefinesource`).
    UndefineSource,
}

/// What takes a step back, run newest first on a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum MigrateUndo {
    /// The destination kills its QEMU, releases its taps and removes a definition it made.
    AbortDestination,
    /// OVN: the logical switch port's options put back as they were before the move.
    OvnRestore {
        /// The change in the Northbound database.
        change: LspOptionsChange,
    },
    /// `migrate_cancel` on the source, wait until QEMU says the migration is over, then `cont`
    /// if the source's guest was left paused (a migration that had completed pauses it).
    CancelAndResume,
}

/// A step and its undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateStep {
    /// What to do.
    #[serde(flatten)]
    pub action: MigrateAction,
    /// What undoes it (`None`: nothing to undo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<MigrateUndo>,
}

/// A whole live migration, decided before anything is touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigratePlan {
    /// The VM.
    pub vm: String,
    /// The destination virtnetd.
    pub dest: String,
    /// The steps, in order.
    pub steps: Vec<MigrateStep>,
}

impl MigratePlan {
    /// One line per step with its undo.
    pub fn summary(&self) -> String {
        let mut s = format!("migrate VM '{}' to {}\n", self.vm, self.dest);
        for (n, st) in self.steps.iter().enumerate() {
            s.push_str(&format!("  {n}: {}", st.action.describe()));
            if let Some(u) = &st.undo {
                s.push_str(&format!(" (undo: {})", u.describe()));
            }
            s.push('\n');
        }
        s
    }
}

impl MigrateAction {
    /// A short description for progress lines and errors.
    pub fn describe(&self) -> String {
        match self {
            MigrateAction::OvnAllowBoth { change } => {
                format!(
                    "OVN: bind on both chassis during the move ({})",
                    change.describe()
                )
            }
            MigrateAction::OvnBindDestination { change } => {
                format!("OVN: bind on the destination only ({})", change.describe())
            }
            MigrateAction::Prepare { uri } => {
                format!("destination prepares the VM (QEMU -incoming, listening on {uri})")
            }
            MigrateAction::SetCapabilities { capabilities } => format!(
                "set migration capabilities {}",
                capabilities
                    .iter()
                    .map(|(c, s)| format!("{c}={}", if *s { "on" } else { "off" }))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            MigrateAction::SetParameters { max_bandwidth } => {
                format!("set migration parameters max-bandwidth={max_bandwidth} B/s")
            }
            MigrateAction::Migrate => "start the migration (QMP migrate)".into(),
            MigrateAction::WaitCompleted { timeout_ms } => {
                format!("wait for the migration to complete (at most {timeout_ms} ms)")
            }
            MigrateAction::Finish => "destination resumes the guest and announces it".into(),
            MigrateAction::StopSource => "stop the source QEMU, release its host side".into(),
            MigrateAction::UndefineSource => "remove the source's definition".into(),
        }
    }
}

impl MigrateUndo {
    /// A short description.
    pub fn describe(&self) -> String {
        match self {
            MigrateUndo::AbortDestination => {
                "abort the destination (QEMU, taps, definition)".into()
            }
            MigrateUndo::CancelAndResume => "migrate_cancel, resume the source guest".into(),
            MigrateUndo::OvnRestore { change } => {
                format!("OVN: restore ({})", change.describe())
            }
        }
    }
}

/// Plans the migration of the running VM whose live definition is `live`. Refused
/// ([`VmError::NotMigratable`]), before anything is done: hostdev NICs (libvirt too needs
/// failover teaming to migrate them: the VF is unplugged first), vhost-user NICs on
/// virtnet-vswitch (the switch does not log the guest pages it writes: no `VHOST_F_LOG_ALL` /
/// `VHOST_USER_SET_LOG_BASE`, so pages written during the migration would be lost), vDPA NICs.
pub fn plan_migrate(live: &Domain, opts: &MigrateOptions) -> Result<MigratePlan, VmError> {
    let mut problems = Vec::new();
    for iface in &live.devices.interfaces {
        let what = iface.describe();
        match iface.type_() {
            InterfaceType::Hostdev => problems.push(format!(
                "{what}: a hostdev NIC (a VF passed through) cannot be migrated: QEMU cannot move \
                 the device's state, libvirt migrates it only with failover teaming (the VF \
                 unplugged and a virtio NIC carrying the traffic); detach it first"
            )),
            InterfaceType::Vdpa => problems.push(format!(
                "{what}: a vDPA NIC cannot be migrated by virtnet; detach it first"
            )),
            _ => {}
        }
        if on_switch(iface, opts) {
            problems.push(format!(
                "{what}: a NIC on virtnet-vswitch cannot be migrated yet: the switch does not \
                 log the guest pages it writes (VHOST_F_LOG_ALL / VHOST_USER_SET_LOG_BASE are \
                 not implemented), so pages it writes during the migration would be lost; \
                 detach it before migrating and attach it again on the destination"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(VmError::NotMigratable {
            vm: live.name().to_string(),
            problems,
        });
    }
    let uri = match &opts.stream {
        Stream::Tcp { host, .. } if host.is_empty() => {
            return Err(VmError::InvalidContext(
                "no address for the migration stream: give the destination's address".into(),
            ))
        }
        Stream::Tcp { host, port } if host.contains(':') && !host.starts_with('[') => {
            format!("tcp:[{host}]:{port}") // IPv6
        }
        Stream::Tcp { host, port } => format!("tcp:{host}:{port}"),
        Stream::Unix => UNIX_URI.to_string(),
    };
    let step = |action, undo| MigrateStep { action, undo };
    let ovn = opts
        .ovn
        .as_ref()
        .map(|o| ovn::port_changes(live, o))
        .unwrap_or_default();
    // OVN first: the destination's port (made by the prepare) must not be claimed by its
    // chassis before the port may be bound there as an additional chassis.
    let mut steps: Vec<MigrateStep> = ovn
        .iter()
        .map(|(begin, restore, _)| {
            step(
                MigrateAction::OvnAllowBoth {
                    change: begin.clone(),
                },
                Some(MigrateUndo::OvnRestore {
                    change: restore.clone(),
                }),
            )
        })
        .collect();
    steps.extend([
        step(
            MigrateAction::Prepare { uri },
            Some(MigrateUndo::AbortDestination),
        ),
        step(
            MigrateAction::SetCapabilities {
                capabilities: CAPABILITIES
                    .iter()
                    .map(|(c, s)| (c.to_string(), *s))
                    .collect(),
            },
            None,
        ),
        step(
            MigrateAction::SetParameters {
                max_bandwidth: opts.max_bandwidth.unwrap_or(UNLIMITED_BANDWIDTH),
            },
            None,
        ),
        step(MigrateAction::Migrate, Some(MigrateUndo::CancelAndResume)),
        step(
            MigrateAction::WaitCompleted {
                timeout_ms: opts.timeout_ms,
            },
            None,
        ),
        step(MigrateAction::Finish, None),
    ]);
    steps.extend(ovn.into_iter().map(|(_, _, complete)| {
        step(MigrateAction::OvnBindDestination { change: complete }, None)
    }));
    steps.push(step(MigrateAction::StopSource, None));
    if opts.undefine_source {
        steps.push(step(MigrateAction::UndefineSource, None));
    }
    Ok(MigratePlan {
        vm: live.name().to_string(),
        dest: opts.dest.clone(),
        steps,
    })
}

/// Whether `iface` is a vhost-user NIC on virtnet-vswitch: `type='network'` on a switch
/// network, or a vhost-user socket in the switch networks' directory (the live form of the
/// same NIC).
fn on_switch(iface: &virtnet_conf::Interface, opts: &MigrateOptions) -> bool {
    match iface.kind() {
        InterfaceKind::Network { network, .. } => opts.switch_networks.contains(&network.value),
        InterfaceKind::VhostUser { socket: Some(s) } => opts
            .switch_socket_dir
            .as_ref()
            .is_some_and(|d| std::path::Path::new(&s.path.value).starts_with(d)),
        _ => false,
    }
}

/// The QMP commands that end a destination start (after the usual post-start ones): QEMU
/// reports migration events, then listens on `uri`; an `fd:NAME` URI (the stream over a
/// connection virtnetd accepts and passes later) gets no `migrate-incoming` here: the caller
/// sends it with the fd.
pub(crate) fn incoming_commands(uri: &str) -> Vec<QmpCommand> {
    let mut v = vec![QmpCommand {
        execute: "migrate-set-capabilities".into(),
        arguments: json!({ "capabilities": [{ "capability": "events", "state": true }] }),
    }];
    if !uri.starts_with("fd:") {
        v.push(QmpCommand {
            execute: "migrate-incoming".into(),
            arguments: json!({ "uri": uri }),
        });
    }
    v
}

/// The domain the destination runs: the source's live definition without its domain id and
/// without the host device names virtnet generated (`vnetN`, `macvtapN`: the destination
/// picks its own, as libvirt does); device aliases stay, so QEMU's device ids match. A
/// `managed='no'` target names a tap that exists on the host, whatever its name: it stays.
pub fn destination_domain(live: &Domain) -> Domain {
    let mut d = live.clone();
    d.id = None;
    for iface in &mut d.devices.interfaces {
        if let Some(t) = iface.target.as_mut().filter(|t| t.managed != Some(false)) {
            if t.dev.as_ref().is_some_and(|n| generated_name(&n.value)) {
                t.dev = None;
            }
        }
    }
    d
}

/// `vnet7`, `macvtap0`: names virtnet (and libvirt) pick for host devices.
fn generated_name(name: &str) -> bool {
    ["vnet", "macvtap"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

mod ovn;

#[cfg(test)]
mod tests;
