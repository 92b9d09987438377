//! The API's JSON documents (requests and responses), shared with the `virtnet` CLI.
//! `daemon/openapi.yaml` describes the same shapes.

use serde::{Deserialize, Serialize};

/// The version of the HTTP API (the `/v1` path prefix).
pub const API_VERSION: u32 = 1;

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
