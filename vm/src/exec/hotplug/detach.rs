//! [`detach`] and [`complete_detach`]: unplugging a NIC, with a removal that stays pending
//! (not lost) when the guest does not release the device in time.
//!
//! PCI unplug needs the guest: QEMU only asks it (ACPI or PCIe hot-plug) and removes the device
//! when it acknowledges, then reports `DEVICE_DELETED`. A guest that is paused, not booted far
//! enough, or without hot-plug support never does. After the timeout the removal request
//! stays in QEMU and the detach is recorded in [`PendingDetaches`]; a second detach of the
//! device is refused ([`VmError::DetachPending`]); [`complete_detach`] finishes it (back end,
//! host objects) once the device is gone, e.g. when the caller sees `DEVICE_DELETED` or on a
//! retry.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use virtnet_host::HostNet;
use virtnet_qemu::{QemuError, QmpClient};

use super::qmp::{self, command, is_not_found, is_unplug_in_progress};
use super::{now_unix_ms, HotplugOptions};
use crate::error::VmError;
use crate::exec::HostResources;
use crate::plan::{describe_undo, DetachPlan, DetachStep};

/// A detach whose device the guest has not released yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDetach {
    /// The plan, to finish it with.
    pub plan: DetachPlan,
    /// When `device_del` was sent (milliseconds since the epoch).
    pub since_unix_ms: u64,
}

/// The pending detaches of one VM, by device id: keep one per VM (with its live status) and
/// give it to every [`detach`] and [`complete_detach`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDetaches {
    /// The pending detaches, oldest first.
    pub pending: Vec<PendingDetach>,
}

impl PendingDetaches {
    /// The pending detach of `device`, if any.
    pub fn get(&self, device: &str) -> Option<&PendingDetach> {
        self.pending.iter().find(|p| p.plan.device_id == device)
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Records the detach `plan` as pending from now (its `device_del` was sent, or the
    /// guest removed the device by itself) and returns the record.
    pub fn record(&mut self, plan: &DetachPlan, since_unix_ms: Option<u64>) -> PendingDetach {
        let p = PendingDetach {
            plan: plan.clone(),
            since_unix_ms: since_unix_ms.unwrap_or_else(now_unix_ms),
        };
        self.pending.push(p.clone());
        p
    }

    /// Forgets the pending detach of `device` (e.g. the VM stopped), returning it.
    pub fn remove(&mut self, device: &str) -> Option<PendingDetach> {
        let i = self
            .pending
            .iter()
            .position(|p| p.plan.device_id == device)?;
        Some(self.pending.remove(i))
    }
}

/// How a detach ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetachOutcome {
    /// The device is gone, its back end removed and its host objects released.
    Done(DetachReport),
    /// The guest did not release the device within the timeout. The removal stays requested
    /// in QEMU and is recorded in the [`PendingDetaches`] given; keep the interface in the live
    /// definition until [`complete_detach`] returns `Done`.
    Pending(PendingDetach),
}

/// What a finished detach did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachReport {
    /// The device id removed.
    pub device_id: String,
    /// The host objects released: remove them from the VM's record
    /// ([`HostResources::remove_part`]).
    pub released: HostResources,
    /// Back end or host objects that could not be released (empty = clean). The device itself
    /// is gone either way.
    pub left_behind: Vec<String>,
}

/// Unplugs the interface `plan` describes: `device_del`, then waits (event-driven) up to
/// `opts.unplug_timeout` for `DEVICE_DELETED`, then `netdev_del`, `chardev-remove` and the
/// host cleanup.
///
/// Refuses with [`VmError::DetachPending`] while a detach of the same device is pending in
/// `pending`. On timeout, records the detach in `pending` and returns
/// [`DetachOutcome::Pending`]. A device QEMU no longer has counts as removed.
pub async fn detach(
    plan: &DetachPlan,
    host: &dyn HostNet,
    qmp: &QmpClient,
    pending: &mut PendingDetaches,
    opts: &HotplugOptions,
) -> Result<DetachOutcome, VmError> {
    if let Some(p) = pending.get(&plan.device_id) {
        return Err(VmError::DetachPending {
            vm: plan.vm.clone(),
            device: plan.device_id.clone(),
            since: format!(
                "{:.1} s ago",
                now_unix_ms().saturating_sub(p.since_unix_ms) as f64 / 1000.0
            ),
        });
    }
    let since_unix_ms = now_unix_ms();
    let gone = request_removal(plan, qmp, opts).await?;
    if !gone && !wait_deleted(plan, qmp, opts.unplug_timeout).await? {
        tracing::warn!(vm = %plan.vm, device = %plan.device_id,
            timeout = ?opts.unplug_timeout, "guest did not release the device; detach pending");
        let p = pending.record(plan, Some(since_unix_ms));
        return Ok(DetachOutcome::Pending(p));
    }
    Ok(DetachOutcome::Done(finish(plan, host, qmp, opts).await))
}

/// Finishes the pending detach of `device`: when QEMU no longer has the device (its
/// `DEVICE_DELETED` came, seen or not), removes the back end and host objects and drops it
/// from `pending`. Otherwise asks the guest again (`device_del`, for a guest that missed the
/// first request) and waits up to `opts.unplug_timeout`; still not released: `Pending` again.
pub async fn complete_detach(
    device: &str,
    host: &dyn HostNet,
    qmp: &QmpClient,
    pending: &mut PendingDetaches,
    opts: &HotplugOptions,
) -> Result<DetachOutcome, VmError> {
    let Some(p) = pending.get(device).cloned() else {
        return Err(VmError::NoPendingDetach {
            device: device.to_string(),
        });
    };
    let plan = &p.plan;
    let exists = qmp::device_exists(qmp, device, opts.command_timeout)
        .await
        .map_err(|e| failed(plan, "checking whether QEMU still has the device", e))?;
    if exists {
        let gone = request_removal(plan, qmp, opts).await?;
        if !gone && !wait_deleted(plan, qmp, opts.unplug_timeout).await? {
            return Ok(DetachOutcome::Pending(p));
        }
    }
    pending.remove(device);
    Ok(DetachOutcome::Done(finish(plan, host, qmp, opts).await))
}

fn failed(plan: &DetachPlan, step: &str, e: QemuError) -> VmError {
    VmError::DetachFailed {
        vm: plan.vm.clone(),
        nic: plan.nic.clone(),
        step: step.to_string(),
        cause: Box::new(VmError::Qemu {
            what: format!("device '{}'", plan.device_id),
            source: Box::new(e),
        }),
    }
}

/// `device_del`; true when QEMU no longer has the device.
async fn request_removal(
    plan: &DetachPlan,
    qmp: &QmpClient,
    opts: &HotplugOptions,
) -> Result<bool, VmError> {
    match qmp::device_del(qmp, &plan.device_id, opts.command_timeout).await {
        Ok(()) => Ok(false),
        Err(e) if is_not_found(&e) => Ok(true),
        // Requested before and still in progress in QEMU: wait for it.
        Err(e) if is_unplug_in_progress(&e) => Ok(false),
        Err(e) => Err(failed(plan, "device_del", e)),
    }
}

/// Waits for `DEVICE_DELETED`; false on timeout.
async fn wait_deleted(
    plan: &DetachPlan,
    qmp: &QmpClient,
    timeout: Duration,
) -> Result<bool, VmError> {
    match qmp.wait_for_device_deleted(&plan.device_id, timeout).await {
        Ok(()) => Ok(true),
        Err(QemuError::DeviceDeleteTimeout { .. }) => Ok(false),
        Err(e) => Err(failed(plan, "waiting for DEVICE_DELETED", e)),
    }
}

/// After the device is gone: back end, chardev, host objects. Never fails: what cannot be
/// released is reported.
async fn finish(
    plan: &DetachPlan,
    host: &dyn HostNet,
    qmp: &QmpClient,
    opts: &HotplugOptions,
) -> DetachReport {
    let mut left = Vec::new();
    for step in &plan.steps {
        let cmd = match step {
            DetachStep::DeviceDel { .. } | DetachStep::WaitDeviceDeleted { .. } => continue,
            DetachStep::NetdevDel { id } => command("netdev_del", serde_json::json!({ "id": id })),
            DetachStep::ChardevRemove { id } => {
                command("chardev-remove", serde_json::json!({ "id": id }))
            }
            DetachStep::Host { undo } => {
                let what = describe_undo(undo);
                let r = match undo {
                    virtnet_host::HostUndo::RunScript(run) => {
                        crate::exec::host::run_script(host, run, what).await
                    }
                    u => u
                        .apply(host)
                        .map_err(|source| VmError::Host { what, source }),
                };
                if let Err(e) = r {
                    left.push(e.to_string());
                }
                continue;
            }
        };
        match qmp::run(qmp, &cmd, None, opts.command_timeout).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => left.push(format!("{}: {e}", step.describe())),
        }
    }
    if left.is_empty() {
        tracing::info!(vm = %plan.vm, device = %plan.device_id, "NIC detached");
    } else {
        tracing::error!(vm = %plan.vm, device = %plan.device_id, ?left, "NIC detached; cleanup incomplete");
    }
    DetachReport {
        device_id: plan.device_id.clone(),
        released: plan.host.clone(),
        left_behind: left,
    }
}
