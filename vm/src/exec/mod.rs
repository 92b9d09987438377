//! Carrying out a [`StartPlan`]: run dir, host steps, QEMU with exactly the planned fds, QMP,
//! post-start commands. Thin on purpose: every decision is in the plan.
//!
//! On a failure at any step, everything done before is undone, newest first: QEMU is killed
//! and reaped, host objects are released ([`virtnet_host::UndoStack`]), sockets QEMU listened
//! on and the run dir are removed. The error names the step ([`StepId`]) and the cause.
//!
//! Host calls are synchronous and quick (netlink, ioctls); they run on the calling task, so
//! the thread's network namespace is the one taps are made in and QEMU is started in.

mod back_end;
mod host;
pub mod hotplug;
pub mod migrate;
mod resources;
mod running;

use std::fmt;
use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use virtnet_host::{CgroupPlacement, HostNet, HostUndo, UndoStack};
use virtnet_qemu::argv::HostOpen;
use virtnet_qemu::{QemuError, QemuProcess, QemuSpawn, QmpOptions};

pub use host::rollback_host;
pub use hotplug::{
    attach, complete_detach, detach, AttachedNic, DetachOutcome, DetachReport, HotplugOptions,
    PendingDetach, PendingDetaches,
};
pub use migrate::{
    migrate, MigrateExecOptions, MigrateReport, MigrationSides, SideError, StepTiming,
};
pub use resources::{HostResources, NicResource, NicResourceKind};
pub use running::{RunningVm, StopMode, StopReport};

use crate::error::VmError;
use crate::plan::{PassFdUndo, StartPlan};

/// The steps of a start, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepId {
    /// Create the run dir.
    RunDir,
    /// Make the VM's cgroup ([`StartPlan::cgroup`]).
    Cgroup,
    /// Give QEMU's user access to path `n` of [`StartPlan::access`] (confined starts).
    Access(usize),
    /// Open what QEMU gets as fd `n` of [`StartPlan::pass_fds`] (QMP socket, chardev socket
    /// or file).
    PassFd(usize),
    /// Host step `n` of [`StartPlan::host_steps`].
    Host(usize),
    /// Start QEMU with its fds.
    Spawn,
    /// Connect to QMP (done together with the spawn; an injected failure here comes after
    /// QEMU is up, so it exercises killing it).
    QmpConnect,
    /// Post-start QMP command `n` of [`StartPlan::post_start`] (the last one is `cont`).
    PostStart(usize),
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepId::RunDir => f.write_str("creating the run dir"),
            StepId::Cgroup => f.write_str("making the VM's cgroup"),
            StepId::Access(n) => write!(f, "giving QEMU's user access to path {n}"),
            StepId::PassFd(n) => write!(f, "passed fd {n}"),
            StepId::Host(n) => write!(f, "host step {n}"),
            StepId::Spawn => f.write_str("starting QEMU"),
            StepId::QmpConnect => f.write_str("connecting to QMP"),
            StepId::PostStart(n) => write!(f, "post-start QMP command {n}"),
        }
    }
}

impl StepId {
    /// Every step of `plan`, in order (what a test iterates to fail each in turn).
    pub fn all(plan: &StartPlan) -> Vec<StepId> {
        let mut v = vec![StepId::RunDir];
        if plan.cgroup.is_some() {
            v.push(StepId::Cgroup);
        }
        v.extend((0..plan.access.len()).map(StepId::Access));
        v.extend((0..plan.pass_fds.len()).map(StepId::PassFd));
        v.extend((0..plan.host_steps.len()).map(StepId::Host));
        v.push(StepId::Spawn);
        v.push(StepId::QmpConnect);
        v.extend((0..plan.post_start.len()).map(StepId::PostStart));
        v
    }
}

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Test hook: fail with [`VmError::Injected`] at this step, before doing it (for
    /// [`StepId::QmpConnect`]: right after QEMU is up).
    pub fail_at: Option<StepId>,
    /// How long QEMU may take to bring up QMP (it waits for vhost-user back ends of
    /// `mode='server'` NICs first). Default 10 s.
    pub start_timeout: Duration,
    /// QMP settings (command deadline). Default: 30 s per command.
    pub qmp: QmpOptions,
    /// Deadline of each `<script>`/`<downscript>` (then its process group is killed).
    /// Default [`virtnet_host::DEFAULT_SCRIPT_TIMEOUT`] (10 s).
    pub script_timeout: Duration,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            fail_at: None,
            start_timeout: Duration::from_secs(10),
            qmp: QmpOptions::default(),
            script_timeout: virtnet_host::DEFAULT_SCRIPT_TIMEOUT,
        }
    }
}

/// What was done so far, for rollback.
#[derive(Default)]
struct Progress {
    undo: UndoStack,
    res: HostResources,
    run_dir_created: bool,
    /// Sockets we bound for QEMU ([`crate::plan::PassFdUndo::RemoveSocket`]).
    sockets: Vec<std::path::PathBuf>,
    qemu: Option<QemuProcess>,
}

/// Starts the VM `plan` describes on `host`. See the module docs for the failure contract.
pub async fn start(
    plan: &StartPlan,
    host: &dyn HostNet,
    opts: &ExecOptions,
) -> Result<RunningVm, VmError> {
    let mut p = Progress::default();
    match run(plan, host, opts, &mut p).await {
        Ok(()) => {
            let qemu = p.qemu.take().expect("QEMU runs after a successful start");
            tracing::info!(vm = %plan.name, pid = qemu.pid(), "VM started");
            Ok(RunningVm::new(plan, qemu, p.undo, p.res, p.run_dir_created))
        }
        Err((step_id, cause)) => {
            tracing::warn!(vm = %plan.name, %step_id, error = %cause, "start failed; rolling back");
            let cleanup = rollback(plan, host, &mut p).await;
            let step = match step_id {
                StepId::Access(n) => format!(
                    "giving QEMU's user access to path {n} ({})",
                    plan.access.get(n).map(|g| g.describe()).unwrap_or_default()
                ),
                StepId::PassFd(n) => format!(
                    "passed fd {n} ({})",
                    plan.pass_fds
                        .get(n)
                        .map(|s| s.describe())
                        .unwrap_or_default()
                ),
                StepId::Host(n) => format!(
                    "host step {n} ({})",
                    plan.host_steps
                        .get(n)
                        .map(|s| s.describe())
                        .unwrap_or_default()
                ),
                StepId::PostStart(n) => format!(
                    "post-start QMP command {n} (`{}`)",
                    plan.post_start
                        .get(n)
                        .map(|c| c.execute.as_str())
                        .unwrap_or("")
                ),
                other => other.to_string(),
            };
            Err(VmError::StartFailed {
                vm: plan.name.clone(),
                step,
                step_id,
                cause: Box::new(cause),
                cleanup,
            })
        }
    }
}

type StepResult = Result<(), (StepId, VmError)>;

fn inject(opts: &ExecOptions, step: StepId) -> StepResult {
    if opts.fail_at == Some(step) {
        return Err((step, VmError::Injected(step)));
    }
    Ok(())
}

async fn run(
    plan: &StartPlan,
    host: &dyn HostNet,
    opts: &ExecOptions,
    p: &mut Progress,
) -> StepResult {
    // Every path QEMU's user must reach, before anything is changed (directories are never
    // changed: one it cannot enter refuses the start).
    for (n, g) in plan.access.iter().enumerate() {
        g.check().map_err(|source| {
            (
                StepId::Access(n),
                VmError::Host {
                    what: g.describe(),
                    source,
                },
            )
        })?;
    }
    inject(opts, StepId::RunDir)?;
    DirBuilder::new()
        .mode(0o700)
        .create(&plan.run_dir)
        .map_err(|source| {
            (
                StepId::RunDir,
                VmError::Io {
                    what: "create the run dir (it must not exist: is the VM running already, \
                           or left from a crash? remove it)"
                        .into(),
                    path: plan.run_dir.clone(),
                    source,
                },
            )
        })?;
    p.run_dir_created = true;
    let mut cgroup_procs = Vec::new();
    if let Some(spec) = &plan.cgroup {
        inject(opts, StepId::Cgroup)?;
        let made = host.create_cgroup(spec).map_err(|source| {
            (
                StepId::Cgroup,
                VmError::Host {
                    what: format!("make the VM's cgroup {}", spec.name),
                    source,
                },
            )
        })?;
        match &made.placement {
            CgroupPlacement::Placed(group) => {
                tracing::info!(vm = %plan.name, cgroup = %group.describe(), "cgroup");
                let undo = HostUndo::RemoveCgroup(group.clone());
                p.undo.push(undo.clone());
                p.res.undo.push(undo);
            }
            CgroupPlacement::Unavailable { reason } => {
                tracing::warn!(vm = %plan.name, "cgroup: none usable: {reason}");
            }
        }
        p.res.cgroup = Some(made.placement);
        cgroup_procs = made.procs;
    }

    for (n, g) in plan.access.iter().enumerate() {
        inject(opts, StepId::Access(n))?;
        let undo = g.apply().map_err(|source| {
            (
                StepId::Access(n),
                VmError::Host {
                    what: g.describe(),
                    source,
                },
            )
        })?;
        for u in undo {
            p.res.undo.push(u.clone());
            p.undo.push(u);
        }
    }

    // Scripts write to the VM's log (QEMU appends to it later).
    let env = host::ScriptEnv {
        log: Some(plan.log_path.clone()),
        timeout: opts.script_timeout,
    };
    let mut fds = Vec::new();
    for (n, step) in plan.pass_fds.iter().enumerate() {
        inject(opts, StepId::PassFd(n))?;
        tracing::debug!(vm = %plan.name, step = n, what = %step.describe(), "passed fd");
        let fd = virtnet_qemu::open_host(&step.open).map_err(|e| {
            (
                StepId::PassFd(n),
                VmError::Qemu {
                    what: step.what.clone(),
                    source: Box::new(e),
                },
            )
        })?;
        if let (PassFdUndo::RemoveSocket, HostOpen::ListenUnix { path }) = (&step.undo, &step.open)
        {
            p.sockets.push(path.clone());
        }
        fds.push((fd, step.fd));
    }
    for (n, step) in plan.host_steps.iter().enumerate() {
        inject(opts, StepId::Host(n))?;
        tracing::debug!(vm = %plan.name, step = n, what = %step.describe(), "host step");
        let placed = host::run_step(host, step, &env, &mut p.undo, &mut p.res)
            .await
            .map_err(|e| (StepId::Host(n), e))?;
        fds.extend(placed);
    }

    inject(opts, StepId::Spawn)?;
    let mut spawn = QemuSpawn::new(
        &plan.qemu_binary,
        &plan.argv,
        &plan.qmp_socket,
        &plan.log_path,
    )
    .start_timeout(opts.start_timeout)
    .qmp_options(opts.qmp.clone())
    .join_cgroups(cgroup_procs);
    if let Some(sb) = &plan.sandbox {
        spawn = spawn.sandbox(sb.clone());
    }
    for (fd, target) in fds {
        spawn = spawn.inherit_fd(fd, target);
    }
    // QemuSpawn closes our copies of the fds once QEMU has them (or failed to start).
    let qemu = spawn.spawn().await.map_err(|e| {
        let step = match e {
            QemuError::StartTimeout { .. } | QemuError::QmpConnect { .. } => StepId::QmpConnect,
            _ => StepId::Spawn,
        };
        if let Some(no_back_end) = back_end::waiting_for_back_end(plan, &e, opts.start_timeout) {
            return (step, no_back_end);
        }
        (
            step,
            VmError::Qemu {
                what: "start QEMU".into(),
                source: Box::new(e),
            },
        )
    })?;
    p.qemu = Some(qemu);
    inject(opts, StepId::QmpConnect)?;

    let qemu = p.qemu.as_ref().expect("set above");
    let last = plan.post_start.len().saturating_sub(1);
    for (n, cmd) in plan.post_start.iter().enumerate() {
        inject(opts, StepId::PostStart(n))?;
        let r = if cmd.execute == "cont" && n == last {
            qemu.cont().await.map(|_| ())
        } else {
            qemu.qmp()
                .execute(&cmd.execute, cmd.arguments.clone())
                .await
                .map(|_| ())
        };
        r.map_err(|source| {
            (
                StepId::PostStart(n),
                VmError::Qemu {
                    what: format!("QMP {} {}", cmd.execute, cmd.arguments),
                    source: Box::new(source),
                },
            )
        })?;
    }
    Ok(())
}

/// Undoes what `p` says was done; returns what could not be undone.
async fn rollback(plan: &StartPlan, host: &dyn HostNet, p: &mut Progress) -> Vec<String> {
    if let Some(q) = p.qemu.take() {
        q.kill().await;
        release(q).await;
    }
    let mut left = rollback_host(&mut p.undo, host).await;
    for s in p.sockets.drain(..).rev() {
        remove_socket(&s, &mut left);
    }
    left.extend(remove_files(plan, p.run_dir_created));
    left
}

/// Drops an exited QEMU's handle and lets its QMP tasks finish, so the QMP socket is closed
/// when this returns (the tasks run on the caller's runtime and close it when next polled).
pub(crate) async fn release(q: QemuProcess) {
    let _ = tokio::time::timeout(Duration::from_secs(2), q.qmp().closed()).await;
    drop(q);
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

/// Removes the listening sockets QEMU may have left and (if we made it) the run dir.
pub(crate) fn remove_files(plan: &StartPlan, run_dir: bool) -> Vec<String> {
    let mut left = Vec::new();
    for s in &plan.sockets_to_remove {
        remove_socket(s, &mut left);
    }
    if run_dir {
        match std::fs::remove_dir_all(&plan.run_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => left.push(format!("run dir {}: {e}", plan.run_dir.display())),
        }
    }
    left
}

fn remove_socket(path: &Path, left: &mut Vec<String>) {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_socket() {
            if let Err(e) = std::fs::remove_file(path) {
                left.push(format!("socket {}: {e}", path.display()));
            }
        }
    }
}
