//! Switch and port settings (also the shapes of the control protocol's requests).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
        }
    }

    /// Checks the values a user could get wrong.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.len() > 64 || self.name.contains(char::is_whitespace) {
            return Err(Error::InvalidOption(format!(
                "port name '{}' must be 1 to 64 characters without spaces",
                self.name
            )));
        }
        if self.queues == 0 || self.queues > MAX_QUEUE_PAIRS {
            return Err(Error::InvalidOption(format!(
                "port '{}': queues={} is out of range, use 1 to {MAX_QUEUE_PAIRS}",
                self.name, self.queues
            )));
        }
        if self.mtu < 68 {
            return Err(Error::InvalidOption(format!(
                "port '{}': mtu={} is below the IPv4 minimum of 68",
                self.name, self.mtu
            )));
        }
        if self.socket.as_os_str().is_empty() {
            return Err(Error::InvalidOption(format!(
                "port '{}': the socket path is empty",
                self.name
            )));
        }
        Ok(())
    }
}

/// Switch-wide settings.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    /// MAC table ageing time.
    pub ageing: Duration,
    /// MAC table capacity.
    pub mac_capacity: usize,
    /// After a transmit queue runs dry, keep polling it this long before re-enabling
    /// guest notifications (0: sleep on the kick eventfd at once). Polling trades CPU
    /// for packet rate.
    pub poll: Duration,
    /// Largest delay between client-mode reconnect attempts.
    pub max_backoff: Duration,
    /// Threads polling transmit queues (one per core you give the switch); queue pairs
    /// are spread over them round-robin.
    pub poll_threads: usize,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            ageing: Duration::from_secs(300),
            mac_capacity: 8192,
            poll: Duration::from_micros(20),
            max_backoff: Duration::from_secs(1),
            poll_threads: 1,
        }
    }
}
