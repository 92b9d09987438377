//! The crate's single error type, [`DaemonError`], and how each error maps to an HTTP status
//! and a stable machine-readable `kind`.

use std::io;
use std::path::PathBuf;

use virtnet_vm::VmError;

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

    /// A hot-plug or unplug failed in virtnetd, QEMU or the host (not because of the request).
    #[error("{source}")]
    PlugFailed {
        /// The vm crate's error.
        #[source]
        source: Box<VmError>,
    },

    /// Starting, hot-plugging or unplugging failed because of the definition or a host object
    /// it names (a bridge that does not exist, a tap another process holds, a MAC already on
    /// the lower device, an interface type this virtnet cannot run), and nothing was left
    /// behind: fix the XML or the host, then retry. [`VmError::is_user_error`] decides.
    #[error("{source}")]
    VmRefused {
        /// The vm crate's error.
        #[source]
        source: Box<VmError>,
    },

    /// The QEMU binary could not be probed (missing, not runnable, unknown version).
    #[error("cannot use QEMU {}: {source}", qemu.display())]
    QemuBinary {
        /// The binary (`<emulator>` or virtnetd's default).
        qemu: PathBuf,
        /// Why.
        #[source]
        source: Box<VmError>,
    },

    /// A QMP command on a running VM's QEMU failed.
    #[error("{source}")]
    Qmp {
        /// The qemu crate's error.
        #[source]
        source: Box<virtnet_qemu::QemuError>,
    },

    /// Starting or stopping a VM failed in virtnetd, QEMU or the host.
    #[error("{source}")]
    VmFailed {
        /// The vm crate's error.
        #[source]
        source: Box<VmError>,
    },

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
            DaemonError::HotplugFailed(_) | DaemonError::PlugFailed { .. } => "hotplug_failed",
            DaemonError::VmRefused { .. } => "refused",
            DaemonError::InUse { .. } | DaemonError::InUseByNetwork { .. } => "resource_in_use",
            DaemonError::InvalidState { .. } | DaemonError::NetworkState { .. } => "invalid_state",
            DaemonError::Broken { .. } => "broken_definition",
            DaemonError::Conflict(_) => "conflict",
            DaemonError::Store { .. } => "store",
            DaemonError::Startup(_) => "startup",
            DaemonError::Vm(_)
            | DaemonError::VmFailed { .. }
            | DaemonError::Qmp { .. }
            | DaemonError::QemuBinary { .. } => "vm",
            DaemonError::Internal(_) => "internal",
        }
    }

    /// The HTTP status the API answers with: 4xx when the request, the definition or a host
    /// object the user named is at fault (the user can fix it), 5xx when virtnetd, QEMU or the
    /// host failed.
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
            | DaemonError::Conflict(_)
            | DaemonError::VmRefused { .. } => 409,
            DaemonError::Store { .. }
            | DaemonError::Startup(_)
            | DaemonError::Vm(_)
            | DaemonError::VmFailed { .. }
            | DaemonError::Qmp { .. }
            | DaemonError::QemuBinary { .. }
            | DaemonError::HotplugFailed(_)
            | DaemonError::PlugFailed { .. }
            | DaemonError::Internal(_) => 500,
        }
    }

    /// Whether the user can fix it (a 4xx answer); else it is a fault (5xx).
    pub fn is_user_error(&self) -> bool {
        (400..500).contains(&self.http_status())
    }

    /// A failed start or stop: [`DaemonError::VmRefused`] when it is the user's
    /// ([`VmError::is_user_error`]), else [`DaemonError::VmFailed`].
    pub fn vm(source: VmError) -> Self {
        if source.is_user_error() {
            DaemonError::VmRefused {
                source: Box::new(source),
            }
        } else {
            DaemonError::VmFailed {
                source: Box::new(source),
            }
        }
    }

    /// A failed hot-plug or unplug: [`DaemonError::VmRefused`] when it is the user's, else
    /// [`DaemonError::PlugFailed`].
    pub fn hotplug(source: VmError) -> Self {
        if source.is_user_error() {
            DaemonError::VmRefused {
                source: Box::new(source),
            }
        } else {
            DaemonError::PlugFailed {
                source: Box::new(source),
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_host::HostError;
    use virtnet_qemu::QemuError;

    fn host(source: HostError) -> VmError {
        VmError::Host {
            what: "host step 1 (attach tap to bridge 'nobr0')".into(),
            source,
        }
    }

    /// Every variant's status and kind: 4xx for what the user can fix, 5xx for faults.
    #[test]
    fn status_and_kind_of_every_variant() {
        let s = |x: &str| x.to_string();
        let io = || io::Error::from(io::ErrorKind::PermissionDenied);
        let table: Vec<(DaemonError, u16, &str)> = vec![
            (DaemonError::NoSuchVm { name: s("a") }, 404, "no_such_vm"),
            (
                DaemonError::NoSuchNetwork { name: s("n") },
                404,
                "no_such_network",
            ),
            (
                DaemonError::InvalidXml {
                    problems: vec![s("1:1: x")],
                },
                400,
                "invalid_xml",
            ),
            (DaemonError::BadRequest(s("x")), 400, "bad_request"),
            (
                DaemonError::UnsupportedMediaType {
                    found: s(""),
                    expected: s("json"),
                },
                415,
                "unsupported_media_type",
            ),
            (
                DaemonError::PayloadTooLarge { limit: 1 },
                413,
                "payload_too_large",
            ),
            (
                DaemonError::NoRoute {
                    method: s("GET"),
                    path: s("/x"),
                },
                404,
                "no_route",
            ),
            (
                DaemonError::MethodNotAllowed {
                    method: s("PUT"),
                    path: s("/x"),
                    allowed: s("GET"),
                },
                405,
                "method_not_allowed",
            ),
            (
                DaemonError::NoSuchInterface {
                    vm: s("a"),
                    key: s("k"),
                },
                404,
                "no_such_interface",
            ),
            (
                DaemonError::AmbiguousInterface {
                    vm: s("a"),
                    key: s("k"),
                    count: 2,
                },
                409,
                "ambiguous_interface",
            ),
            (
                DaemonError::NoSuchDevice {
                    vm: s("a"),
                    what: s("x"),
                },
                404,
                "no_such_device",
            ),
            (
                DaemonError::RemovalPending {
                    vm: s("a"),
                    device: s("d"),
                },
                409,
                "removal_pending",
            ),
            (
                DaemonError::NotHotpluggable(s("x")),
                400,
                "not_hotpluggable",
            ),
            (DaemonError::HotplugFailed(s("x")), 500, "hotplug_failed"),
            (
                DaemonError::InUse {
                    resource: s("tap t0"),
                    what: "tap",
                    holder_vm: s("b"),
                    holder_iface: s("net0"),
                },
                409,
                "resource_in_use",
            ),
            (
                DaemonError::InUseByNetwork {
                    resource: s("tap t0"),
                    what: "tap",
                    network: s("n"),
                },
                409,
                "resource_in_use",
            ),
            (
                DaemonError::InvalidState {
                    name: s("a"),
                    state: s("running"),
                    hint: s("h"),
                },
                409,
                "invalid_state",
            ),
            (
                DaemonError::NetworkState {
                    name: s("n"),
                    state: s("active"),
                    hint: s("h"),
                },
                409,
                "invalid_state",
            ),
            (
                DaemonError::Broken {
                    name: s("a"),
                    problem: s("p"),
                },
                409,
                "broken_definition",
            ),
            (DaemonError::Conflict(s("x")), 409, "conflict"),
            (DaemonError::store("write", "/x", io()), 500, "store"),
            (DaemonError::Startup(s("x")), 500, "startup"),
            (DaemonError::Vm(s("x")), 500, "vm"),
            (DaemonError::Internal(s("x")), 500, "internal"),
            (
                DaemonError::Qmp {
                    source: Box::new(QemuError::Protocol(s("x"))),
                },
                500,
                "vm",
            ),
            (
                DaemonError::QemuBinary {
                    qemu: PathBuf::from("/nope/qemu"),
                    source: Box::new(VmError::InvalidContext(s("x"))),
                },
                500,
                "vm",
            ),
            // The vm crate's errors, classified where they were made.
            (
                DaemonError::vm(host(HostError::BridgeNotFound { bridge: s("nobr0") })),
                409,
                "refused",
            ),
            (
                DaemonError::vm(host(HostError::TunUnavailable { source: io() })),
                500,
                "vm",
            ),
            (
                DaemonError::hotplug(host(HostError::TapBusy { name: s("t0") })),
                409,
                "refused",
            ),
            (
                DaemonError::hotplug(host(HostError::Injected {
                    call: 0,
                    what: s("tap"),
                })),
                500,
                "hotplug_failed",
            ),
            (
                DaemonError::vm(VmError::UnsupportedInterface {
                    nic: s("nic"),
                    reason: s("r"),
                }),
                409,
                "refused",
            ),
            (
                DaemonError::vm(VmError::StopCleanup {
                    vm: s("a"),
                    errors: vec![s("tap")],
                }),
                500,
                "vm",
            ),
        ];
        for (e, status, kind) in &table {
            assert_eq!((e.http_status(), e.kind()), (*status, *kind), "{e:?}");
            assert_eq!(e.is_user_error(), *status < 500, "{e:?}");
        }
    }

    /// Wrapping keeps the message and the chain of sources.
    #[test]
    fn vm_errors_keep_message_and_source() {
        let v = host(HostError::BridgeNotFound {
            bridge: "nobr0".into(),
        });
        let msg = v.to_string();
        let e = DaemonError::vm(v);
        assert_eq!(e.to_string(), msg);
        let src = std::error::Error::source(&e).expect("the VmError");
        let host = src.source().expect("the HostError");
        assert!(
            host.to_string().contains("ip link add nobr0 type bridge"),
            "{host}"
        );
    }
}
