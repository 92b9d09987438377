//! NIC hot-plug and unplug on a running VM: the daemon's side of `virtnet_vm`'s hot-plug plans
//! and executor ([`virtnet_vm::plan_attach`], [`virtnet_vm::exec::attach`],
//! [`virtnet_vm::plan_detach`], [`virtnet_vm::exec::detach`],
//! [`virtnet_vm::exec::complete_detach`]). It keeps the live status in step: the VM's host
//! objects (`host_resources`: those made at start plus those of each attach, minus those of
//! each detach) and the detaches waiting for the guest (`pending_detaches`), so that a
//! restarted daemon can unplug a NIC and release its host side.

use std::time::Duration;

use serde_json::json;
use virtnet_conf::Interface;
use virtnet_host::HostNet;
use virtnet_qemu::validate::Operation;
use virtnet_qemu::QemuCaps;
use virtnet_vm::exec::{self, DetachOutcome, PendingDetach};
use virtnet_vm::plan::PlannedBackend;
use virtnet_vm::{
    plan_attach, plan_detach, AttachPlan, AttachStepId, AttachedNic, HotplugOptions, VmError,
};

use super::{LateObjects, Live, Stall};
use crate::error::{DaemonError, Result};
use crate::store::LiveStatus;

/// How long undoing a plug, or finishing a removal whose device is gone, may wait for the
/// guest.
const UNDO_WAIT: Duration = Duration::from_secs(10);

/// A NIC just plugged in.
#[derive(Debug, Clone)]
pub struct Plugged {
    /// The interface as plugged (alias, host device name, guest address).
    pub iface: Interface,
    nic: AttachedNic,
}

impl Plugged {
    /// Records the NIC in `status`: its host objects join the VM's, its QEMU ids the aliases.
    pub fn record_into(&self, status: &mut LiveStatus) {
        let what = self.iface.describe();
        let n = &self.nic;
        status.host_resources.add(&n.host);
        status.aliases.insert(n.device_id.clone(), what.clone());
        for id in n.netdev_id.iter().chain(&n.chardev_id) {
            status
                .aliases
                .insert(id.clone(), format!("back end of {what}"));
        }
    }
}

/// How an unplug went.
#[derive(Debug)]
pub enum Unplug {
    /// The NIC is gone from QEMU and the host.
    Done,
    /// The guest has not released it yet; the status records it as pending.
    Pending,
}

/// The daemon's error for a hot-plug error of the vm crate.
fn vm_error(e: VmError) -> DaemonError {
    match e {
        VmError::Refused(r) => crate::ops::refused(Operation::Attach, r),
        VmError::InvalidHotplug { problems, .. } => DaemonError::InvalidXml { problems },
        VmError::DetachPending { vm, device, .. } => DaemonError::RemovalPending { vm, device },
        other => DaemonError::hotplug(other),
    }
}

/// `l`'s scripts write to its log.
fn options(l: &Live, unplug_timeout: Duration) -> HotplugOptions {
    HotplugOptions {
        unplug_timeout,
        vm_log: l.status.log_path.clone(),
        ..HotplugOptions::default()
    }
}

/// Plugs `iface` (MAC assigned, validated) into the running VM: planned against the live
/// definition, every step undone if a later one fails. `backend_timeout` bounds the wait for
/// a vhost-user back end to connect to a socket QEMU listens on. A QMP command that gets no
/// reply in time marks the VM stalled (see [`Stall`]), with what the late reply may create.
pub async fn plug(
    l: &Live,
    host: &dyn HostNet,
    caps: &QemuCaps,
    iface: &Interface,
    backend_timeout: Duration,
) -> Result<Plugged> {
    let plan = plan_attach(&l.domain, iface, caps)
        .map_err(vm_error)?
        .confine(l.status.sandbox.as_ref());
    let qmp = l.qmp_client().await?;
    let opts = HotplugOptions {
        backend_timeout,
        ..options(l, UNDO_WAIT)
    };
    let nic = match exec::attach(&plan, host, &qmp, &opts).await {
        Ok(nic) => nic,
        Err(e) if e.qemu_stalled() => {
            l.qmp.mark_stalled(stall_of(&plan, &e));
            if let Some(socket) = waits_for_a_connection(&plan, &e) {
                super::rescue::spawn_rescue(&l.status.name, socket);
            }
            return Err(DaemonError::PlugStalled {
                vm: l.status.name.clone(),
                source: Box::new(e),
            });
        }
        Err(e) => return Err(vm_error(e)),
    };
    let iface = nic.interface().map_err(vm_error)?;
    Ok(Plugged { iface, nic })
}

/// The socket QEMU listens on when it stalled inside `netdev_add` of a `mode='server'`
/// vhost-user NIC: there it waits for a back end to complete the handshake (see `rescue`).
fn waits_for_a_connection(plan: &AttachPlan, e: &VmError) -> Option<std::path::PathBuf> {
    match &plan.backend {
        PlannedBackend::VhostUser { socket, mode }
            if mode == "server" && e.failed_attach_step() == Some(AttachStepId::NetdevAdd) =>
        {
            Some(socket.into())
        }
        _ => None,
    }
}

/// The stall an attach ran into: which step got no reply, and what QEMU may still create.
fn stall_of(plan: &AttachPlan, e: &VmError) -> Stall {
    let step = e
        .failed_attach_step()
        .map_or_else(|| "a command".to_string(), |s| format!("`{s}`"));
    let mut reason = format!("{step} of the attach of {} got no reply", plan.nic);
    let mut sockets = Vec::new();
    if let PlannedBackend::VhostUser { socket, mode } = &plan.backend {
        reason.push_str(&format!(
            "; QEMU waits for the vhost-user back end on {socket} to answer its handshake \
             (stop or fix that back end)"
        ));
        if mode == "server" {
            sockets.push(socket.into());
        }
    }
    let late = LateObjects {
        device: Some(plan.device_id.clone()),
        netdev: plan.netdev_id.clone(),
        chardev: plan.chardev_id.clone(),
    };
    Stall::new("attach-device", reason, late, sockets)
}

/// Undoes a plug that cannot be kept (its status could not be written); returns what could
/// not be undone.
pub async fn unplug_now(l: &Live, host: &dyn HostNet, p: &Plugged) -> Vec<String> {
    let mut live = (*l.domain).clone();
    live.devices.interfaces.push(p.iface.clone());
    let plan = match plan_detach(&live, &p.iface, &p.nic.host) {
        Ok(plan) => plan,
        Err(e) => return vec![e.to_string()],
    };
    let qmp = match l.qmp_client().await {
        Ok(q) => q,
        Err(e) => return vec![e.to_string()],
    };
    let mut pending = exec::PendingDetaches::default();
    match exec::detach(&plan, host, &qmp, &mut pending, &options(l, UNDO_WAIT)).await {
        Ok(DetachOutcome::Done(r)) => r.left_behind,
        Ok(DetachOutcome::Pending(_)) => vec![format!(
            "the guest did not release {} within {UNDO_WAIT:?}",
            p.nic.device_id
        )],
        Err(e) => vec![e.to_string()],
    }
}

/// Unplugs interface `index` of the live definition, waiting up to `timeout` for the guest.
/// Done: its host objects leave `status`. Not released in time: `status` records the pending
/// detach (the interface stays in the live definition until it completes).
pub async fn unplug(
    l: &mut Live,
    host: &dyn HostNet,
    index: usize,
    timeout: Duration,
    status: &mut LiveStatus,
) -> Result<Unplug> {
    let iface = &l.domain.devices.interfaces[index];
    let plan = plan_detach(&l.domain, iface, &status.host_resources).map_err(vm_error)?;
    let qmp = l.qmp_client().await?;
    let outcome = exec::detach(
        &plan,
        host,
        &qmp,
        &mut status.pending_detaches,
        &options(l, timeout),
    )
    .await
    .map_err(|e| {
        if e.qemu_stalled() {
            let reason = format!("the detach of {} got no reply: {e}", plan.nic);
            let stall = Stall::new("detach-device", reason, LateObjects::default(), vec![]);
            l.qmp.mark_stalled(stall);
        }
        vm_error(e)
    })?;
    Ok(match outcome {
        DetachOutcome::Done(r) => {
            released(&l.status.name, status, &r);
            Unplug::Done
        }
        DetachOutcome::Pending(_) => Unplug::Pending,
    })
}

/// The detach `r` finished: its host objects and QEMU ids leave `status`.
fn released(vm: &str, status: &mut LiveStatus, r: &exec::DetachReport) {
    status.host_resources.remove_part(&r.released);
    let prefixes = ["", "host", "char"];
    for p in prefixes {
        status.aliases.remove(&format!("{p}{}", r.device_id));
    }
    for left in &r.left_behind {
        tracing::error!(vm = %vm, device = %r.device_id, leftover = %left, "not cleaned up after an unplug");
    }
}

/// Finishes the pending detach of `alias` once QEMU no longer has the device; its records
/// leave `status`. Returns what could not be cleaned up.
pub async fn finish(
    l: &mut Live,
    host: &dyn HostNet,
    alias: &str,
    status: &mut LiveStatus,
) -> Vec<String> {
    let qmp = match l.qmp_client().await {
        Ok(q) => q,
        Err(e) => return vec![e.to_string()],
    };
    match exec::complete_detach(
        alias,
        host,
        &qmp,
        &mut status.pending_detaches,
        &options(l, UNDO_WAIT),
    )
    .await
    {
        Ok(DetachOutcome::Done(r)) => {
            released(&l.status.name, status, &r);
            r.left_behind
        }
        Ok(DetachOutcome::Pending(_)) => {
            vec![format!(
                "the guest still has {alias}; its removal stays pending"
            )]
        }
        Err(e) => vec![e.to_string()],
    }
}

/// Records NIC `alias` of the live definition as removed by the guest without a detach
/// (QEMU reported `DEVICE_DELETED` for a device nobody asked to remove: the guest ejected it,
/// or honoured an old request): its removal is then finished as a pending detach's
/// ([`finish`]: `netdev_del`, `chardev-remove`, host objects). False when `alias` is no NIC
/// of the live definition or its removal is already pending.
pub fn adopt_guest_removal(l: &Live, alias: &str, status: &mut LiveStatus) -> Result<bool> {
    if is_pending(status, alias) {
        return Ok(false);
    }
    let Some(iface) = l
        .domain
        .devices
        .interfaces
        .iter()
        .find(|i| i.alias() == Some(alias))
    else {
        return Ok(false);
    };
    let plan = plan_detach(&l.domain, iface, &status.host_resources).map_err(vm_error)?;
    status.pending_detaches.record(&plan, None);
    Ok(true)
}

/// Whether a detach of device `alias` waits for the guest.
pub fn is_pending(status: &LiveStatus, alias: &str) -> bool {
    status.pending_detaches.get(alias).is_some()
}

/// The devices whose detach waits for the guest.
pub fn pending_devices(status: &LiveStatus) -> Vec<String> {
    status
        .pending_detaches
        .pending
        .iter()
        .map(|p: &PendingDetach| p.plan.device_id.clone())
        .collect()
}

/// Whether QEMU still has device `alias` (`qom-list /machine/peripheral`).
pub async fn device_present(l: &Live, alias: &str) -> Result<bool> {
    Ok(device_ids(l).await?.contains(alias))
}

/// The ids of the devices QEMU has (`qom-list /machine/peripheral`).
pub async fn device_ids(l: &Live) -> Result<std::collections::BTreeSet<String>> {
    let list = l
        .qmp(
            "detach-device",
            "qom-list",
            json!({"path": "/machine/peripheral"}),
        )
        .await?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect())
}
