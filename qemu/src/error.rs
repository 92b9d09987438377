//! The crate's single error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Shorthand for `Result<T, QemuError>`.
pub type Result<T> = std::result::Result<T, QemuError>;

/// Everything that can go wrong talking to or running QEMU.
///
/// Messages say what failed, where, and what to look at next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QemuError {
    /// The QMP unix socket could not be connected to.
    #[error("cannot connect to the QMP socket {}: {source} (is QEMU running with -qmp unix:<path>,server=on,wait=off?)", path.display())]
    QmpConnect {
        /// Socket path.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },

    /// QEMU sent something that is not QMP as we know it (bad greeting, bad JSON).
    #[error("QMP protocol error: {0}")]
    Protocol(String),

    /// QEMU answered a command with an error reply. `class` is QMP's error class (for example
    /// `GenericError`, `CommandNotFound`, `DeviceNotFound`) and `desc` QEMU's own explanation.
    #[error("QEMU rejected QMP command `{command}`: {class}: {desc}")]
    CommandFailed {
        /// The command that was rejected.
        command: String,
        /// QMP error class.
        class: String,
        /// QEMU's description.
        desc: String,
    },

    /// No reply came before the command's deadline. QEMU may be stalled (for example inside
    /// `netdev_add` with a vhost-user back end that fails its handshake). The command may still
    /// take effect later, so the caller should undo it (e.g. `netdev_del`) once QEMU answers again.
    #[error("QMP command `{command}` got no reply within {timeout:?}: QEMU may be stalled; the command may still take effect later, so undo it")]
    CommandTimeout {
        /// The command that timed out.
        command: String,
        /// The deadline that passed.
        timeout: Duration,
    },

    /// The QMP connection closed: QEMU exited, crashed, or closed its monitor.
    #[error("the QMP connection closed while waiting for {waiting_for}: QEMU exited or closed its monitor (see the VM's log)")]
    Closed {
        /// What we were waiting for (a command's reply, a device removal, ...).
        waiting_for: String,
    },

    /// Writing a command (and its fd) to the QMP socket failed.
    #[error("cannot send QMP command `{command}`: {source}")]
    Send {
        /// The command being sent.
        command: String,
        /// Underlying error.
        #[source]
        source: io::Error,
    },

    /// `DEVICE_DELETED` did not arrive in time. For PCI devices on i440fx/q35 the guest OS must
    /// acknowledge the unplug (ACPI or native PCIe hot-plug); a guest that is not running, not
    /// booted, or lacks hot-plug support never does.
    #[error("device `{device}` was not removed within {timeout:?} (no DEVICE_DELETED event): PCI unplug needs the guest OS to cooperate; is it running and does it support hot-plug?")]
    DeviceDeleteTimeout {
        /// Device id or QOM path waited for.
        device: String,
        /// The deadline that passed.
        timeout: Duration,
    },

    /// A QEMU version string could not be understood.
    #[error("cannot parse a QEMU version from {what}: {text:?}")]
    VersionParse {
        /// Where the text came from.
        what: String,
        /// The text itself.
        text: String,
    },

    /// A program (QEMU) could not be started.
    #[error("cannot run {}: {source} (is QEMU installed? on Debian: apt-get install qemu-system-x86)", binary.display())]
    Exec {
        /// The binary.
        binary: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },

    /// QEMU could not be confined as its [`crate::Sandbox`] says (prepared before the fork,
    /// or a step in the child failed: the VM's log then names the step).
    #[error("cannot confine QEMU: {what}: {source}")]
    Confine {
        /// What was being done.
        what: String,
        /// Underlying error.
        #[source]
        source: io::Error,
    },

    /// `qemu -version` ran but failed or timed out.
    #[error("{} -version failed: {detail}", binary.display())]
    VersionCommand {
        /// The binary.
        binary: PathBuf,
        /// Exit status and output, or the timeout.
        detail: String,
    },

    /// The per-VM log file could not be opened or read.
    #[error("cannot use the QEMU log file {}: {source}", path.display())]
    LogFile {
        /// Log path.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },

    /// A socket or file virtnet opens for QEMU (its QMP socket, a chardev's listening socket
    /// or file) could not be created or opened.
    #[error("cannot {what} {}: {source} (check that the directory exists and is writable by virtnetd)", path.display())]
    HostOpen {
        /// What was being done (`listen on the unix socket`, `open for writing`).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: io::Error,
    },

    /// The fds to inherit were not given as a valid mapping.
    #[error("invalid fd mapping for QEMU: {0}")]
    FdMapping(String),

    /// QEMU exited before its QMP monitor was up; `tail` is the end of its log (QEMU's own message).
    #[error("QEMU exited during startup ({status}); the end of its log {}:\n{tail}", log.display())]
    EarlyExit {
        /// How it exited.
        status: String,
        /// The log file.
        log: PathBuf,
        /// Last lines of the log written by this QEMU.
        tail: String,
    },

    /// QEMU did not open (or did not answer on) its QMP socket in time; it has been killed.
    #[error("QEMU (pid {pid}) did not bring up QMP on {} within {timeout:?} ({reason}); it was killed. The end of its log {}:\n{tail}", socket.display(), log.display())]
    StartTimeout {
        /// QEMU's pid.
        pid: u32,
        /// The QMP socket path.
        socket: PathBuf,
        /// The deadline that passed.
        timeout: Duration,
        /// Last connection problem seen.
        reason: String,
        /// The log file.
        log: PathBuf,
        /// Last lines of the log written by this QEMU.
        tail: String,
    },

    /// An interface the command line builder cannot express. `interface` names it (MAC, index,
    /// type); `message` says what is not supported and what to change.
    #[error("cannot build the QEMU command line for {interface}: {message}")]
    UnsupportedInterface {
        /// Which interface, e.g. `interface 52:54:00:00:01:01 (#0, type='ethernet')`.
        interface: String,
        /// What is not supported and how to fix the definition.
        message: String,
    },

    /// An interface the validation layer refuses ([`crate::validate`]), met by the argv
    /// builder: the caller did not validate it for start or attach first.
    #[error("{0}")]
    Refused(Box<crate::validate::Refusal>),

    /// A device or domain setting (other than an interface) the command line builder cannot
    /// express.
    #[error("cannot build the QEMU command line for {device}: {message}")]
    UnsupportedDevice {
        /// Which device or setting, e.g. `<sound model='ac97'>`.
        device: String,
        /// What is not supported and how to fix the definition.
        message: String,
    },

    /// The host resources the caller resolved for an interface (tap fds, vhost fds, ...) do not
    /// fit it. This is a bug in the caller, not in the definition.
    #[error("host resources for {interface} do not fit it: {message}")]
    BackendMismatch {
        /// Which interface.
        interface: String,
        /// What was given and what was expected.
        message: String,
    },

    /// A signal could not be sent to QEMU.
    #[error("cannot send {signal} to QEMU pid {pid}: {source}")]
    Signal {
        /// QEMU's pid.
        pid: u32,
        /// Signal name.
        signal: &'static str,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
}

impl QemuError {
    /// The QMP error class if this is an error reply from QEMU (e.g. `"GenericError"`).
    pub fn qmp_class(&self) -> Option<&str> {
        match self {
            QemuError::CommandFailed { class, .. } => Some(class),
            _ => None,
        }
    }

    /// QEMU's description if this is an error reply from QEMU.
    pub fn qmp_desc(&self) -> Option<&str> {
        match self {
            QemuError::CommandFailed { desc, .. } => Some(desc),
            _ => None,
        }
    }

    /// True if the QMP connection is gone (QEMU exited or closed the monitor).
    pub fn is_closed(&self) -> bool {
        matches!(self, QemuError::Closed { .. })
    }

    /// Whether the error is the user's to fix (the definition or the device XML asks for
    /// something QEMU cannot do), as opposed to a fault of virtnet, QEMU or the host. Decided by
    /// the variant: the builder's refusals of a configuration are the user's; a QMP error reply
    /// is the user's when QEMU refused, with `GenericError`, a command whose arguments come
    /// from the user's XML ([`USER_INPUT_COMMANDS`]: a bad property, an address in use, a
    /// chardev path QEMU cannot open); I/O, protocol errors, timeouts and QEMU's death are
    /// faults, and so is any other error class (`CommandNotFound`, `DeviceNotFound`: virtnet
    /// asked for something that is not there).
    pub fn is_user_error(&self) -> bool {
        match self {
            QemuError::UnsupportedInterface { .. }
            | QemuError::UnsupportedDevice { .. }
            | QemuError::Refused(_) => true,
            // A path the user chose whose directory does not exist, or that is taken.
            QemuError::HostOpen { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists | io::ErrorKind::AddrInUse
            ),
            QemuError::CommandFailed { command, class, .. } => {
                class == "GenericError" && USER_INPUT_COMMANDS.contains(&command.as_str())
            }
            QemuError::QmpConnect { .. }
            | QemuError::Protocol(_)
            | QemuError::CommandTimeout { .. }
            | QemuError::Closed { .. }
            | QemuError::Send { .. }
            | QemuError::DeviceDeleteTimeout { .. }
            | QemuError::VersionParse { .. }
            | QemuError::Exec { .. }
            | QemuError::Confine { .. }
            | QemuError::VersionCommand { .. }
            | QemuError::LogFile { .. }
            | QemuError::FdMapping(_)
            | QemuError::EarlyExit { .. }
            | QemuError::StartTimeout { .. }
            | QemuError::BackendMismatch { .. }
            | QemuError::Signal { .. } => false,
        }
    }
}

/// The QMP commands virtnet sends whose arguments carry the user's configuration (device
/// properties, addresses, backend paths): QEMU's `GenericError` on one of them means it
/// refused that configuration ([`QemuError::is_user_error`]).
pub const USER_INPUT_COMMANDS: &[&str] = &[
    "device_add",
    "netdev_add",
    "chardev-add",
    "chardev-change",
    "object-add",
    "set_link",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(command: &str, class: &str) -> QemuError {
        QemuError::CommandFailed {
            command: command.into(),
            class: class.into(),
            desc: "x".into(),
        }
    }

    /// QMP refusals of the user's configuration are the user's; everything else QEMU or the
    /// connection does wrong is a fault.
    #[test]
    fn user_errors_by_variant_class_and_command() {
        let user = [
            failed("device_add", "GenericError"),
            failed("netdev_add", "GenericError"),
            failed("chardev-change", "GenericError"),
            QemuError::UnsupportedInterface {
                interface: "interface".into(),
                message: "m".into(),
            },
            QemuError::UnsupportedDevice {
                device: "<sound>".into(),
                message: "m".into(),
            },
        ];
        for e in &user {
            assert!(e.is_user_error(), "{e:?}");
        }
        let io = || io::Error::from(io::ErrorKind::ConnectionReset);
        let faults = [
            // virtnet's own commands QEMU does not know or whose target is not there.
            failed("device_add", "CommandNotFound"),
            failed("device_del", "DeviceNotFound"),
            // A GenericError from a command that carries nothing of the user's.
            failed("query-status", "GenericError"),
            failed("getfd", "GenericError"),
            QemuError::Protocol("bad greeting".into()),
            QemuError::CommandTimeout {
                command: "netdev_add".into(),
                timeout: Duration::from_secs(1),
            },
            QemuError::Closed {
                waiting_for: "a reply".into(),
            },
            QemuError::Send {
                command: "device_add".into(),
                source: io(),
            },
            QemuError::QmpConnect {
                path: "/run/q.sock".into(),
                source: io(),
            },
            QemuError::EarlyExit {
                status: "exit status 1".into(),
                log: "/x.log".into(),
                tail: "t".into(),
            },
            QemuError::BackendMismatch {
                interface: "i".into(),
                message: "m".into(),
            },
        ];
        for e in &faults {
            assert!(!e.is_user_error(), "{e:?}");
        }
    }
}
