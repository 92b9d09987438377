//! QEMU process lifecycle: spawn with exactly the fds it must inherit, log to a per-VM file,
//! connect QMP, `cont`, notice exits, stop (powerdown → SIGTERM → SIGKILL), always reap.
//! Also what virtnet opens on QEMU's behalf: listening sockets and files ([`listen_unix`],
//! [`open_for_writing`]).
//!
//! ```no_run
//! # async fn demo(tap: std::os::fd::OwnedFd) -> virtnet_qemu::Result<()> {
//! use virtnet_qemu::{listen_unix, QemuSpawn, StopOptions};
//! let monitor = listen_unix("/run/virtnet/vm1.qmp".as_ref())?;
//! let qemu = QemuSpawn::new(
//!     "/usr/bin/qemu-system-x86_64",
//!     ["-S", "-nodefaults",
//!      "-chardev", "socket,id=charmonitor,fd=4,server=on,wait=off",
//!      "-mon", "chardev=charmonitor,id=monitor,mode=control",
//!      "-netdev", "tap,id=h1,fd=3"],
//!     "/run/virtnet/vm1.qmp",
//!     "/var/log/virtnet/vm1.log",
//! )
//! .inherit_fd(tap, 3)
//! .inherit_fd(monitor, 4)
//! .spawn()
//! .await?;
//! qemu.cont().await?;
//! let outcome = qemu.stop(StopOptions::default()).await;
//! # Ok(()) }
//! ```

mod cgroup;
mod child;
mod confine;
mod fds;
mod log;
mod mounts;
mod open;
mod start;
mod stop;

use std::ffi::OsString;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::Signal;
use tokio::sync::watch;

pub use open::{listen_unix, open_for_writing, open_host};
pub use stop::{StopMethod, StopOptions, StopOutcome};

use crate::error::{QemuError, Result};
use crate::qmp::{QmpClient, QmpOptions, VmStatus};
use crate::sandbox::Sandbox;
use cgroup::CgroupJoin;
use child::ChildHandle;
use fds::FdMap;

/// Whether process `pid` runs in a mount namespace other than ours (a confined QEMU: its
/// `/dev` and hidden directories differ from what we see). False when it cannot be told.
pub fn in_own_mount_namespace(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ns = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    match (ns(&format!("/proc/{pid}/ns/mnt")), ns("/proc/self/ns/mnt")) {
        (Some(theirs), Some(ours)) => theirs != ours,
        _ => false,
    }
}

/// Everything needed to start one QEMU. Build with [`QemuSpawn::new`], adjust, then
/// [`QemuSpawn::spawn`].
#[derive(Debug)]
pub struct QemuSpawn {
    binary: PathBuf,
    args: Vec<OsString>,
    fds: FdMap,
    cgroups: CgroupJoin,
    qmp_socket: PathBuf,
    log_path: PathBuf,
    start_timeout: Duration,
    qmp: QmpOptions,
    sandbox: Option<Sandbox>,
}

impl QemuSpawn {
    /// `binary` run with `args` (without argv\[0\]). `qmp_socket` must already be listening
    /// when [`QemuSpawn::spawn`] runs, its fd passed to QEMU as its monitor: create it with
    /// [`listen_unix`], give the fd with [`QemuSpawn::inherit_fd`] and refer to it in the args
    /// (`-chardev socket,id=charmonitor,fd=N,server=on,wait=off -mon
    /// chardev=charmonitor,mode=control`). QEMU's stdout and stderr are appended to `log_path`
    /// (created with mode 0600), after a header line for this start.
    pub fn new(
        binary: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        qmp_socket: impl Into<PathBuf>,
        log_path: impl Into<PathBuf>,
    ) -> Self {
        QemuSpawn {
            binary: binary.into(),
            args: args.into_iter().map(Into::into).collect(),
            fds: FdMap::default(),
            cgroups: CgroupJoin::default(),
            qmp_socket: qmp_socket.into(),
            log_path: log_path.into(),
            start_timeout: Duration::from_secs(10),
            qmp: QmpOptions::default(),
            sandbox: None,
        }
    }

    /// QEMU inherits `fd` as fd number `target` (3 or higher; refer to it in the args, e.g.
    /// `-netdev tap,fd=<target>`). No other fd of ours but 0, 1, 2 reaches QEMU. Our `fd` is
    /// closed once QEMU has started (or failed to).
    pub fn inherit_fd(mut self, fd: OwnedFd, target: RawFd) -> Self {
        self.fds.push(fd, target);
        self
    }

    /// QEMU joins these cgroups (each fd a group's `cgroup.procs`, opened for writing)
    /// between fork and exec, before any privilege is dropped, so its guest memory is charged
    /// to its group from the start. Our fds are closed once QEMU has started (or failed to).
    pub fn join_cgroups(mut self, procs: Vec<OwnedFd>) -> Self {
        self.cgroups.extend(procs);
        self
    }

    /// How long QEMU may take to bring up QMP (default 10 s). Past it QEMU is killed.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Runs QEMU confined: its own mount namespace with a private `/dev` and the sandbox's
    /// hidden directories covered, as the sandbox's user with no capability left and
    /// NoNewPrivs (see [`Sandbox`]). Without it QEMU runs as our user, unconfined. The args
    /// should carry `-sandbox` too ([`crate::RuntimePaths::sandbox`]).
    pub fn sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// Options for the QMP connection (command deadline etc.).
    pub fn qmp_options(mut self, options: QmpOptions) -> Self {
        self.qmp = options;
        self
    }

    /// Starts QEMU and connects QMP at once (once: the socket listens already, the connection
    /// waits in its backlog until QEMU's monitor greets). Fails when QEMU exits first
    /// ([`QemuError::EarlyExit`], with the end of QEMU's log), when nothing listens on the
    /// socket ([`QemuError::QmpConnect`]) or when the start timeout passes without a greeting
    /// ([`QemuError::StartTimeout`]; QEMU is killed). On any error nothing is left running.
    /// Guest CPUs stay as the args say (with `-S`, paused until [`QemuProcess::cont`]).
    pub async fn spawn(self) -> Result<QemuProcess> {
        start::start(self).await
    }
}

/// A running QEMU with its QMP connection. Dropping it kills QEMU (SIGKILL) and reaps it;
/// use [`QemuProcess::stop`] for an orderly end.
#[derive(Debug)]
pub struct QemuProcess {
    child: ChildHandle,
    qmp: QmpClient,
    log_path: PathBuf,
    qmp_socket: PathBuf,
}

impl QemuProcess {
    /// QEMU's pid.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The QMP connection (clone it to keep it beyond this borrow).
    pub fn qmp(&self) -> &QmpClient {
        &self.qmp
    }

    /// The log file QEMU writes to.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The QMP socket path.
    pub fn qmp_socket(&self) -> &Path {
        &self.qmp_socket
    }

    /// `cont` (start the guest CPUs), then `query-status`; fails if the VM is not running.
    pub async fn cont(&self) -> Result<VmStatus> {
        self.qmp.cont().await?;
        let status = self.qmp.query_status().await?;
        if !status.running {
            return Err(QemuError::Protocol(format!(
                "after `cont` QEMU reports state `{}`, not running",
                status.status
            )));
        }
        Ok(status)
    }

    /// `query-status`.
    pub async fn status(&self) -> Result<VmStatus> {
        self.qmp.query_status().await
    }

    /// The exit status if QEMU has exited (it is then already reaped). Never blocks.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.child.exit_status()
    }

    /// Waits until QEMU exits (for whatever reason) and returns its status.
    pub async fn wait(&self) -> ExitStatus {
        self.child.wait().await
    }

    /// A receiver that turns from `None` to `Some(status)` when QEMU exits; use it in
    /// `select!` to notice unexpected exits.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.child.exit_watch()
    }

    /// Sends SIGTERM (QEMU then exits cleanly) without waiting.
    pub fn terminate(&self) -> Result<()> {
        self.child.signal(Signal::TERM, "SIGTERM")
    }

    /// SIGKILL and wait until reaped. The QMP socket file is removed.
    pub async fn kill(&self) -> ExitStatus {
        let status = self.child.kill().await;
        start::remove_stale_socket(&self.qmp_socket);
        status
    }

    /// Stops QEMU: see [`StopOptions`]. Always ends with QEMU exited and reaped, and the QMP
    /// socket file removed.
    pub async fn stop(&self, opts: StopOptions) -> StopOutcome {
        let outcome = stop::stop(&self.child, &self.qmp, opts).await;
        start::remove_stale_socket(&self.qmp_socket);
        outcome
    }
}
