//! [`attach`]: runs an [`AttachPlan`] step by step, recording each step's undo before the next
//! one starts; on a failure anywhere, undoes everything done, newest first.

use std::os::fd::{AsFd, OwnedFd};

use virtnet_host::{HostNet, UndoStack};
use virtnet_qemu::QmpClient;

use super::qmp::{self, is_not_found, is_timeout};
use super::{AttachedNic, HotplugOptions};
use crate::error::VmError;
use crate::exec::host::{open_step, ScriptEnv};
use crate::exec::HostResources;
use crate::plan::hotplug::{interface_xml, with_target_dev};
use crate::plan::{AttachAction, AttachPlan, AttachStep, AttachStepId, AttachUndo, QmpCommand};

/// An undo still to do on the QEMU side.
enum QemuUndo {
    /// A command (`closefd`, `chardev-remove`, `netdev_del`).
    Command(QmpCommand),
    /// `device_del` + `DEVICE_DELETED`.
    DeviceDel(String),
}

/// What was done so far.
#[derive(Default)]
struct Progress {
    host_undo: UndoStack,
    res: HostResources,
    /// Our copies of the fds each host step opened (taken as `getfd` passes them).
    fds: Vec<Vec<Option<OwnedFd>>>,
    /// QEMU-side undo, oldest first, with the step it undoes.
    qemu_undo: Vec<(AttachStepId, QemuUndo)>,
    /// A command timed out: QEMU's monitor may be stalled.
    stalled: bool,
}

/// Hot-plugs the interface `plan` describes into the VM `qmp` is connected to, using `host`
/// for taps, macvtaps and VFs (in the calling thread's network namespace).
///
/// On failure at any step, every earlier step is undone in reverse (`device_del` + wait,
/// `netdev_del`, `chardev-remove`, `closefd`, tap/macvtap deleted, VF restored) and the error,
/// [`VmError::AttachFailed`], names the step and QEMU's reason (class and description); its
/// `cleanup` lists whatever could not be undone or only sent (a stalled monitor). Returns what
/// the NIC holds, to store with the VM.
pub async fn attach(
    plan: &AttachPlan,
    host: &dyn HostNet,
    qmp: &QmpClient,
    opts: &HotplugOptions,
) -> Result<AttachedNic, VmError> {
    let mut p = Progress::default();
    match run(plan, host, qmp, opts, &mut p).await {
        Ok(()) => {
            p.fds.clear();
            let link = p
                .res
                .nics
                .iter()
                .find(|r| r.kind.is_link())
                .map(|r| r.name.as_str());
            let live = with_target_dev(&plan.interface, link);
            tracing::info!(vm = %plan.vm, device = %plan.device_id, "NIC attached");
            Ok(AttachedNic {
                vm: plan.vm.clone(),
                index: plan.index,
                type_: plan.type_.clone(),
                mac: plan.mac,
                device_id: plan.device_id.clone(),
                netdev_id: plan.netdev_id.clone(),
                chardev_id: plan.chardev_id.clone(),
                pci_address: plan.pci_address.clone(),
                fd_names: plan.fd_names.clone(),
                host: p.res,
                interface_xml: interface_xml(&live),
            })
        }
        Err((step_id, cause)) => {
            tracing::warn!(vm = %plan.vm, device = %plan.device_id, %step_id, error = %cause,
                "attach failed; undoing");
            let cleanup = undo(qmp, host, opts, &mut p).await;
            // `host step 0`, else `step netdev_add`: the word "step" once.
            let label = match step_id {
                AttachStepId::Host(_) => step_id.to_string(),
                _ => format!("step {step_id}"),
            };
            let step = plan
                .step(step_id)
                .map(|s| format!("{label} (`{}`)", s.describe()))
                .unwrap_or(label);
            Err(VmError::AttachFailed {
                what: format!("{} to VM '{}'", plan.nic, plan.vm),
                step,
                step_id,
                cause: Box::new(cause),
                cleanup,
            })
        }
    }
}

type StepResult = Result<(), (AttachStepId, VmError)>;

async fn run(
    plan: &AttachPlan,
    host: &dyn HostNet,
    qmp: &QmpClient,
    opts: &HotplugOptions,
    p: &mut Progress,
) -> StepResult {
    let env = ScriptEnv {
        log: opts.vm_log.clone(),
        timeout: opts.script_timeout,
    };
    for step in &plan.steps {
        if opts.fail_at == Some(step.id) {
            return Err((step.id, VmError::InjectedHotplug(step.id.to_string())));
        }
        tracing::debug!(vm = %plan.vm, step = %step.id, what = %step.describe(), "attach step");
        match &step.action {
            AttachAction::Access(g) => {
                let host_err = |source| VmError::Host {
                    what: g.describe(),
                    source,
                };
                for u in g.apply().map_err(host_err).map_err(|e| (step.id, e))? {
                    p.res.undo.push(u.clone());
                    p.host_undo.push(u);
                }
            }
            AttachAction::Host(h) => {
                let fds = open_step(host, h, &env, &mut p.host_undo, &mut p.res)
                    .await
                    .map_err(|e| (step.id, e))?;
                p.fds.push(fds.into_iter().map(Some).collect());
            }
            AttachAction::Qmp { command, fd } => {
                run_qmp_step(step, command, fd.as_ref(), qmp, opts, p)
                    .await
                    .map_err(|e| (step.id, e))?;
            }
            AttachAction::WaitBackEnd { chardev, socket } => {
                wait_back_end(qmp, chardev, opts)
                    .await
                    .map_err(|e| match e {
                        WaitError::Deadline(waited) => VmError::NoBackEnd {
                            nic: plan.nic.clone(),
                            socket: socket.clone(),
                            waited,
                            at_start: false,
                        },
                        WaitError::Qmp(cmd, e) => {
                            if is_timeout(&e) {
                                p.stalled = true;
                            }
                            qmp::error(&cmd, e)
                        }
                        WaitError::Gone => VmError::InvalidContext(format!(
                            "chardev '{chardev}' vanished from QEMU while waiting for its back \
                             end"
                        )),
                    })
                    .map_err(|e| (step.id, e))?;
            }
        }
    }
    Ok(())
}

async fn run_qmp_step(
    step: &AttachStep,
    cmd: &QmpCommand,
    fd: Option<&crate::plan::FdFrom>,
    qmp: &QmpClient,
    opts: &HotplugOptions,
    p: &mut Progress,
) -> Result<(), VmError> {
    let owned = match fd {
        Some(from) => {
            let fd = p
                .fds
                .get_mut(from.host_step)
                .and_then(|v| v.get_mut(from.index))
                .and_then(Option::take)
                .ok_or_else(|| {
                    VmError::InvalidContext(format!(
                        "the plan passes fd {} of host step {}, which opened no such fd",
                        from.index, from.host_step
                    ))
                })?;
            Some(fd)
        }
        None => None,
    };
    let r = qmp::run(
        qmp,
        cmd,
        owned.as_ref().map(|f| f.as_fd()),
        opts.command_timeout,
    )
    .await;
    // QEMU has its own copy now (or never will): ours is closed here.
    drop(owned);
    match r {
        Ok(_) => {
            if step.id == AttachStepId::NetdevAdd {
                // netdev_add took the getfd fds over: no name is left to close.
                p.qemu_undo
                    .retain(|(id, _)| !matches!(id, AttachStepId::GetFd(_)));
            }
            push_undo(step, p);
            Ok(())
        }
        Err(e) => {
            if is_timeout(&e) {
                // It may still happen once QEMU answers again: undo it too.
                p.stalled = true;
                push_undo(step, p);
            }
            Err(qmp::error(cmd, e))
        }
    }
}

/// Why [`wait_back_end`] stopped waiting.
enum WaitError {
    /// No back end connected within this long.
    Deadline(std::time::Duration),
    /// `query-chardev` failed.
    Qmp(QmpCommand, virtnet_qemu::QemuError),
    /// QEMU has no such chardev.
    Gone,
}

/// Polls `query-chardev` until chardev `id` has a peer: its filename loses the
/// `disconnected:` prefix (QEMU 7.2 has no event for a socket chardev's connection).
async fn wait_back_end(qmp: &QmpClient, id: &str, opts: &HotplugOptions) -> Result<(), WaitError> {
    let cmd = qmp::command("query-chardev", serde_json::json!({}));
    let start = tokio::time::Instant::now();
    loop {
        let list = qmp::run(qmp, &cmd, None, opts.command_timeout)
            .await
            .map_err(|e| WaitError::Qmp(cmd.clone(), e))?;
        let filename = list.as_array().and_then(|l| {
            l.iter()
                .find(|c| c["label"] == id)
                .map(|c| c["filename"].as_str().unwrap_or_default().to_string())
        });
        match filename {
            None => return Err(WaitError::Gone),
            Some(f) if !f.starts_with("disconnected:") => return Ok(()),
            Some(_) => {}
        }
        let waited = start.elapsed();
        if waited >= opts.backend_timeout {
            return Err(WaitError::Deadline(waited));
        }
        tokio::time::sleep(BACK_END_POLL.min(opts.backend_timeout - waited)).await;
    }
}

/// How often [`wait_back_end`] asks QEMU.
const BACK_END_POLL: std::time::Duration = std::time::Duration::from_millis(10);

fn push_undo(step: &AttachStep, p: &mut Progress) {
    let u = match &step.undo {
        AttachUndo::Qmp(c) => QemuUndo::Command(c.clone()),
        AttachUndo::DeviceDel { id } => QemuUndo::DeviceDel(id.clone()),
        AttachUndo::HostUndo | AttachUndo::Nothing => return,
    };
    p.qemu_undo.push((step.id, u));
}

/// Undoes what `p` records, newest first; returns what could not be undone (or only sent).
async fn undo(
    qmp: &QmpClient,
    host: &dyn HostNet,
    opts: &HotplugOptions,
    p: &mut Progress,
) -> Vec<String> {
    let mut left = Vec::new();
    let deadline = if p.stalled {
        opts.stalled_undo_timeout
    } else {
        opts.command_timeout
    };
    while let Some((id, u)) = p.qemu_undo.pop() {
        match u {
            QemuUndo::Command(cmd) => match qmp::run(qmp, &cmd, None, deadline).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) if is_timeout(&e) => left.push(format!(
                    "`{} {}` (undo of {id}) was sent but QEMU did not answer within \
                     {deadline:?}: its monitor is stalled; QEMU runs it when it answers again",
                    cmd.execute, cmd.arguments
                )),
                Err(e) => left.push(format!(
                    "`{} {}` (undo of {id}): {e}",
                    cmd.execute, cmd.arguments
                )),
            },
            QemuUndo::DeviceDel(dev) => match qmp::device_del(qmp, &dev, deadline).await {
                Ok(_) => {
                    if let Err(e) = qmp.wait_for_device_deleted(&dev, opts.unplug_timeout).await {
                        left.push(format!(
                            "device '{dev}' (undo of {id}): removal requested but not \
                                 done: {e}"
                        ));
                    }
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => left.push(format!("device_del '{dev}' (undo of {id}): {e}")),
            },
        }
    }
    // Our copies of the fds go before the links: a tap vanishes with its last fd.
    p.fds.clear();
    left.extend(crate::exec::rollback_host(&mut p.host_undo, host).await);
    left
}
