//! The JSON documents of the domain endpoints (`/v1/domains`, `/v1/version`) and the error
//! body, shared by virtnetd and the `virtnet` CLI.
//! `daemon/openapi.yaml` describes the same shapes.

use serde::{Deserialize, Serialize};

/// The version of the HTTP API (the `/v1` path prefix).
pub const API_VERSION: u32 = 1;

/// Why a VM last stopped (libvirt's shut-off reasons that virtnet can tell apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The guest powered off.
    Shutdown,
    /// Stopped by the host (destroy, or a shutdown the guest did not act on in time).
    Destroyed,
    /// The guest crashed (a guest panic).
    Crashed,
    /// QEMU ended without being asked to.
    Failed,
    /// The guest moved to another host (live migration).
    Migrated,
}

/// A VM's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    /// QEMU runs.
    Running,
    /// Defined, not running.
    ShutOff,
    /// A start is in progress.
    Starting,
    /// A shutdown or destroy is in progress.
    ShuttingDown,
    /// The live status could not be read; see the problem.
    Unknown,
}

impl VmState {
    /// The state in words, as `virsh list` prints it.
    pub fn as_words(&self) -> &'static str {
        match self {
            VmState::Running => "running",
            VmState::ShutOff => "shut off",
            VmState::Starting => "starting",
            VmState::ShuttingDown => "in shutdown",
            VmState::Unknown => "unknown",
        }
    }
}

/// A running VM whose QEMU stopped answering its monitor: a QMP command of an operation got no
/// reply within its deadline (QEMU 7.2 blocks inside `netdev_add` while a vhost-user back end
/// does not answer). Live operations on it are refused with this reason until QEMU answers
/// again (then it clears by itself and what the late reply created is undone); `destroy`
/// works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stalled {
    /// Why: the command that got no reply and what QEMU is likely waiting for.
    pub reason: String,
    /// The operation that found it (`attach-device`, `qemu-monitor-command`, ...).
    pub operation: String,
    /// Since when, in milliseconds since the epoch.
    pub since_unix_ms: u64,
}

/// One line of `GET /v1/domains`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainSummary {
    /// VM name.
    pub name: String,
    /// VM UUID (absent only when the definition cannot be read).
    pub uuid: Option<String>,
    /// Domain id while running.
    pub id: Option<u32>,
    /// State.
    pub state: VmState,
    /// Whether a persistent definition is stored.
    pub persistent: bool,
    /// What is wrong with the stored files, if anything.
    pub problem: Option<String>,
    /// Set while QEMU's monitor does not answer (state stays `running`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled: Option<Stalled>,
}

/// `GET /v1/domains`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainList {
    /// Every VM the daemon knows, sorted by name.
    pub domains: Vec<DomainSummary>,
}

/// `GET /v1/domains/{name}` and the answer of start/shutdown/destroy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainInfo {
    /// VM name.
    pub name: String,
    /// VM UUID.
    pub uuid: Option<String>,
    /// Domain id while running.
    pub id: Option<u32>,
    /// State.
    pub state: VmState,
    /// Whether a persistent definition is stored.
    pub persistent: bool,
    /// Guest memory in KiB.
    pub memory_kib: Option<u64>,
    /// vCPUs.
    pub vcpus: Option<u32>,
    /// Number of network interfaces.
    pub interfaces: usize,
    /// QEMU's pid while running.
    pub pid: Option<u32>,
    /// QEMU's QMP socket while running.
    pub qmp_socket: Option<String>,
    /// QEMU's log file while running.
    pub log_path: Option<String>,
    /// What is wrong with the stored files, if anything.
    pub problem: Option<String>,
    /// Set while QEMU's monitor does not answer (state stays `running`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled: Option<Stalled>,
    /// While running: the VM's cgroup, or why it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupInfo>,
    /// While shut off: why it last stopped, if it ran since virtnetd started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
}

/// Where a running VM's processes are accounted and limited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CgroupInfo {
    /// In its own group.
    Placed {
        /// `v1` or `v2`.
        version: String,
        /// One directory per v1 hierarchy, or the one v2 directory.
        dirs: Vec<CgroupDirInfo>,
    },
    /// No group: the host offers no usable cgroup controller.
    Unavailable {
        /// Why, in words.
        reason: String,
    },
}

/// One directory of a VM's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDirInfo {
    /// The directory (`/sys/fs/cgroup/memory/.../virtnet/<uuid>`).
    pub path: String,
    /// Its controllers (`memory`, `pids`, `cpu`).
    pub controllers: Vec<String>,
}

impl CgroupInfo {
    /// One line: `v1: /sys/fs/cgroup/memory/x (memory), ...` or `none usable: <reason>`.
    pub fn describe(&self) -> String {
        match self {
            CgroupInfo::Placed { version, dirs } => {
                let d: Vec<String> = dirs
                    .iter()
                    .map(|d| format!("{} ({})", d.path, d.controllers.join(",")))
                    .collect();
                format!("{version}: {}", d.join(", "))
            }
            CgroupInfo::Unavailable { reason } => format!("none usable: {reason}"),
        }
    }
}

/// `POST /v1/domains` with `Content-Type: application/json` (with `application/xml` the body
/// is the XML itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefineRequest {
    /// The domain XML.
    pub xml: String,
}

/// The answer of `POST /v1/domains`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefineResponse {
    /// VM name.
    pub name: String,
    /// VM UUID (generated when the XML had none).
    pub uuid: String,
    /// True for a new VM, false when an existing definition was replaced.
    pub created: bool,
    /// Things that work but deserve a look (e.g. a MAC another VM's definition uses).
    pub warnings: Vec<String>,
}

/// The answer of `DELETE /v1/domains/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndefineResponse {
    /// VM name.
    pub name: String,
}

/// `GET /v1/domains/{name}/xml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XmlResponse {
    /// VM name.
    pub name: String,
    /// True for the persistent definition, false for the running VM's live definition.
    pub inactive: bool,
    /// The domain XML.
    pub xml: String,
}

/// One row of `GET /v1/domains/{name}/interfaces` (`virsh domiflist`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceRow {
    /// Host device (`<target dev>`), when known.
    pub interface: Option<String>,
    /// Interface type (`bridge`, `vhostuser`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// What it is connected to: bridge, network, host device, socket path, host PCI address.
    pub source: Option<String>,
    /// NIC model.
    pub model: Option<String>,
    /// Guest MAC.
    pub mac: Option<String>,
    /// Device alias.
    pub alias: Option<String>,
    /// Link state: `up` or `down`.
    pub link: String,
    /// True while a detach of this interface waits for the guest to release it (the
    /// removal completes when QEMU reports `DEVICE_DELETED`).
    #[serde(default)]
    pub removal_pending: bool,
    /// The NIC's `<filterref>` as enforced on the host (running VMs, filtered tap NICs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterReport>,
}

/// What a NIC's anti-spoofing filter (`<filterref>`) has done so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterReport {
    /// The filter name (`clean-traffic`).
    pub filter: String,
    /// Where it is enforced: the nftables table (`bridge virtnet-filter-VM-TAP`).
    pub table: String,
    /// Whether the table is loaded (false: it is gone, the NIC is not filtered: a fault).
    pub loaded: bool,
    /// Frames dropped, per counter (`mac_spoofing`, `ip_spoofing`, `arp_spoofing`,
    /// `other_l2`, `other_l2_in`).
    #[serde(default)]
    pub dropped: std::collections::BTreeMap<String, u64>,
    /// The address learnt (no `<parameter name='IP'>`: the first the guest used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_ip: Option<String>,
    /// Why the counters could not be read, if they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /v1/domains/{name}/interfaces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceList {
    /// VM name.
    pub name: String,
    /// True when listed from the persistent definition (VM not running).
    pub inactive: bool,
    /// The interfaces, in definition order.
    pub interfaces: Vec<InterfaceRow>,
}

/// Optional body of `POST /v1/domains/{name}/shutdown`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownRequest {
    /// Seconds the guest gets to power off after the ACPI power button (default 30); then
    /// QEMU is terminated (SIGTERM, then SIGKILL), as `destroy` does at once.
    pub timeout_secs: Option<u64>,
}

/// The answer of `POST /v1/domains/{name}/shutdown` and `.../destroy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopResponse {
    /// VM name.
    pub name: String,
    /// What ended QEMU: `powerdown` (the guest powered off), `sigterm`, `sigkill`, or
    /// `already_exited`.
    pub stopped_by: String,
    /// Host resources that could not be released (empty when all were).
    pub leftovers: Vec<String>,
}

/// `GET /v1/version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// virtnetd's version.
    pub daemon: String,
    /// [`API_VERSION`].
    pub api: u32,
}

/// Every error answer: `{"error": {"kind": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable kind (`no_such_vm`, `invalid_xml`, `resource_in_use`, ...).
    pub kind: String,
    /// What was wrong and how to fix it.
    pub message: String,
}

/// A link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// Carrier on.
    Up,
    /// Carrier off.
    Down,
}

/// Body of `POST /v1/domains/{name}/interfaces/{iface}/link` (`virsh domif-setlink`).
///
/// `live` changes the running VM, `config` the persistent definition; neither means the
/// running VM when it runs, else the definition (libvirt's "current").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLinkRequest {
    /// The new state.
    pub state: Link,
    /// Change the running VM.
    #[serde(default)]
    pub live: bool,
    /// Change the persistent definition.
    #[serde(default)]
    pub config: bool,
}

/// The answer of `POST /v1/domains/{name}/interfaces/{iface}/link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetLinkResponse {
    /// VM name.
    pub name: String,
    /// The interface's MAC.
    pub mac: String,
    /// The state set.
    pub state: Link,
    /// Whether the running VM was changed.
    pub live: bool,
    /// Whether the persistent definition was changed.
    pub config: bool,
}

/// Body of `POST /v1/domains/{name}/qmp` (`virsh qemu-monitor-command`): one QMP command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QmpRequest {
    /// The command (`query-status`, ...).
    pub execute: String,
    /// Its arguments (an object; default none).
    #[serde(default)]
    pub arguments: Option<serde_json::Value>,
}

/// The answer of `POST /v1/domains/{name}/qmp`: QEMU's `return` value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QmpResponse {
    /// What QEMU returned.
    #[serde(rename = "return")]
    pub return_: serde_json::Value,
}

/// Where a device change applies, as virsh's `--live`, `--config`, `--persistent` (none of
/// them: the running VM when it runs, else the definition). The requests carry the three
/// flags as fields `live`, `config`, `persistent`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeScope {
    /// Change the running VM (refused when it does not run).
    pub live: bool,
    /// Change the persistent definition.
    pub config: bool,
    /// Change the persistent definition, and the running VM if it runs (decided under the
    /// VM's lock, so a concurrent start or stop cannot split the change).
    pub persistent: bool,
}

macro_rules! scope_of {
    ($($t:ty),*) => {$(
        impl $t {
            /// The request's `live`/`config`/`persistent` flags.
            pub fn scope(&self) -> ChangeScope {
                ChangeScope {
                    live: self.live,
                    config: self.config,
                    persistent: self.persistent,
                }
            }
        }
    )*};
}
scope_of!(
    AttachRequest,
    DetachRequest,
    UpdateRequest,
    ChardevChangeRequest
);

/// Body of `POST /v1/domains/{name}/devices` (`virsh attach-device`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachRequest {
    /// The device XML: one `<interface>` element.
    pub xml: String,
    /// Change the running VM (see [`ChangeScope`]).
    #[serde(default)]
    pub live: bool,
    /// Change the persistent definition.
    #[serde(default)]
    pub config: bool,
    /// Change the definition, and the running VM if it runs.
    #[serde(default)]
    pub persistent: bool,
}

/// The answer of `POST /v1/domains/{name}/devices`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachResponse {
    /// VM name.
    pub name: String,
    /// The interface as attached (from the live definition when the running VM was changed).
    pub interface: InterfaceRow,
    /// Whether the running VM was changed.
    pub live: bool,
    /// Whether the persistent definition was changed.
    pub config: bool,
    /// Things that work but deserve a look.
    pub warnings: Vec<String>,
}

/// Body of `POST /v1/domains/{name}/devices/detach` (`virsh detach-device` with `xml`,
/// `virsh detach-interface` with `type` and optionally `mac`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetachRequest {
    /// The device XML: an `<interface>` whose MAC (or `<alias>`) names the one to remove.
    #[serde(default)]
    pub xml: Option<String>,
    /// Instead of `xml`: the interface type (`bridge`, `vhostuser`, ...).
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// With `type`: the MAC (needed when several interfaces have that type).
    #[serde(default)]
    pub mac: Option<String>,
    /// Change the running VM (see [`ChangeScope`]).
    #[serde(default)]
    pub live: bool,
    /// Change the persistent definition.
    #[serde(default)]
    pub config: bool,
    /// Change the definition, and the running VM if it runs.
    #[serde(default)]
    pub persistent: bool,
    /// How long to wait for the guest to release the device (default 10 s). When it does
    /// not, the removal stays pending and completes when it does.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// The answer of `POST /v1/domains/{name}/devices/detach`: 200 when removed, 202 when the
/// removal from the running VM is pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachResponse {
    /// VM name.
    pub name: String,
    /// The interface's MAC.
    pub mac: Option<String>,
    /// Its alias in the running VM.
    pub alias: Option<String>,
    /// Whether the running VM was changed (or its change is pending).
    pub live: bool,
    /// Whether the persistent definition was changed.
    pub config: bool,
    /// True when the guest has not released the device yet: the removal stays pending,
    /// shown by `domiflist`, and completes when QEMU reports `DEVICE_DELETED`.
    pub pending: bool,
    /// What happened, in words.
    pub message: String,
}

/// Body of `POST /v1/domains/{name}/devices/update` (`virsh update-device`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// The device XML: the `<interface>` as it should be, found by its MAC (or alias).
    pub xml: String,
    /// Change the running VM (see [`ChangeScope`]).
    #[serde(default)]
    pub live: bool,
    /// Change the persistent definition.
    #[serde(default)]
    pub config: bool,
    /// Change the definition, and the running VM if it runs.
    #[serde(default)]
    pub persistent: bool,
    /// Allow a live change that needs the NIC unplugged and plugged again (a vhost-user
    /// socket path: QEMU cannot swap a vhost-user NIC's chardev). MAC, alias and PCI address
    /// are kept; the guest sees the link go down and up.
    #[serde(default)]
    pub replug: bool,
    /// For a replug: how long to wait for the guest to release the old NIC (default 10 s).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// The answer of `POST /v1/domains/{name}/devices/update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateResponse {
    /// VM name.
    pub name: String,
    /// The interface's MAC.
    pub mac: Option<String>,
    /// What changed, in words (empty when nothing differed).
    pub changed: Vec<String>,
    /// Whether the running VM was changed.
    pub live: bool,
    /// Whether the persistent definition was changed.
    pub config: bool,
    /// Whether the NIC was unplugged and plugged again.
    pub replugged: bool,
}

/// A character device back end `chardev-change` can switch to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChardevType {
    /// A new pseudo terminal (its path is in the answer).
    Pty,
    /// A unix socket (`mode` bind: QEMU listens; connect: QEMU connects).
    Unix,
    /// Output written to a file.
    File,
    /// Output discarded.
    Null,
}

/// Who listens on a unix socket back end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketSide {
    /// QEMU listens (libvirt's `mode='bind'`).
    #[default]
    Bind,
    /// QEMU connects to a listening socket.
    Connect,
}

/// Body of `POST /v1/domains/{name}/chardevs/{device}`: switch a serial port's, console's or
/// channel's host side while the guest keeps running (QMP `chardev-change`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChardevChangeRequest {
    /// The new back end.
    #[serde(rename = "type")]
    pub type_: ChardevType,
    /// The file or socket path (absolute; not for pty and null).
    #[serde(default)]
    pub path: Option<String>,
    /// For `unix`: who listens (default bind).
    #[serde(default)]
    pub mode: Option<SocketSide>,
    /// For `file`: append instead of truncating.
    #[serde(default)]
    pub append: Option<bool>,
    /// Change the running VM (see [`ChangeScope`]).
    #[serde(default)]
    pub live: bool,
    /// Change the persistent definition.
    #[serde(default)]
    pub config: bool,
    /// Change the definition, and the running VM if it runs.
    #[serde(default)]
    pub persistent: bool,
}

/// The answer of `POST /v1/domains/{name}/chardevs/{device}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChardevChangeResponse {
    /// VM name.
    pub name: String,
    /// The device's alias (`serial1`, `channel0`, ...).
    pub device: String,
    /// The new back end.
    #[serde(rename = "type")]
    pub type_: ChardevType,
    /// The path: the file, the socket, or the pty QEMU allocated (live only).
    pub path: Option<String>,
    /// Whether the running VM was changed.
    pub live: bool,
    /// Whether the persistent definition was changed.
    pub config: bool,
}

/// `GET /v1/domains/{name}/interfaces/{iface}/stats` (`virtnet domifstat`): a running VM's NIC
/// counters seen from the guest, as `virsh domifstat` reports them (`tx` is what the guest
/// sent). A counter the source does not keep is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStats {
    /// VM name.
    pub name: String,
    /// The interface as asked (host device name, MAC or alias).
    pub interface: String,
    /// Where the counters come from: `tap DEV`, `macvtap DEV` or `switch port PORT`.
    pub source: String,
    /// Bytes the guest received.
    pub rx_bytes: u64,
    /// Packets the guest received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errs: Option<u64>,
    /// Packets for the guest dropped before it received them.
    pub rx_drop: u64,
    /// Bytes the guest sent.
    pub tx_bytes: u64,
    /// Packets the guest sent.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errs: Option<u64>,
    /// Packets the guest sent that were dropped.
    pub tx_drop: u64,
}

/// Where `domifaddr` takes addresses from (`?source=`), as virsh's `--source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddrSource {
    /// The host's view: the neighbour (ARP) table, the switch's learned address.
    Arp,
    /// A DHCP server's leases (virtnet runs none: refused).
    Lease,
    /// The guest agent (virtnet has none: refused).
    Agent,
}

/// One address of a NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpAddress {
    /// `ipv4` or `ipv6`.
    pub protocol: String,
    /// The address.
    pub address: String,
    /// Prefix length (0 when unknown, as from ARP).
    pub prefix: u32,
}

/// One NIC's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceAddress {
    /// Host device name (`<target dev>`), else the alias.
    pub interface: String,
    /// Guest MAC.
    pub mac: String,
    /// The addresses found (may be empty).
    pub addresses: Vec<IpAddress>,
    /// Why no address is known, when none is.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

/// `GET /v1/domains/{name}/addresses?source=arp` (`virtnet domifaddr`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceAddresses {
    /// VM name.
    pub name: String,
    /// Every NIC of the running VM (or the one asked for).
    pub interfaces: Vec<InterfaceAddress>,
}
