//! The settings of a vhost-user port (`add-port`).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::policy::PortPolicy;

/// Which side of the vhost-user socket the switch takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SocketMode {
    /// The switch connects; QEMU listens (libvirt `mode='server'` on the interface's
    /// `<source>`). Either side may restart: the switch reconnects with backoff.
    #[default]
    Client,
    /// The switch listens and QEMU connects (QEMU needs `reconnect=` to survive a
    /// switch restart).
    Server,
}

/// Largest number of queue pairs per port.
pub const MAX_QUEUE_PAIRS: u16 = 16;

/// One vhost-user port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortConfig {
    /// Unique port name (e.g. the domain and interface alias).
    pub name: String,
    /// vhost-user socket path.
    pub socket: PathBuf,
    /// Client (default) or server.
    #[serde(default)]
    pub mode: SocketMode,
    /// Queue pairs offered (VIRTIO_NET_F_MQ when more than one), 1..=16.
    #[serde(default = "one")]
    pub queues: u16,
    /// MTU offered to the guest (VIRTIO_NET_F_MTU) and enforced on non-GSO frames.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// VLAN, isolation, rate limits and filter ([`PortPolicy`]); default: none.
    #[serde(default, skip_serializing_if = "PortPolicy::is_default")]
    pub policy: PortPolicy,
}

fn one() -> u16 {
    1
}

fn default_mtu() -> u16 {
    1500
}

impl PortConfig {
    /// A client-mode, single-queue port with MTU 1500.
    pub fn new(name: impl Into<String>, socket: impl Into<PathBuf>) -> Self {
        PortConfig {
            name: name.into(),
            socket: socket.into(),
            mode: SocketMode::Client,
            queues: 1,
            mtu: 1500,
            policy: PortPolicy::default(),
        }
    }

    /// Checks the values a user could get wrong (the switch refuses such a port).
    pub fn validate(&self) -> Result<(), InvalidPort> {
        if self.name.is_empty() || self.name.len() > 64 || self.name.contains(char::is_whitespace) {
            return Err(InvalidPort(format!(
                "port name '{}' must be 1 to 64 characters without spaces",
                self.name
            )));
        }
        if self.queues == 0 || self.queues > MAX_QUEUE_PAIRS {
            return Err(InvalidPort(format!(
                "port '{}': queues={} is out of range, use 1 to {MAX_QUEUE_PAIRS}",
                self.name, self.queues
            )));
        }
        if self.mtu < 68 {
            return Err(InvalidPort(format!(
                "port '{}': mtu={} is below the IPv4 minimum of 68",
                self.name, self.mtu
            )));
        }
        self.policy.check_enforced(&self.name)?;
        if self.socket.as_os_str().is_empty() {
            return Err(InvalidPort(format!(
                "port '{}': the socket path is empty",
                self.name
            )));
        }
        Ok(())
    }
}

/// Why a [`PortConfig`] is refused: what is wrong and the range to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPort(pub String);

impl fmt::Display for InvalidPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidPort {}
