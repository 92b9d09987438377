//! API types of the network endpoints (`/v1/networks`), shared with the `virtnet` CLI.

use serde::{Deserialize, Serialize};

/// One network, as `GET /v1/networks` and `GET /v1/networks/NAME` show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NetworkInfo {
    /// The network's name.
    pub name: String,
    /// Its UUID (`8-4-4-4-12` hex; empty only from a daemon older than network UUIDs).
    #[serde(default)]
    pub uuid: String,
    /// `active` (its switch runs) or `inactive`.
    pub state: String,
    /// The uplink tap, if any (while active: the one the switch runs with).
    pub uplink: Option<String>,
    /// Whether virtnetd starts the network when it starts (`net-autostart`).
    #[serde(default)]
    pub autostart: bool,
    /// The switch's pid while active.
    pub pid: Option<i32>,
    /// The switch's control socket while active.
    pub control: Option<String>,
    /// How often the daemon restarted the switch after it died.
    pub restarts: u32,
    /// The VM ports on the switch.
    pub ports: Vec<PortInfo>,
    /// An Open vSwitch network's bridge (`<bridge name>`; such a network has no switch,
    /// uplink or switch ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
}

/// One VM NIC on a switch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortInfo {
    /// The switch's port name (`VM-MAC`).
    pub name: String,
    /// The VM.
    pub vm: String,
    /// The vhost-user socket (QEMU listens, the switch connects).
    pub socket: String,
    /// Queue pairs of the port (the NIC's `<driver queues>`, else 1).
    #[serde(default = "one")]
    pub queues: u32,
}

fn one() -> u32 {
    1
}

/// The answer to `POST /v1/networks` (net-define).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NetDefineResponse {
    /// The network's name.
    pub name: String,
    /// Whether it is new (else an existing definition was replaced).
    pub created: bool,
}

/// The answer to `GET /v1/networks/NAME/xml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NetXml {
    /// The network's name.
    pub name: String,
    /// Its canonical XML.
    pub xml: String,
}

/// The body of `POST /v1/networks/NAME/autostart` (net-autostart); an empty body enables.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NetAutostartRequest {
    /// Start the network when virtnetd starts (`false`: `net-autostart --disable`).
    #[serde(default = "yes")]
    pub enable: bool,
}

impl Default for NetAutostartRequest {
    fn default() -> Self {
        NetAutostartRequest { enable: true }
    }
}

fn yes() -> bool {
    true
}
