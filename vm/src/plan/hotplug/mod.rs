//! Planning live NIC hot-plug and unplug: pure, no I/O.
//!
//! [`plan_attach`] gives a new interface its QEMU ids and a free guest PCI slot, then lays
//! out, in libvirt's order (`qemuDomainAttachNetDevice`), the host steps (fds go to `getfd`
//! names), `getfd` for each fd, `chardev-add` (vhost-user), for a vhost-user socket QEMU
//! listens on a wait until a back end has connected to it (QEMU 7.2's `netdev_add` would
//! otherwise block QEMU until one does), `netdev_add`, `device_add` (only
//! this, after the VF step, for hostdev) and `set_link` when the link is configured down. Each
//! step carries its undo. [`plan_detach`] lays out `device_del`, the wait for
//! `DEVICE_DELETED`, `netdev_del`, `chardev-remove` and the host cleanup.

mod ids;
mod resources;
mod types;

#[cfg(test)]
mod tests;

use serde_json::json;
use virtnet_conf::interface::{InterfaceKind, SocketMode, Spanned, Target};
use virtnet_conf::validate::validate_new_interface;
use virtnet_conf::xml::{parse_document, write_document, Limits};
use virtnet_conf::{Domain, Interface};
use virtnet_qemu::validate::{validate_interface, Operation};
use virtnet_qemu::{
    netdev_json, nic_device_json, vhostuser_chardev, GuestCtx, NicIds, NicSpec, QemuCaps,
};

pub use ids::live_ids;
pub use types::{
    describe_undo, AttachAction, AttachPlan, AttachStep, AttachStepId, AttachUndo, DetachPlan,
    DetachStep, FdFrom,
};

use super::{effective_caps, nic_plan, FdNaming, FdSink, QmpCommand};
use crate::error::VmError;
use crate::exec::HostResources;

fn qmp(execute: &str, arguments: serde_json::Value) -> QmpCommand {
    QmpCommand {
        execute: execute.to_string(),
        arguments,
    }
}

/// A name for messages: `interface 52:54:00:00:00:05 (type='bridge')`.
fn describe(iface: &Interface) -> String {
    format!("{} (type='{}')", iface.describe(), iface.type_())
}

/// Plans hot-plugging `iface` into the running VM whose live definition is `live`.
///
/// `live` must hold every interface QEMU has (including ones whose detach is pending) with
/// the ids QEMU knows them by (aliases, as the live definition records them). `iface` is the
/// new interface, validated; it needs a MAC (assign one first, except for hostdev). It gets:
/// - an alias = its QEMU id (`netN`/`hostdevN`, N one past the highest in use), unless the
///   user gave one (`ua-...`), which must be free;
/// - the first free hot-pluggable PCI slot when it is a PCI device without an address.
///
/// The result is checked against the live domain ([`validate_new_interface`]: duplicate MAC,
/// tap name, PCI address, vhost-user socket, ...). `caps` are the QEMU binary's (under TCG no
/// vhost-net, and vhost-user NICs get `vectors=0`).
///
/// Errors: [`VmError::Refused`] (what [`virtnet_qemu::validate`] refuses for
/// [`Operation::Attach`]: unresolved `network`, `vdpa`, passt, socket back ends, USB hostdev,
/// ...), [`VmError::InvalidHotplug`]
/// (conflicts, no free slot, alias taken), and the per-interface planning errors of
/// [`nic_plan`].
pub fn plan_attach(
    live: &Domain,
    iface: &Interface,
    caps: &QemuCaps,
) -> Result<AttachPlan, VmError> {
    let mut new = iface.clone();
    new.fill_defaults();
    let nic = describe(&new);
    validate_interface(Operation::Attach, live, &new, Some(caps)).map_err(VmError::Refused)?;
    ids::assign_alias(live, &mut new, &nic)?;
    let pci_address = ids::assign_pci_slot(live, &mut new, &nic)?;
    let problems: Vec<String> = validate_new_interface(live, &new)
        .iter()
        .map(|e| e.to_string())
        .collect();
    if !problems.is_empty() {
        return Err(VmError::InvalidHotplug {
            vm: live.name().to_string(),
            nic,
            problems,
        });
    }

    let mut with = live.clone();
    with.devices.interfaces.push(new.clone());
    let index = with.devices.interfaces.len() - 1;
    let planned = nic_plan(&with, index, caps, &mut FdNaming::GetFd)?;
    let caps = effective_caps(&with, caps);
    let spec = NicSpec {
        iface: &new,
        index,
        ids: NicIds::new(&with.devices.interfaces, index),
        // `<os><boot dev='network'/>` applies at boot only; a hot-plugged NIC boots nothing.
        bootindex: new.boot_order(),
    };
    let nic = spec.describe();

    let mut steps = Vec::new();
    let mut fd_names = Vec::new();
    for (n, h) in planned.steps.iter().enumerate() {
        steps.push(AttachStep {
            id: AttachStepId::Host(n),
            action: AttachAction::Host(h.clone()),
            undo: AttachUndo::HostUndo,
        });
    }
    for (n, h) in planned.steps.iter().enumerate() {
        let Some(FdSink::GetFd(names)) = h.fds() else {
            continue;
        };
        for (i, name) in names.iter().enumerate() {
            steps.push(AttachStep {
                id: AttachStepId::GetFd(fd_names.len()),
                action: AttachAction::Qmp {
                    command: qmp("getfd", json!({ "fdname": name })),
                    fd: Some(FdFrom {
                        host_step: n,
                        index: i,
                    }),
                },
                undo: AttachUndo::Qmp(qmp("closefd", json!({ "fdname": name }))),
            });
            fd_names.push(name.clone());
        }
    }
    let chardev = vhostuser_chardev(&spec, &caps).map_err(VmError::argv)?;
    if let Some(c) = &chardev {
        steps.push(AttachStep {
            id: AttachStepId::ChardevAdd,
            action: AttachAction::Qmp {
                command: qmp("chardev-add", c.qmp_args.clone()),
                fd: None,
            },
            undo: AttachUndo::Qmp(qmp("chardev-remove", json!({ "id": c.id }))),
        });
        if let Some(socket) = server_socket(&new) {
            steps.push(AttachStep {
                id: AttachStepId::WaitBackEnd,
                action: AttachAction::WaitBackEnd {
                    chardev: c.id.clone(),
                    socket,
                },
                undo: AttachUndo::Nothing,
            });
        }
    }
    if let Some(netdev) = &planned.netdev_id {
        let args = netdev_json(&spec, &planned.qemu_backend(), &caps).map_err(VmError::argv)?;
        steps.push(AttachStep {
            id: AttachStepId::NetdevAdd,
            action: AttachAction::Qmp {
                command: qmp("netdev_add", args),
                fd: None,
            },
            undo: AttachUndo::Qmp(qmp("netdev_del", json!({ "id": netdev }))),
        });
    }
    let guest = GuestCtx::new(caps, with.domain_type(), with.machine_is_q35());
    let device = nic_device_json(&spec, &guest).map_err(VmError::argv)?;
    steps.push(AttachStep {
        id: AttachStepId::DeviceAdd,
        action: AttachAction::Qmp {
            command: qmp("device_add", device),
            fd: None,
        },
        undo: AttachUndo::DeviceDel {
            id: planned.device_id.clone(),
        },
    });
    if !new.link_up() && !new.is_hostdev() {
        steps.push(AttachStep {
            id: AttachStepId::SetLink,
            action: AttachAction::Qmp {
                command: qmp(
                    "set_link",
                    json!({ "name": planned.device_id, "up": false }),
                ),
                fd: None,
            },
            undo: AttachUndo::Nothing,
        });
    }

    Ok(AttachPlan {
        vm: live.name().to_string(),
        index,
        type_: planned.type_,
        nic,
        device_id: planned.device_id,
        netdev_id: planned.netdev_id,
        chardev_id: chardev.map(|c| c.id),
        mac: planned.mac,
        pci_address,
        backend: planned.backend,
        fd_names,
        steps,
        interface_xml: interface_xml(&new),
        interface: new,
    })
}

/// The socket of a vhost-user interface on which QEMU listens (`mode='server'`).
fn server_socket(iface: &Interface) -> Option<String> {
    match &iface.kind {
        InterfaceKind::VhostUser { socket: Some(s) } if s.mode == SocketMode::Server => {
            Some(s.path.value.clone())
        }
        _ => None,
    }
}

/// The canonical XML of one interface.
pub(crate) fn interface_xml(iface: &Interface) -> String {
    write_document(&iface.to_element())
}

/// Reads back an interface written by [`interface_xml`].
pub(crate) fn parse_interface(xml: &str) -> Result<Interface, VmError> {
    parse_document(xml, Limits::default())
        .and_then(Interface::from_element)
        .map_err(|e| VmError::InvalidContext(format!("stored interface XML is damaged: {e}")))
}

/// `iface` with `<target dev>` set to the host link it got at run time (when it had none).
pub(crate) fn with_target_dev(iface: &Interface, link: Option<&str>) -> Interface {
    let mut i = iface.clone();
    if let Some(name) = link {
        let t = i.target.get_or_insert_with(Target::default);
        if t.dev.is_none() {
            t.dev = Some(Spanned::new(name.to_string()));
        }
    }
    i
}

/// Plans unplugging `iface`, an interface of the running VM's live definition `live` (found
/// by the caller, e.g. by MAC or alias), whose host objects are among `held` (the VM's
/// [`HostResources`]: those made at start plus those of earlier attaches).
///
/// The interface's host objects are found by its `<target dev>` (taps, macvtaps: the live
/// definition records the names) or VF address, else by its index. Steps: `device_del`, wait
/// for `DEVICE_DELETED`, `netdev_del` (not for hostdev), `chardev-remove` (vhost-user), then
/// the host cleanup newest first (managed tap/macvtap deleted, VF restored; a `managed='no'`
/// tap is left alone).
pub fn plan_detach(
    live: &Domain,
    iface: &Interface,
    held: &HostResources,
) -> Result<DetachPlan, VmError> {
    let list = &live.devices.interfaces;
    let index = list.iter().position(|i| i == iface).ok_or_else(|| {
        VmError::InvalidContext(format!(
            "{} is not an interface of the running VM '{}': match it in the live definition",
            describe(iface),
            live.name()
        ))
    })?;
    let ids = NicIds::new(list, index);
    let spec = NicSpec {
        iface,
        index,
        ids: ids.clone(),
        bootindex: None,
    };
    let host = resources::of_interface(held, iface, index);
    let mut steps = vec![
        DetachStep::DeviceDel {
            id: ids.device.clone(),
        },
        DetachStep::WaitDeviceDeleted {
            id: ids.device.clone(),
        },
    ];
    let netdev_id = (!iface.is_hostdev()).then(|| ids.netdev.clone());
    if let Some(id) = &netdev_id {
        steps.push(DetachStep::NetdevDel { id: id.clone() });
    }
    let chardev_id = matches!(iface.kind, InterfaceKind::VhostUser { .. }).then(|| ids.chardev);
    if let Some(id) = &chardev_id {
        steps.push(DetachStep::ChardevRemove { id: id.clone() });
    }
    for u in host.undo.iter().rev() {
        steps.push(DetachStep::Host { undo: u.clone() });
    }
    Ok(DetachPlan {
        vm: live.name().to_string(),
        index,
        nic: spec.describe(),
        type_: iface.type_().as_str().to_string(),
        mac: iface.mac(),
        device_id: ids.device,
        netdev_id,
        chardev_id,
        steps,
        host,
    })
}
