//! The crate's single error type, [`DaemonError`], and how each error maps to an HTTP status
//! and a stable machine-readable `kind`.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use virtnet_host::HostError;
use virtnet_qemu::QemuError;
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

    /// What was asked does not exist for this object and cannot (interface statistics of a
    /// NIC without a host device, addresses from a DHCP server virtnet does not run...).
    #[error("{what}: {why}")]
    NotAvailable {
        /// What was asked.
        what: String,
        /// Why virtnet has no such thing, and what there is instead.
        why: String,
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

    /// A replug (`update-device --replug`) unplugged the NIC, but the guest did not release it
    /// in time: its removal is pending and the new socket was not plugged.
    #[error("replug of {nic} of VM '{vm}': the guest did not release the NIC within {} s. \
             Its removal is pending (it goes when the guest releases it) and the new \
             socket was not plugged: attach the NIC again with the new socket once \
             `virtnet domiflist {vm}` no longer lists it", timeout.as_secs())]
    ReplugPending {
        /// The VM.
        vm: String,
        /// The interface (`interface 52:54:00:.. (#1, type='vhostuser')`).
        nic: String,
        /// How long the guest was given.
        timeout: Duration,
    },

    /// A replug unplugged the NIC, but plugging it on the new socket failed; `back` says
    /// whether it was plugged back on its old socket (`None`) or why not.
    #[error("replug of {nic} of VM '{vm}': plugging it on the new socket failed: {source}; {}",
        match back {
            None => "it was plugged back on its old socket (the guest saw a link flap)".to_string(),
            Some(e2) => format!("plugging it back on its old socket failed too ({e2}): the NIC is gone from the running VM"),
        })]
    ReplugFailed {
        /// The VM.
        vm: String,
        /// The interface.
        nic: String,
        /// Why the plug on the new socket failed.
        #[source]
        source: Box<DaemonError>,
        /// Why plugging it back failed; `None` = it is back as before.
        back: Option<Box<DaemonError>>,
    },

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

    /// A QMP command on a running VM's QEMU failed. 409 `refused` when QEMU refused the
    /// user's configuration ([`QemuError::is_user_error`]), else a fault.
    #[error("{source}")]
    Qmp {
        /// The qemu crate's error.
        #[source]
        source: Box<QemuError>,
    },

    /// QEMU answered a command the user sent (`qemu-monitor-command`) with an error: the
    /// message carries QEMU's error class and description.
    #[error("{source}")]
    QmpRefused {
        /// The qemu crate's error ([`QemuError::CommandFailed`]).
        #[source]
        source: Box<QemuError>,
    },

    /// A QMP command got no reply in time: the VM is marked stalled.
    #[error("{source}. VM '{vm}' is marked stalled until QEMU answers again")]
    QmpStalled {
        /// The VM.
        vm: String,
        /// The timeout ([`QemuError::CommandTimeout`]).
        #[source]
        source: Box<QemuError>,
    },

    /// A hot-plug step got no reply in time: the VM is marked stalled, and what the late reply
    /// creates is undone when QEMU answers again.
    #[error(
        "{source}. VM '{vm}' is marked stalled until QEMU answers again (then what the late \
             reply created is undone); live operations on it are refused meanwhile; \
             `virtnet destroy {vm}` stops it now"
    )]
    PlugStalled {
        /// The VM.
        vm: String,
        /// The vm crate's error (an attach whose QMP step timed out).
        #[source]
        source: Box<VmError>,
    },

    /// The running VM's QMP monitor cannot be reached.
    #[error("cannot reach QEMU's monitor {}: {source}", socket.display())]
    QmpUnreachable {
        /// The QMP socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: Box<QemuError>,
    },

    /// `chardev-change` (switching a serial/console back end of a running VM) failed: QEMU
    /// refused it, or virtnetd could not open the new socket or file for it; nothing changed.
    /// The user's when the new back end was (a path that cannot be opened).
    #[error("cannot switch {alias} of VM '{vm}' to {to}: {source}")]
    ChardevChange {
        /// The VM.
        vm: String,
        /// The device's alias (`serial0`).
        alias: String,
        /// The new back end's type (`file`, `pty`, ...).
        to: String,
        /// QEMU's error.
        #[source]
        source: Box<QemuError>,
    },

    /// The host network plumbing could not be opened when virtnetd started (e.g. no netlink
    /// socket without CAP_NET_ADMIN), so nothing that needs it can run.
    #[error(
        "host networking is unavailable ({source}); virtnetd must run as root with CAP_NET_ADMIN"
    )]
    HostUnavailable {
        /// Why it could not be opened (shared: one error for every request that needs it).
        #[source]
        source: Arc<HostError>,
    },

    /// A network's switch (`virtnet-vswitch`) was found nowhere virtnetd looks (looked up at
    /// each network start, so a switch installed later is found without restarting virtnetd).
    #[error("cannot find the switch virtnet-vswitch; looked in {}; install it in one of these directories or set VIRTNETD_VSWITCH", looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    SwitchNotFound {
        /// The directories searched, in order.
        looked: Vec<PathBuf>,
    },

    /// A network's switch (`virtnet-vswitch`) could not be run.
    #[error("cannot run the switch {}: {source}; install virtnet-vswitch next to virtnetd or set VIRTNETD_VSWITCH", binary.display())]
    SwitchSpawn {
        /// The switch binary.
        binary: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The switch's confinement could not be set up (its system user, QEMU's group).
    #[error("cannot run the switch confined: {source}")]
    SwitchUser {
        /// Why.
        #[source]
        source: HostError,
    },

    /// The uplink tap of a switch network could not be opened for the switch.
    #[error("cannot open the uplink tap '{tap}' for the switch: {source} (is the name a tap that is not in use by another program?)")]
    SwitchUplink {
        /// The tap name.
        tap: String,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A network's switch exited while starting.
    #[error("the switch {} exited at start ({status}); see {}", binary.display(), log.display())]
    SwitchExited {
        /// The switch binary.
        binary: PathBuf,
        /// How it exited.
        status: ExitStatus,
        /// Its log.
        log: PathBuf,
    },

    /// A network's switch did not answer on its control socket after starting; it was killed.
    #[error("the switch did not answer on {} within {} s; see {}", control.display(), timeout.as_secs(), log.display())]
    SwitchStartTimeout {
        /// The control socket.
        control: PathBuf,
        /// How long it was given.
        timeout: Duration,
        /// Its log.
        log: PathBuf,
    },

    /// Talking to a switch's control socket failed.
    #[error("switch control socket {}: {source}", control.display())]
    SwitchIo {
        /// The control socket.
        control: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A switch answered something that is not a control-protocol reply.
    #[error("switch {} answered '{reply}': {source}", control.display())]
    SwitchReply {
        /// The control socket.
        control: PathBuf,
        /// What it answered.
        reply: String,
        /// Why it is not a reply.
        #[source]
        source: serde_json::Error,
    },

    /// A switch refused a control request (its own reason, as it sent it).
    #[error("the switch refused {request}: {reason}")]
    SwitchRefused {
        /// The request line sent.
        request: String,
        /// The switch's error text.
        reason: String,
    },

    /// A switch did not answer a control request in time.
    #[error("switch {} did not answer in {} s", control.display(), timeout.as_secs())]
    SwitchTimeout {
        /// The control socket.
        control: PathBuf,
        /// How long it was given.
        timeout: Duration,
    },

    /// A helper program (`ip`) could not be run.
    #[error("cannot run `{command}`: {source}")]
    CommandSpawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A helper program (`ip`) failed.
    #[error("`{command}` failed: {stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// What it wrote to stderr.
        stderr: String,
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

    /// The daemon cannot start: a file or directory it needs cannot be used.
    #[error("virtnetd cannot start: cannot {action} {}: {source}", path.display())]
    StartupIo {
        /// What we tried to do ("bind", "create the directory of", ...).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// The daemon cannot start: the user confined QEMUs run as (`--qemu-user`) cannot be
    /// looked up or created.
    #[error("virtnetd cannot start: cannot use the QEMU user '{name}': {source}; run scripts/setup (it creates virtnet-qemu), pick another with --qemu-user, or run QEMU unconfined with --sandbox off")]
    QemuUser {
        /// The user name.
        name: String,
        /// Why.
        #[source]
        source: HostError,
    },

    /// The daemon cannot start: the read-only socket's group cannot be looked up or created.
    #[error("virtnetd cannot start: cannot use the group '{name}' of the read-only socket: {source}; run scripts/setup (it creates the group virtnet)")]
    RoGroup {
        /// The group name.
        name: String,
        /// Why.
        #[source]
        source: HostError,
    },

    /// A change sent to the read-only socket.
    #[error("{method} {path}: {} is read-only (queries only); send changes to the read-write socket {} (root only)", ro_socket.display(), rw_socket.display())]
    ReadOnly {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// The socket it came on.
        ro_socket: PathBuf,
        /// The socket that takes changes.
        rw_socket: PathBuf,
    },

    /// The daemon cannot start: another virtnetd holds the state directory's lock.
    #[error("virtnetd cannot start: another virtnetd uses the state directory {} (lock {}: {source}); stop it or pick another --state-dir", state_dir.display(), lock.display())]
    StateDirLocked {
        /// The state directory.
        state_dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
        /// flock's error.
        #[source]
        source: io::Error,
    },

    /// The daemon cannot start: another virtnetd listens on the API socket.
    #[error("virtnetd cannot start: another virtnetd listens on {}; stop it or pick another --socket", path.display())]
    SocketInUse {
        /// The socket.
        path: PathBuf,
    },

    /// The daemon cannot start: the API socket's path is taken by something else.
    #[error("virtnetd cannot start: {} exists and is not a socket; remove it or pick another --socket", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },

    /// The daemon cannot start: the API socket's path is too long for a unix socket.
    #[error("virtnetd cannot start: socket path {} is longer than {max} bytes; pick a shorter --socket", path.display())]
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
        /// The limit.
        max: usize,
    },

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
            DaemonError::NotAvailable { .. } => "not_available",
            DaemonError::NoSuchDevice { .. } => "no_such_device",
            DaemonError::RemovalPending { .. } => "removal_pending",
            DaemonError::NotHotpluggable(_) => "not_hotpluggable",
            DaemonError::Unsupported { .. } => "unsupported_configuration",
            DaemonError::ReplugPending { .. } => "removal_pending",
            DaemonError::ReplugFailed { .. } if self.is_user_error() => "refused",
            DaemonError::ReplugFailed { .. }
            | DaemonError::PlugFailed { .. }
            | DaemonError::PlugStalled { .. } => "hotplug_failed",
            DaemonError::VmRefused { .. } => "refused",
            DaemonError::Qmp { source } | DaemonError::ChardevChange { source, .. }
                if source.is_user_error() =>
            {
                "refused"
            }
            DaemonError::QmpRefused { .. } => "qmp_error",
            DaemonError::InUse { .. } | DaemonError::InUseByNetwork { .. } => "resource_in_use",
            DaemonError::InvalidState { .. } | DaemonError::NetworkState { .. } => "invalid_state",
            DaemonError::Broken { .. } => "broken_definition",
            DaemonError::Conflict(_) => "conflict",
            DaemonError::Store { .. } => "store",
            DaemonError::ReadOnly { .. } => "read_only",
            DaemonError::StartupIo { .. }
            | DaemonError::QemuUser { .. }
            | DaemonError::RoGroup { .. }
            | DaemonError::StateDirLocked { .. }
            | DaemonError::SocketInUse { .. }
            | DaemonError::NotASocket { .. }
            | DaemonError::SocketPathTooLong { .. } => "startup",
            DaemonError::VmFailed { .. }
            | DaemonError::Qmp { .. }
            | DaemonError::QmpUnreachable { .. }
            | DaemonError::QmpStalled { .. }
            | DaemonError::ChardevChange { .. }
            | DaemonError::HostUnavailable { .. }
            | DaemonError::SwitchNotFound { .. }
            | DaemonError::SwitchSpawn { .. }
            | DaemonError::SwitchUser { .. }
            | DaemonError::SwitchUplink { .. }
            | DaemonError::SwitchExited { .. }
            | DaemonError::SwitchStartTimeout { .. }
            | DaemonError::SwitchIo { .. }
            | DaemonError::SwitchReply { .. }
            | DaemonError::SwitchRefused { .. }
            | DaemonError::SwitchTimeout { .. }
            | DaemonError::CommandSpawn { .. }
            | DaemonError::CommandFailed { .. }
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
            | DaemonError::QmpRefused { .. }
            | DaemonError::NotHotpluggable(_)
            | DaemonError::NotAvailable { .. }
            | DaemonError::Unsupported { .. } => 400,
            DaemonError::UnsupportedMediaType { .. } => 415,
            DaemonError::PayloadTooLarge { .. } => 413,
            DaemonError::MethodNotAllowed { .. } => 405,
            DaemonError::ReadOnly { .. } => 403,
            DaemonError::InUse { .. }
            | DaemonError::InUseByNetwork { .. }
            | DaemonError::RemovalPending { .. }
            | DaemonError::AmbiguousInterface { .. }
            | DaemonError::InvalidState { .. }
            | DaemonError::NetworkState { .. }
            | DaemonError::Broken { .. }
            | DaemonError::Conflict(_)
            | DaemonError::ReplugPending { .. }
            | DaemonError::VmRefused { .. } => 409,
            // QEMU refused what the user configured; nothing changed.
            DaemonError::Qmp { source } | DaemonError::ChardevChange { source, .. }
                if source.is_user_error() =>
            {
                409
            }
            // The NIC is back as it was and the new socket was the user's problem.
            DaemonError::ReplugFailed { source, back, .. }
                if back.is_none() && source.is_user_error() =>
            {
                409
            }
            DaemonError::Store { .. }
            | DaemonError::StartupIo { .. }
            | DaemonError::QemuUser { .. }
            | DaemonError::RoGroup { .. }
            | DaemonError::StateDirLocked { .. }
            | DaemonError::SocketInUse { .. }
            | DaemonError::NotASocket { .. }
            | DaemonError::SocketPathTooLong { .. }
            | DaemonError::VmFailed { .. }
            | DaemonError::Qmp { .. }
            | DaemonError::QmpUnreachable { .. }
            | DaemonError::QmpStalled { .. }
            | DaemonError::PlugStalled { .. }
            | DaemonError::ChardevChange { .. }
            | DaemonError::HostUnavailable { .. }
            | DaemonError::SwitchNotFound { .. }
            | DaemonError::SwitchSpawn { .. }
            | DaemonError::SwitchUser { .. }
            | DaemonError::SwitchUplink { .. }
            | DaemonError::SwitchExited { .. }
            | DaemonError::SwitchStartTimeout { .. }
            | DaemonError::SwitchIo { .. }
            | DaemonError::SwitchReply { .. }
            | DaemonError::SwitchRefused { .. }
            | DaemonError::SwitchTimeout { .. }
            | DaemonError::CommandSpawn { .. }
            | DaemonError::CommandFailed { .. }
            | DaemonError::QemuBinary { .. }
            | DaemonError::ReplugFailed { .. }
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
mod tests;
