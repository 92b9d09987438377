//! [`VmError`]: the crate's one error type.

use std::path::PathBuf;

use virtnet_host::HostError;
use virtnet_qemu::QemuError;

use crate::exec::StepId;

/// Everything that can go wrong planning, starting or stopping a VM. Messages say what was
/// wrong, where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The validation layer refuses the configuration for start or attach
    /// ([`virtnet_qemu::validate`]): every refusal, each with its rule, element and position.
    #[error("{0}")]
    Refused(#[source] virtnet_qemu::validate::Refusals),

    /// An interface type or setting the VM start does not handle.
    #[error("{nic}: {reason}")]
    UnsupportedInterface {
        /// The interface.
        nic: String,
        /// What is not supported and what to use instead.
        reason: String,
    },

    /// The identity a confined QEMU would run as cannot be used (a `<seclabel>` DAC label
    /// naming a missing user or group, or root).
    #[error("cannot run QEMU as {label}: {reason}")]
    Identity {
        /// The label or user, as written.
        label: String,
        /// What is wrong and what to do.
        reason: String,
    },

    /// A live migration refused before anything was done: one line per reason.
    #[error("VM '{vm}' cannot be migrated live: {}", problems.join("; "))]
    NotMigratable {
        /// The VM.
        vm: String,
        /// Each device that prevents it and why.
        problems: Vec<String>,
    },

    /// A live migration failed; everything before the failed step was undone (the VM runs on
    /// the source as before) except what [`MigrationFailure::cleanup`] lists.
    #[error("{0}")]
    MigrationFailed(Box<MigrationFailure>),

    /// The plan context is unusable (e.g. a first fd number below 3).
    #[error("invalid plan context: {0}")]
    InvalidContext(String),

    /// The QEMU command line could not be built.
    #[error("cannot build the QEMU command line: {0}")]
    Argv(#[source] Box<QemuError>),

    /// A host operation failed.
    #[error("{what}: {source}")]
    Host {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: HostError,
    },

    /// A QEMU or QMP operation failed.
    #[error("{what}: {source}")]
    Qemu {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: Box<QemuError>,
    },

    /// A file system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: String,
        /// The path.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },

    /// A failure injected by a test ([`crate::exec::ExecOptions::fail_at`]).
    #[error("failure injected at {0} (test hook)")]
    Injected(StepId),

    /// Starting failed at one step; everything done before it was undone (see `cleanup`).
    #[error(
        "VM '{vm}' did not start: {step} failed: {cause}{}",
        cleanup_note(cleanup)
    )]
    StartFailed {
        /// The domain name.
        vm: String,
        /// Which step failed, e.g. `host step 1 (attach tap to bridge 'br0')`.
        step: String,
        /// Which step, as a value.
        step_id: StepId,
        /// Why.
        #[source]
        cause: Box<VmError>,
        /// Undo steps that failed too (empty = clean rollback: nothing left behind).
        cleanup: Vec<String>,
    },

    /// The interface to hot-plug conflicts with the running VM or is invalid.
    #[error("{nic} cannot be added to VM '{vm}': {}", problems.join("; "))]
    InvalidHotplug {
        /// The domain name.
        vm: String,
        /// The interface.
        nic: String,
        /// Every problem found.
        problems: Vec<String>,
    },

    /// A failure injected by a test into a hot-plug step
    /// ([`crate::exec::HotplugOptions::fail_at`]).
    #[error("failure injected at {0} (test hook)")]
    InjectedHotplug(String),

    /// Hot-plugging failed at one step; every earlier step was undone (see `cleanup`).
    #[error("attaching {what} failed at {step}: {cause}{}", cleanup_note(cleanup))]
    AttachFailed {
        /// The interface and the VM: `interface 52:54:00:.. (#1, type='bridge') to VM 'vm1'`.
        what: String,
        /// Which step failed, e.g. `step netdev_add (netdev_add {...})`.
        step: String,
        /// Which step, as a value.
        step_id: crate::plan::AttachStepId,
        /// Why.
        #[source]
        cause: Box<VmError>,
        /// Undo steps that failed or could not be confirmed (empty = nothing left behind).
        cleanup: Vec<String>,
    },

    /// No vhost-user back end connected to a socket QEMU listens on (`mode='server'`) within
    /// the deadline: QEMU 7.2 would block (its monitor too) until one did, so virtnet gives up.
    #[error(
        "no back end connected to the vhost-user socket {socket} ({nic}, mode='server': QEMU \
         listens there) within {waited:.1?}{}: start the vhost-user back end so that it \
         connects to {socket} as a client, then try again (or use mode='client' if the back \
         end listens)",
        if *at_start { " (or one connected but did not answer QEMU's handshake)" } else { "" }
    )]
    NoBackEnd {
        /// The interface.
        nic: String,
        /// The socket path.
        socket: String,
        /// How long virtnet waited.
        waited: std::time::Duration,
        /// At start, where QEMU's log cannot tell a silent back end from none at all.
        at_start: bool,
    },

    /// A detach of this device was started before and has not completed yet: the guest has
    /// not released the device. It stays pending (QEMU removes it when the guest acknowledges).
    #[error(
        "device '{device}' of VM '{vm}' is already being detached (requested {since}; the \
         guest has not released it yet): wait for it to complete, or complete it with \
         complete_detach once the guest runs"
    )]
    DetachPending {
        /// The domain name.
        vm: String,
        /// The QEMU device id.
        device: String,
        /// When the pending detach was requested (`12.3 s ago`).
        since: String,
    },

    /// No detach of this device is pending (for `complete_detach`).
    #[error("no detach of device '{device}' is pending: detach it first")]
    NoPendingDetach {
        /// The QEMU device id.
        device: String,
    },

    /// Detaching failed at one step after the device request was made.
    #[error("detaching {nic} from VM '{vm}' failed at {step}: {cause}")]
    DetachFailed {
        /// The domain name.
        vm: String,
        /// The interface.
        nic: String,
        /// Which step failed.
        step: String,
        /// Why.
        #[source]
        cause: Box<VmError>,
    },

    /// QEMU stopped, but some host resources could not be released.
    #[error(
        "VM '{vm}' stopped, but releasing its host resources failed: {}. Remove them by hand \
         (ip link del NAME) or retry",
        errors.join("; ")
    )]
    StopCleanup {
        /// The domain name.
        vm: String,
        /// What could not be undone.
        errors: Vec<String>,
    },
}

fn cleanup_note(cleanup: &[String]) -> String {
    if cleanup.is_empty() {
        "; everything it had set up was undone".to_string()
    } else {
        format!(
            "; undoing what was set up also failed, left behind: {}",
            cleanup.join("; ")
        )
    }
}

impl VmError {
    /// [`VmError::Argv`] from a builder error.
    pub fn argv(e: QemuError) -> VmError {
        VmError::Argv(Box::new(e))
    }

    /// Whether the error is the user's to fix (the definition, or a host object it names, is
    /// wrong, missing or taken), as opposed to a fault of virtnet, QEMU or the host. A failed
    /// start, plug or unplug is the user's only if its cause is and nothing was left behind.
    pub fn is_user_error(&self) -> bool {
        match self {
            VmError::Refused(_)
            | VmError::UnsupportedInterface { .. }
            | VmError::InvalidHotplug { .. }
            | VmError::DetachPending { .. }
            | VmError::NoPendingDetach { .. }
            | VmError::Identity { .. }
            // The definition's back end is not there (nothing connected to its socket).
            | VmError::NoBackEnd { .. }
            | VmError::NotMigratable { .. } => true,
            VmError::MigrationFailed(f) => f.user_error && f.cleanup.is_empty(),
            VmError::Argv(e) => e.is_user_error(),
            VmError::Qemu { source, .. } => source.is_user_error(),
            VmError::Host { source, .. } => source.is_user_error(),
            VmError::StartFailed { cause, cleanup, .. }
            | VmError::AttachFailed { cause, cleanup, .. } => {
                cleanup.is_empty() && cause.is_user_error()
            }
            VmError::DetachFailed { cause, .. } => cause.is_user_error(),
            VmError::InvalidContext(_)
            | VmError::Io { .. }
            | VmError::Injected(_)
            | VmError::InjectedHotplug(_)
            | VmError::StopCleanup { .. } => false,
        }
    }

    /// For [`VmError::StartFailed`], the step that failed.
    pub fn failed_step(&self) -> Option<StepId> {
        match self {
            VmError::StartFailed { step_id, .. } => Some(*step_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_failed(cause: VmError, cleanup: Vec<String>) -> VmError {
        VmError::StartFailed {
            vm: "vm1".into(),
            step: "host step 1 (attach tap to bridge 'br9')".into(),
            step_id: StepId::Host(1),
            cause: Box::new(cause),
            cleanup,
        }
    }

    /// A start that failed on a bridge the XML names is the user's; a host fault or a start
    /// that left something behind is not.
    #[test]
    fn user_errors_follow_the_cause() {
        let bridge = || VmError::Host {
            what: "attach tap to bridge 'br9'".into(),
            source: HostError::BridgeNotFound {
                bridge: "br9".into(),
            },
        };
        assert!(start_failed(bridge(), vec![]).is_user_error());
        assert!(!start_failed(bridge(), vec!["tap vnet0".into()]).is_user_error());
        let fault = VmError::Host {
            what: "create tap".into(),
            source: HostError::TunUnavailable {
                source: std::io::ErrorKind::NotFound.into(),
            },
        };
        assert!(!start_failed(fault, vec![]).is_user_error());
        assert!(!VmError::Injected(StepId::Spawn).is_user_error());
        // QEMU refusing the user's device is the user's; QEMU dying is not.
        let qemu = |source: QemuError| VmError::Qemu {
            what: "step device_add".into(),
            source: Box::new(source),
        };
        let refused = || {
            qemu(QemuError::CommandFailed {
                command: "device_add".into(),
                class: "GenericError".into(),
                desc: "Property 'virtio-net-pci.x' not found".into(),
            })
        };
        assert!(refused().is_user_error());
        assert!(start_failed(refused(), vec![]).is_user_error());
        assert!(!qemu(QemuError::Closed {
            waiting_for: "a reply".into()
        })
        .is_user_error());
        // The chain of sources reaches the host's error.
        let e = start_failed(bridge(), vec![]);
        let host = std::error::Error::source(&e).and_then(std::error::Error::source);
        assert!(host.is_some_and(|h| h.to_string().starts_with("bridge 'br9' does not exist")));
    }
}

/// What [`VmError::MigrationFailed`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFailure {
    /// The VM.
    pub vm: String,
    /// The step that failed.
    pub step: String,
    /// Its index in the plan.
    pub step_index: usize,
    /// Why (the side's message).
    pub cause: String,
    /// Whether the user can fix the cause (the destination refused).
    pub user_error: bool,
    /// What could not be undone.
    pub cleanup: Vec<String>,
}

impl std::fmt::Display for MigrationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "migration of VM '{}' failed at step {} ({}): {}",
            self.vm, self.step_index, self.step, self.cause
        )?;
        if self.cleanup.is_empty() {
            f.write_str("; undone, the VM runs on the source")
        } else {
            write!(f, "; NOT undone: {}", self.cleanup.join("; "))
        }
    }
}
