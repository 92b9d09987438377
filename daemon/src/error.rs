//! The crate's single error type, [`DaemonError`], and how each error maps to an HTTP status
//! and a stable machine-readable `kind`.

use std::io;
use std::path::PathBuf;

/// Shorthand for `Result<T, DaemonError>`.
pub type Result<T> = std::result::Result<T, DaemonError>;

/// Everything that can go wrong in virtnetd. Messages say what was wrong, where, and how to fix
/// it; [`DaemonError::kind`] and [`DaemonError::http_status`] give the API's view of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// No VM of that name is defined or running.
    #[error("no VM named '{name}' (`virtnet list --all` shows the VMs virtnetd knows)")]
    NoSuchVm {
        /// The name asked for.
        name: String,
    },

    /// No network of that name is defined.
    #[error(
        "no network named '{name}' (`virtnet net-list --all` shows the networks virtnetd knows)"
    )]
    NoSuchNetwork {
        /// The name asked for.
        name: String,
    },

    /// The domain XML is malformed or cannot work. Each problem is `LINE:COL: message`.
    #[error("invalid domain XML: {}", problems.join("; "))]
    InvalidXml {
        /// Every problem found, located.
        problems: Vec<String>,
    },

    /// The API request itself is not well-formed (bad JSON, missing or unknown fields, bad
    /// query, bad VM name).
    #[error("bad request: {0}")]
    BadRequest(String),

    /// The request body has a media type this endpoint does not take.
    #[error("unsupported Content-Type '{found}': {expected}")]
    UnsupportedMediaType {
        /// The Content-Type sent (empty when none).
        found: String,
        /// What the endpoint takes.
        expected: String,
    },

    /// The request body is larger than the daemon accepts.
    #[error("request body larger than {limit} bytes; a domain definition is far smaller")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },

    /// No endpoint at that path.
    #[error("no endpoint {method} {path} (see daemon/openapi.yaml for the API)")]
    NoRoute {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },

    /// The endpoint exists but not with this method.
    #[error("method {method} not allowed on {path}; allowed: {allowed}")]
    MethodNotAllowed {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// The methods the path takes.
        allowed: String,
    },

    /// No interface of the VM matches what was given.
    #[error("VM '{vm}' has no interface matching '{key}' (give its MAC, host device name or alias; `virtnet domiflist {vm}` lists them)")]
    NoSuchInterface {
        /// The VM.
        vm: String,
        /// What was given.
        key: String,
    },

    /// Several interfaces match what was given.
    #[error("'{key}' matches {count} interfaces of VM '{vm}': give the MAC address of one")]
    AmbiguousInterface {
        /// The VM.
        vm: String,
        /// What was given.
        key: String,
        /// How many matched.
        count: usize,
    },

    /// The VM has no device matching what was given (other than interfaces).
    #[error("VM '{vm}' has no {what}")]
    NoSuchDevice {
        /// The VM.
        vm: String,
        /// What was looked for, and what there is.
        what: String,
    },

    /// A detach of this device already waits for the guest.
    #[error("removal of {device} from VM '{vm}' already pending: the guest has not released it yet. It completes when the guest does (QEMU reports DEVICE_DELETED); `virtnet domiflist {vm}` shows it. A guest that never releases it keeps it until the VM stops")]
    RemovalPending {
        /// The VM.
        vm: String,
        /// The device (`interface 52:54:00:.. (net1)`).
        device: String,
    },

    /// The device cannot be plugged into (or changed in) a running VM.
    #[error("{0}")]
    NotHotpluggable(String),

    /// The configuration cannot run here (virtnet_qemu's validation layer refused it at start
    /// or attach). Each problem is `LINE:COL: unsupported configuration: ...`.
    #[error("{}", problems.join("; "))]
    Unsupported {
        /// Every refusal, located.
        problems: Vec<String>,
    },

    /// A hot-plug, unplug or update failed at one step; what was done before it was undone.
    #[error("{0}")]
    HotplugFailed(String),

    /// A host resource (vhost-user socket, tap name, host PCI device, MAC) already belongs to
    /// another VM.
    #[error("{resource} is already used by {holder_iface} of VM '{holder_vm}'; one {what} can have only one user: detach it there first or pick another")]
    InUse {
        /// The resource, e.g. `vhost-user socket /run/vu0.sock`.
        resource: String,
        /// The kind of resource, for the advice ("vhost-user socket", "tap", ...).
        what: &'static str,
        /// The VM holding it.
        holder_vm: String,
        /// The interface (or device) of that VM holding it.
        holder_iface: String,
    },

    /// A host resource (a tap name) is held by a running network (its uplink).
    #[error("{resource} is the uplink of network '{network}' (while it runs); one {what} can have only one user: pick another <target dev> or stop the network with `virtnet net-destroy {network}`")]
    InUseByNetwork {
        /// The resource, e.g. `tap device sw0-up`.
        resource: String,
        /// The kind of resource.
        what: &'static str,
        /// The network holding it.
        network: String,
    },

    /// The operation does not fit the VM's current state (start a running VM, undefine a
    /// running one, ...).
    #[error("VM '{name}' is {state}: {hint}")]
    InvalidState {
        /// The VM.
        name: String,
        /// Its state, in words.
        state: String,
        /// What to do instead.
        hint: String,
    },

    /// The operation does not fit the network's state (start an active network, destroy one
    /// VMs use, ...).
    #[error("network '{name}' is {state}: {hint}")]
    NetworkState {
        /// The network.
        name: String,
        /// Its state, in words.
        state: String,
        /// What to do instead.
        hint: String,
    },

    /// The stored definition of a VM could not be loaded; only `define` (to replace it) and
    /// `undefine` (to remove it) work until it is fixed.
    #[error("VM '{name}' cannot be used: {problem}; fix it with `virtnet define FILE` or remove it with `virtnet undefine {name}`")]
    Broken {
        /// The VM.
        name: String,
        /// What is wrong with its stored files.
        problem: String,
    },

    /// A definition that conflicts with what is stored under the same name (e.g. another UUID).
    #[error("{0}")]
    Conflict(String),

    /// Reading or writing the state store failed.
    #[error("state store: cannot {action} {}: {source}", path.display())]
    Store {
        /// What we tried to do ("write", "rename", "read", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// The daemon cannot start (socket in use, directory not writable, another daemon running).
    #[error("virtnetd cannot start: {0}")]
    Startup(String),

    /// Starting, stopping or talking to a VM failed.
    #[error("{0}")]
    Vm(String),

    /// A bug or an unexpected condition; the message says where.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DaemonError {
    /// The stable, machine-readable kind carried in the API's error body.
    pub fn kind(&self) -> &'static str {
        match self {
            DaemonError::NoSuchVm { .. } => "no_such_vm",
            DaemonError::NoSuchNetwork { .. } => "no_such_network",
            DaemonError::InvalidXml { .. } => "invalid_xml",
            DaemonError::BadRequest(_) => "bad_request",
            DaemonError::UnsupportedMediaType { .. } => "unsupported_media_type",
            DaemonError::PayloadTooLarge { .. } => "payload_too_large",
            DaemonError::NoRoute { .. } => "no_route",
            DaemonError::MethodNotAllowed { .. } => "method_not_allowed",
            DaemonError::NoSuchInterface { .. } => "no_such_interface",
            DaemonError::AmbiguousInterface { .. } => "ambiguous_interface",
            DaemonError::NoSuchDevice { .. } => "no_such_device",
            DaemonError::RemovalPending { .. } => "removal_pending",
            DaemonError::NotHotpluggable(_) => "not_hotpluggable",
            DaemonError::Unsupported { .. } => "unsupported_configuration",
            DaemonError::HotplugFailed(_) => "hotplug_failed",
            DaemonError::InUse { .. } | DaemonError::InUseByNetwork { .. } => "resource_in_use",
            DaemonError::InvalidState { .. } | DaemonError::NetworkState { .. } => "invalid_state",
            DaemonError::Broken { .. } => "broken_definition",
            DaemonError::Conflict(_) => "conflict",
            DaemonError::Store { .. } => "store",
            DaemonError::Startup(_) => "startup",
            DaemonError::Vm(_) => "vm",
            DaemonError::Internal(_) => "internal",
        }
    }

    /// The HTTP status the API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            DaemonError::NoSuchVm { .. }
            | DaemonError::NoSuchNetwork { .. }
            | DaemonError::NoRoute { .. }
            | DaemonError::NoSuchInterface { .. }
            | DaemonError::NoSuchDevice { .. } => 404,
            DaemonError::InvalidXml { .. }
            | DaemonError::BadRequest(_)
            | DaemonError::NotHotpluggable(_)
            | DaemonError::Unsupported { .. } => 400,
            DaemonError::UnsupportedMediaType { .. } => 415,
            DaemonError::PayloadTooLarge { .. } => 413,
            DaemonError::MethodNotAllowed { .. } => 405,
            DaemonError::InUse { .. }
            | DaemonError::InUseByNetwork { .. }
            | DaemonError::RemovalPending { .. }
            | DaemonError::AmbiguousInterface { .. }
            | DaemonError::InvalidState { .. }
            | DaemonError::NetworkState { .. }
            | DaemonError::Broken { .. }
            | DaemonError::Conflict(_) => 409,
            DaemonError::Store { .. }
            | DaemonError::Startup(_)
            | DaemonError::Vm(_)
            | DaemonError::HotplugFailed(_)
            | DaemonError::Internal(_) => 500,
        }
    }

    /// Shorthand for [`DaemonError::Store`].
    pub fn store(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        DaemonError::Store {
            action,
            path: path.into(),
            source,
        }
    }
}
