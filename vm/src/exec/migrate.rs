//! Carrying out a [`MigratePlan`]: each step in order on the two sides ([`MigrationSides`]:
//! the source's QEMU and the destination virtnetd), each success pushing the step's undo.
//! Thin on purpose: every decision is in the plan.
//!
//! A failure before the destination's guest runs ([`MigrateAction::Finish`] succeeded)
//! undoes everything, newest first: the source's migration is cancelled and its guest
//! resumed, the destination aborted. The VM then runs on the source as before. After that
//! point there is no way back: what fails (stopping the source, removing its definition) is
//! reported as left behind.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use virtnet_host::LspOptionsChange;
use virtnet_qemu::MigrationInfo;

use crate::error::{MigrationFailure, VmError};
use crate::plan::{MigrateAction, MigratePlan, MigrateUndo};

/// What a side reports when it fails: a message and whether the user can fix it (the
/// destination refused the definition, say), as opposed to a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideError {
    /// What went wrong.
    pub message: String,
    /// A refusal the user can act on (4xx), not a fault.
    pub user_error: bool,
}

impl SideError {
    /// A fault with `message`.
    pub fn fault(message: impl Into<String>) -> SideError {
        SideError {
            message: message.into(),
            user_error: false,
        }
    }
}

/// The two ends of a migration, as the executor drives them. The daemon implements it on the
/// source's QEMU and an API client of the destination virtnetd; tests use a fake.
pub trait MigrationSides {
    /// The destination prepares to receive the VM on `uri`; returns the URI the source must
    /// migrate to (the port filled in when `uri` asked for port 0).
    fn prepare(&mut self, uri: &str) -> impl Future<Output = Result<String, SideError>>;
    /// The destination kills its QEMU, releases its host side and removes a definition it
    /// made at prepare.
    fn abort_destination(&mut self) -> impl Future<Output = Result<(), SideError>>;
    /// The destination resumes its guest and announces it.
    fn finish(&mut self) -> impl Future<Output = Result<(), SideError>>;
    /// `migrate-set-capabilities` on the source QEMU.
    fn set_capabilities(
        &mut self,
        caps: &[(String, bool)],
    ) -> impl Future<Output = Result<(), SideError>>;
    /// `migrate-set-parameters` on the source QEMU.
    fn set_parameters(&mut self, max_bandwidth: u64)
        -> impl Future<Output = Result<(), SideError>>;
    /// `migrate` on the source QEMU.
    fn migrate(&mut self, uri: &str) -> impl Future<Output = Result<(), SideError>>;
    /// `query-migrate` on the source QEMU.
    fn query(&mut self) -> impl Future<Output = Result<MigrationInfo, SideError>>;
    /// `migrate_cancel` on the source QEMU.
    fn cancel(&mut self) -> impl Future<Output = Result<(), SideError>>;
    /// `cont` on the source QEMU if its guest is paused; returns whether it was.
    fn resume_source(&mut self) -> impl Future<Output = Result<bool, SideError>>;
    /// Stops the source QEMU and releases its host side; returns what could not be released.
    fn stop_source(&mut self) -> impl Future<Output = Result<Vec<String>, SideError>>;
    /// Removes the source's persistent definition.
    fn undefine_source(&mut self) -> impl Future<Output = Result<(), SideError>>;
    /// Changes a logical switch port's options in OVN's Northbound database.
    fn ovn_change(
        &mut self,
        change: &LspOptionsChange,
    ) -> impl Future<Output = Result<(), SideError>>;
    /// A progress line (step started, RAM transferred).
    fn progress(&mut self, line: &str);
}

/// How to run a migration plan.
#[derive(Debug, Clone)]
pub struct MigrateExecOptions {
    /// How often `query-migrate` is polled while waiting. Default 50 ms.
    pub poll: Duration,
    /// How often a progress line reports the RAM transferred. Default 1 s.
    pub progress_every: Duration,
    /// How long undoing waits for a cancelled migration to end. Default 10 s.
    pub cancel_timeout: Duration,
    /// Test hook: fail step `n` before doing it.
    pub fail_at: Option<usize>,
}

impl Default for MigrateExecOptions {
    fn default() -> Self {
        MigrateExecOptions {
            poll: Duration::from_millis(50),
            progress_every: Duration::from_secs(1),
            cancel_timeout: Duration::from_secs(10),
            fail_at: None,
        }
    }
}

/// One step as it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTiming {
    /// The step's description.
    pub step: String,
    /// How long it took (ms).
    pub elapsed_ms: u64,
}

/// A migration that completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateReport {
    /// The URI the source QEMU migrated to.
    pub uri: String,
    /// What the source QEMU reported at completion (total time, downtime, RAM).
    pub qemu: MigrationInfo,
    /// Each step with its wall time.
    pub steps: Vec<StepTiming>,
    /// What could not be released on the source after the guest ran on the destination.
    pub leftovers: Vec<String>,
}

/// Runs `plan` on `sides`. See the module docs for the failure contract.
pub async fn migrate<S: MigrationSides>(
    plan: &MigratePlan,
    sides: &mut S,
    opts: &MigrateExecOptions,
) -> Result<MigrateReport, VmError> {
    let mut undo: Vec<MigrateUndo> = Vec::new();
    let mut uri = String::new();
    let mut info = MigrationInfo::default();
    let mut steps = Vec::new();
    let mut leftovers = Vec::new();
    let mut committed = false;
    for (n, step) in plan.steps.iter().enumerate() {
        let what = step.action.describe();
        sides.progress(&what);
        let started = Instant::now();
        let r = if opts.fail_at == Some(n) {
            Err(SideError::fault(format!("injected failure at step {n}")))
        } else {
            match &step.action {
                MigrateAction::OvnAllowBoth { change }
                | MigrateAction::OvnBindDestination { change } => sides.ovn_change(change).await,
                MigrateAction::Prepare { uri: listen } => {
                    sides.prepare(listen).await.map(|u| uri = u)
                }
                MigrateAction::SetCapabilities { capabilities } => {
                    sides.set_capabilities(capabilities).await
                }
                MigrateAction::SetParameters { max_bandwidth } => {
                    sides.set_parameters(*max_bandwidth).await
                }
                MigrateAction::Migrate => sides.migrate(&uri).await,
                MigrateAction::WaitCompleted { timeout_ms } => {
                    wait_completed(sides, Duration::from_millis(*timeout_ms), opts)
                        .await
                        .map(|i| info = i)
                }
                MigrateAction::Finish => sides.finish().await,
                MigrateAction::StopSource => sides.stop_source().await.map(|l| leftovers.extend(l)),
                MigrateAction::UndefineSource => sides.undefine_source().await,
            }
        };
        steps.push(StepTiming {
            step: what.clone(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        match r {
            Ok(()) => {
                undo.extend(step.undo.clone());
                if step.action == MigrateAction::Finish {
                    committed = true; // the guest runs on the destination now
                }
            }
            Err(e) if committed => {
                tracing::error!(vm = %plan.vm, step = %what, error = %e.message, "after the switch-over");
                leftovers.push(format!("{what}: {}", e.message));
            }
            Err(e) => {
                tracing::warn!(vm = %plan.vm, step = %what, error = %e.message, "migration failed; undoing");
                let cleanup = rollback(sides, undo, opts).await;
                return Err(VmError::MigrationFailed(Box::new(MigrationFailure {
                    vm: plan.vm.clone(),
                    step: what,
                    step_index: n,
                    cause: e.message,
                    user_error: e.user_error,
                    cleanup,
                })));
            }
        }
    }
    Ok(MigrateReport {
        uri,
        qemu: info,
        steps,
        leftovers,
    })
}

/// Polls `query-migrate` until `completed`; `failed`, `cancelled` or the deadline are errors.
async fn wait_completed<S: MigrationSides>(
    sides: &mut S,
    timeout: Duration,
    opts: &MigrateExecOptions,
) -> Result<MigrationInfo, SideError> {
    let deadline = Instant::now() + timeout;
    let mut next_progress = Instant::now() + opts.progress_every;
    loop {
        let info = sides.query().await?;
        match info.status.as_deref() {
            Some("completed") => return Ok(figures(sides, info, opts).await),
            Some(s @ ("failed" | "cancelled" | "cancelling")) => {
                return Err(SideError::fault(format!(
                    "QEMU reports the migration {s}{}",
                    info.error_desc
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                )))
            }
            _ => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(SideError::fault(format!(
                "the migration did not complete within {} ms (status {}); give more time with \
                 --timeout",
                timeout.as_millis(),
                info.status.as_deref().unwrap_or("none")
            )));
        }
        if now >= next_progress {
            next_progress = now + opts.progress_every;
            if let Some(ram) = &info.ram {
                sides.progress(&format!(
                    "{}: {} of {} MiB sent, {} MiB remaining",
                    info.status.as_deref().unwrap_or("?"),
                    ram.transferred >> 20,
                    ram.total >> 20,
                    ram.remaining >> 20
                ));
            }
        }
        tokio::time::sleep(opts.poll).await;
    }
}

/// QEMU 7.2 reports `completed` (event and status) a moment before its migration thread
/// computes total time and downtime (both 0 until then): asks again, for at most a second.
async fn figures<S: MigrationSides>(
    sides: &mut S,
    mut info: MigrationInfo,
    opts: &MigrateExecOptions,
) -> MigrationInfo {
    let deadline = Instant::now() + Duration::from_secs(1);
    while info.total_time.unwrap_or(0) == 0 && Instant::now() < deadline {
        tokio::time::sleep(opts.poll).await;
        match sides.query().await {
            Ok(i) => info = i,
            Err(_) => break,
        }
    }
    info
}

/// Runs the undos newest first; returns what could not be undone.
async fn rollback<S: MigrationSides>(
    sides: &mut S,
    mut undo: Vec<MigrateUndo>,
    opts: &MigrateExecOptions,
) -> Vec<String> {
    let mut left = Vec::new();
    while let Some(u) = undo.pop() {
        sides.progress(&format!("undo: {}", u.describe()));
        match u {
            MigrateUndo::CancelAndResume => {
                // Cancelling a migration that already ended fails harmlessly; what matters is
                // that it is over before the guest is resumed.
                let _ = sides.cancel().await;
                let deadline = Instant::now() + opts.cancel_timeout;
                loop {
                    match sides.query().await {
                        Ok(i) if i.is_over() => break,
                        Ok(_) if Instant::now() < deadline => tokio::time::sleep(opts.poll).await,
                        Ok(i) => {
                            left.push(format!(
                                "the source's migration is still {} after migrate_cancel",
                                i.status.unwrap_or_default()
                            ));
                            break;
                        }
                        Err(e) => {
                            left.push(format!("query-migrate after cancel: {}", e.message));
                            break;
                        }
                    }
                }
                if let Err(e) = sides.resume_source().await {
                    left.push(format!("resume the source guest: {}", e.message));
                }
            }
            MigrateUndo::OvnRestore { change } => {
                if let Err(e) = sides.ovn_change(&change).await {
                    left.push(format!("{}: {}", change.describe(), e.message));
                }
            }
            MigrateUndo::AbortDestination => {
                if let Err(e) = sides.abort_destination().await {
                    left.push(format!("abort the destination: {}", e.message));
                }
            }
        }
    }
    left
}

#[cfg(test)]
mod tests;
