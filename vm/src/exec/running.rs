//! [`RunningVm`]: a started VM, and how it stops.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::sync::watch;
use virtnet_host::{HostNet, UndoStack};
use virtnet_qemu::{QemuProcess, QmpClient, StopMethod, StopOptions};

use super::resources::HostResources;
use crate::error::VmError;
use crate::plan::StartPlan;

/// How to stop a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// ACPI power button, wait this long for the guest to power off, then SIGTERM, SIGKILL
    /// (`virsh shutdown`, with a deadline).
    Graceful(Duration),
    /// SIGTERM at once (QEMU exits cleanly), SIGKILL after 10 s (`virsh destroy`).
    Destroy,
    /// SIGKILL at once: for a QEMU whose main loop is blocked (a stalled monitor, e.g. inside
    /// a vhost-user `netdev_add`), which would not act on SIGTERM before the 10 s passed.
    Kill,
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// What ended QEMU.
    pub method: StopMethod,
    /// QEMU's exit status (it has been reaped).
    pub status: ExitStatus,
}

/// A VM that [`super::start`] started: QEMU (running, QMP connected) and the host resources
/// it uses. Call [`RunningVm::stop`] to end it and release them; dropping it kills QEMU but
/// leaves managed host objects that outlive their fds (macvtaps, VF settings) in place.
#[derive(Debug)]
pub struct RunningVm {
    plan: StartPlan,
    qemu: QemuProcess,
    undo: UndoStack,
    resources: HostResources,
    run_dir_created: bool,
}

impl RunningVm {
    pub(crate) fn new(
        plan: &StartPlan,
        qemu: QemuProcess,
        undo: UndoStack,
        resources: HostResources,
        run_dir_created: bool,
    ) -> Self {
        RunningVm {
            plan: plan.clone(),
            qemu,
            undo,
            resources,
            run_dir_created,
        }
    }

    /// The domain name.
    pub fn name(&self) -> &str {
        &self.plan.name
    }

    /// QEMU's pid.
    pub fn pid(&self) -> u32 {
        self.qemu.pid()
    }

    /// The QMP connection.
    pub fn qmp(&self) -> &QmpClient {
        self.qemu.qmp()
    }

    /// The QEMU process handle.
    pub fn process(&self) -> &QemuProcess {
        &self.qemu
    }

    /// The plan it was started from.
    pub fn plan(&self) -> &StartPlan {
        &self.plan
    }

    /// The host objects it holds, as created (tap names chosen at run time etc.).
    pub fn resources(&self) -> &HostResources {
        &self.resources
    }

    /// Takes over the host objects of a hot-plugged NIC ([`super::AttachedNic::host`]), so
    /// [`RunningVm::stop`] releases them too (a macvtap or VF outlives QEMU).
    pub fn add_resources(&mut self, part: &HostResources) {
        self.undo.extend(part.undo.iter().cloned());
        self.resources.add(part);
    }

    /// Forgets host objects released by a detach ([`super::DetachReport::released`]).
    pub fn remove_resources(&mut self, part: &HostResources) {
        self.resources.remove_part(part);
        self.undo = self.resources.undo_stack();
    }

    /// The run dir.
    pub fn run_dir(&self) -> &Path {
        &self.plan.run_dir
    }

    /// QEMU's log file.
    pub fn log_path(&self) -> &Path {
        &self.plan.log_path
    }

    /// QEMU's exit status if it has exited on its own (guest powered off, crash, killed).
    /// Never blocks. The VM must still be [`RunningVm::stop`]ped to release its resources.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.qemu.exit_status()
    }

    /// Waits until QEMU exits, for whatever reason.
    pub async fn wait_exit(&self) -> ExitStatus {
        self.qemu.wait().await
    }

    /// Turns from `None` to `Some(status)` when QEMU exits (for `select!`).
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.qemu.exit_watch()
    }

    /// Stops QEMU (see [`StopMode`]; an already exited QEMU is fine), then releases the host
    /// resources newest first: managed taps and macvtaps are deleted, VFs restored; taps
    /// given with `managed='no'` stay (libvirt's rule). Sockets QEMU listened on and the run
    /// dir are removed.
    pub async fn stop(self, host: &dyn HostNet, mode: StopMode) -> Result<StopReport, VmError> {
        let opts = match mode {
            StopMode::Graceful(t) => StopOptions::graceful(t),
            StopMode::Destroy => StopOptions::destroy(),
            StopMode::Kill => StopOptions {
                powerdown: None,
                term_timeout: Duration::ZERO,
            },
        };
        let RunningVm {
            plan,
            qemu,
            mut undo,
            run_dir_created,
            ..
        } = self;
        let outcome = qemu.stop(opts).await;
        tracing::info!(vm = %plan.name, method = ?outcome.method, status = %outcome.status, "QEMU stopped");
        super::release(qemu).await;
        let mut errors = super::rollback_host(&mut undo, host).await;
        errors.extend(super::remove_files(&plan, run_dir_created));
        if !errors.is_empty() {
            return Err(VmError::StopCleanup {
                vm: plan.name.clone(),
                errors,
            });
        }
        Ok(StopReport {
            method: outcome.method,
            status: outcome.status,
        })
    }
}
