//! A running QEMU child: its pid, a pidfd for race-free signals, and its exit status.
//!
//! A task owns the `tokio::process::Child` and waits for it, so the child is always reaped
//! (no zombies) and its exit is noticed even when nobody asks. Signals go through a pidfd
//! (`pidfd_send_signal`) taken right after spawn: once QEMU is reaped, the pidfd can never hit
//! another process that got the same pid.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use rustix::process::{Pid, PidfdFlags, Signal};
use tokio::sync::watch;

use crate::error::{QemuError, Result};

#[derive(Debug)]
pub(crate) struct ChildHandle {
    pid: u32,
    /// `None` only on kernels without pidfd (before 5.3); then signals use the pid, and only
    /// while the child is known not to be reaped yet.
    pidfd: Option<OwnedFd>,
    exit: watch::Receiver<Option<ExitStatus>>,
}

impl ChildHandle {
    /// Takes over a just-spawned child. Must run inside a tokio runtime.
    pub(crate) fn new(mut child: tokio::process::Child) -> Self {
        let pid = child
            .id()
            .expect("a just-spawned, unwaited child has a pid");
        let pidfd = Pid::from_raw(pid as i32)
            .and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok());
        let (tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => s,
                // Only if waitpid itself fails (ECHILD: reaped elsewhere). Reported as 255.
                Err(_) => ExitStatus::from_raw(255 << 8),
            };
            tx.send_replace(Some(status));
        });
        ChildHandle { pid, pidfd, exit }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status if QEMU has exited (and been reaped).
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// A receiver that changes from `None` to `Some(status)` when QEMU exits.
    pub(crate) fn exit_watch(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.exit.clone()
    }

    /// Waits for QEMU to exit and be reaped.
    pub(crate) async fn wait(&self) -> ExitStatus {
        let mut rx = self.exit.clone();
        let seen = rx.wait_for(Option::is_some).await.ok().and_then(|s| *s);
        // `None` only if the waiter task is gone without a status (runtime shutting down).
        seen.unwrap_or(ExitStatus::from_raw(255 << 8))
    }

    /// Sends `sig`. Does nothing if QEMU has already exited.
    pub(crate) fn signal(&self, sig: Signal, name: &'static str) -> Result<()> {
        if self.exit_status().is_some() {
            return Ok(());
        }
        let res = match &self.pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, sig),
            None => match Pid::from_raw(self.pid as i32) {
                Some(p) => rustix::process::kill_process(p, sig),
                None => return Ok(()),
            },
        };
        match res {
            Ok(()) => Ok(()),
            // Exited meanwhile (and maybe not reaped yet): nothing to signal.
            Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(QemuError::Signal {
                pid: self.pid,
                signal: name,
                source: e.into(),
            }),
        }
    }

    /// SIGKILL, then wait until reaped.
    pub(crate) async fn kill(&self) -> ExitStatus {
        // SIGKILL to our own child cannot fail except when it is already gone.
        let _ = self.signal(Signal::KILL, "SIGKILL");
        self.wait().await
    }
}

impl Drop for ChildHandle {
    /// A QEMU whose handle is dropped is killed; the waiter task still reaps it (or tokio's
    /// orphan reaper does, if the runtime is shutting down).
    fn drop(&mut self) {
        let _ = self.signal(Signal::KILL, "SIGKILL");
    }
}
