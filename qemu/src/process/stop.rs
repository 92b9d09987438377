//! Stopping QEMU: ACPI power button, then SIGTERM, then SIGKILL; always reaped.

use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::Signal;

use super::child::ChildHandle;
use crate::qmp::QmpClient;

/// How to stop QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOptions {
    /// If set, first `system_powerdown` and wait this long for the guest to power off.
    /// `None` skips straight to SIGTERM (like `virsh destroy`).
    pub powerdown: Option<Duration>,
    /// How long to wait after SIGTERM before SIGKILL.
    pub term_timeout: Duration,
}

impl StopOptions {
    /// Power button, wait `powerdown_timeout`, then SIGTERM (10 s), then SIGKILL.
    pub fn graceful(powerdown_timeout: Duration) -> Self {
        StopOptions {
            powerdown: Some(powerdown_timeout),
            term_timeout: Duration::from_secs(10),
        }
    }

    /// SIGTERM (QEMU exits cleanly on it), 10 s, then SIGKILL.
    pub fn destroy() -> Self {
        StopOptions {
            powerdown: None,
            term_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for StopOptions {
    /// `graceful(30 s)`.
    fn default() -> Self {
        StopOptions::graceful(Duration::from_secs(30))
    }
}

/// Which step ended QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMethod {
    /// QEMU had already exited before the stop began.
    AlreadyExited,
    /// The guest powered off after `system_powerdown`.
    Powerdown,
    /// QEMU exited on SIGTERM.
    Sigterm,
    /// QEMU had to be killed with SIGKILL.
    Sigkill,
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOutcome {
    /// Which step ended QEMU.
    pub method: StopMethod,
    /// Its exit status (it has been reaped).
    pub status: ExitStatus,
}

pub(crate) async fn stop(child: &ChildHandle, qmp: &QmpClient, opts: StopOptions) -> StopOutcome {
    let done = |method, status| StopOutcome { method, status };
    if let Some(status) = child.exit_status() {
        return done(StopMethod::AlreadyExited, status);
    }
    if let Some(limit) = opts.powerdown {
        let deadline = tokio::time::Instant::now() + limit;
        // Failing to press the button (QEMU stalled or exiting) just moves on to SIGTERM.
        let _ = qmp.system_powerdown(limit).await;
        if let Ok(status) = tokio::time::timeout_at(deadline, child.wait()).await {
            return done(StopMethod::Powerdown, status);
        }
    }
    if child.signal(Signal::TERM, "SIGTERM").is_ok() {
        if let Ok(status) = tokio::time::timeout(opts.term_timeout, child.wait()).await {
            return done(StopMethod::Sigterm, status);
        }
    }
    let status = child.kill().await;
    done(StopMethod::Sigkill, status)
}
