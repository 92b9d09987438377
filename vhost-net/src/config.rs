//! Switch settings; a port's settings are the control protocol's [`PortConfig`].

use std::time::Duration;

pub use virtnet_vswitch_control::{PortConfig, SocketMode, MAX_QUEUE_PAIRS};

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
