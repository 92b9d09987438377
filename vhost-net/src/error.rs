//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the switch's control plane. Data-plane problems
/// caused by a guest (bad descriptors, short frames, ...) are never errors: they are
/// dropped and counted per port (see [`crate::DropReason`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A port with this name already exists.
    #[error("port '{0}' already exists: pick another name or del-port it first")]
    PortExists(String),
    /// No port has this name.
    #[error("no port named '{0}': list-ports shows the ports of this switch")]
    NoSuchPort(String),
    /// Another port already uses this socket path.
    #[error(
        "socket {path} is already used by port '{port}': one vhost-user socket serves one NIC"
    )]
    SocketInUse {
        /// The contested socket path.
        path: PathBuf,
        /// The port that owns it.
        port: String,
    },
    /// A port option is out of range.
    #[error("invalid port option: {0}")]
    InvalidOption(String),
    /// The vhost-user back end could not be created.
    #[error("cannot create the vhost-user back end of port '{port}': {detail}")]
    Backend {
        /// Port name.
        port: String,
        /// What the library said.
        detail: String,
    },
    /// Listening on a server-mode socket failed.
    #[error("cannot listen on {path}: {source} (is the directory there and writable?)")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Opening or configuring the uplink tap failed.
    #[error("cannot set up uplink tap '{name}': {source} (does the process have CAP_NET_ADMIN, and is the name free or a tap it may attach to?)")]
    Tap {
        /// Tap name.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The control socket could not be created.
    #[error("cannot create the control socket {path}: {source}")]
    Control {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start thread '{name}': {source}")]
    Thread {
        /// Thread name.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The seccomp filter could not be built or installed.
    #[error("seccomp filter: {0} (`--seccomp off` runs without it, for debugging only)")]
    Seccomp(String),
    /// A command-line argument is wrong.
    #[error("{0}")]
    Usage(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl From<virtnet_vswitch_control::InvalidPort> for Error {
    fn from(e: virtnet_vswitch_control::InvalidPort) -> Self {
        Error::InvalidOption(e.0)
    }
}
