//! [`Adopted`]: a QEMU found running after a daemon restart. It is not our child, so it is
//! followed through a pidfd (exit notice without polling, signals that cannot hit a reused
//! pid), and powered down over the VM's [`QmpLink`].

use std::future::Future;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use virtnet_qemu::StopMethod;
use virtnet_vm::StopMode;

use super::proc::start_ticks;
use super::qmp::QmpLink;
use crate::store::LiveStatus;

/// How long QEMU gets to exit after SIGTERM before SIGKILL.
const SIGTERM_GRACE: Duration = Duration::from_secs(10);

/// A running QEMU the daemon did not start in this run.
pub struct Adopted {
    pid: u32,
    pidfd: Arc<AsyncFd<OwnedFd>>,
}

impl Adopted {
    /// The QEMU `status` describes, if it still runs (same pid and start time).
    pub fn find(status: &LiveStatus) -> Option<Adopted> {
        let same = |ticks: Option<u64>| {
            ticks.is_some_and(|t| status.pid_start_ticks == 0 || t == status.pid_start_ticks)
        };
        if status.pid == 0 || !same(start_ticks(status.pid)) {
            return None;
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, status.pid as libc::pid_t, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the syscall returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // Checked again with the pidfd held: the process cannot be replaced any more.
        if !same(start_ticks(status.pid)) {
            return None;
        }
        // SAFETY: `fd` is an open pidfd owned by the AsyncFd from here on.
        let pidfd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()?;
        Some(Adopted {
            pid: status.pid,
            pidfd: Arc::new(pidfd),
        })
    }

    /// QEMU's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Completes when QEMU exits.
    pub fn exit_future(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let fd = self.pidfd.clone();
        Some(async move {
            // A pidfd becomes readable when its process exits.
            let _ = fd.readable().await;
        })
    }

    fn exited(&self) -> bool {
        start_ticks(self.pid).is_none() || self.signal(0).is_err()
    }

    fn signal(&self, sig: i32) -> std::io::Result<()> {
        // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no siginfo, no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.get_ref().as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    async fn wait_exit(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.pidfd.readable())
            .await
            .is_ok()
    }

    /// Stops QEMU: for [`StopMode::Graceful`] the ACPI power button over `qmp` and a wait,
    /// then SIGTERM, then SIGKILL.
    pub async fn stop(&self, mode: StopMode, qmp: &QmpLink) -> StopMethod {
        if self.exited() {
            return StopMethod::AlreadyExited;
        }
        if let StopMode::Graceful(timeout) = mode {
            match qmp.client().await {
                Ok(qmp) => match qmp.execute("system_powerdown", serde_json::json!({})).await {
                    Ok(_) => {
                        if self.wait_exit(timeout).await {
                            return StopMethod::Powerdown;
                        }
                    }
                    Err(e) => tracing::warn!(pid = self.pid, error = %e, "system_powerdown failed"),
                },
                Err(e) => {
                    tracing::warn!(pid = self.pid, error = %e, "cannot reach QMP for a powerdown")
                }
            }
        }
        if mode != StopMode::Kill
            && (self.signal(libc::SIGTERM).is_err() || self.wait_exit(SIGTERM_GRACE).await)
        {
            return StopMethod::Sigterm;
        }
        let _ = self.signal(libc::SIGKILL);
        self.wait_exit(SIGTERM_GRACE).await;
        StopMethod::Sigkill
    }
}
