//! NIC hot-plug and unplug on a running VM: the daemon's side of `virtnet_vm`'s hot-plug plan
//! and executor. This module turns the executor's results into what the live status keeps
//! (so a restarted daemon can unplug a NIC and release its host side) and back.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use virtnet_conf::Interface;
use virtnet_host::HostNet;
use virtnet_qemu::QemuCaps;

use super::Live;
use crate::error::{DaemonError, Result};
use crate::store::LiveStatus;

/// What the live status keeps about a NIC plugged in while the VM runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluggedNic {
    /// The executor's record of it.
    pub state: serde_json::Value,
}

/// A removal waiting for the guest (`DEVICE_DELETED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRemoval {
    /// When `device_del` was sent, in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
    /// The executor's record of what is left to do.
    pub state: serde_json::Value,
}

/// A NIC just plugged in.
#[derive(Debug, Clone)]
pub struct Plugged {
    /// The interface as plugged (alias, host device name, guest address).
    pub iface: Interface,
    record: PluggedNic,
}

impl Plugged {
    /// Records the NIC in `status` (its QEMU ids, fds and host objects).
    pub fn record_into(&self, status: &mut LiveStatus) {
        let alias = self.iface.alias().unwrap_or_default().to_string();
        status.plugged.insert(alias, self.record.clone());
    }
}

/// How an unplug went.
#[derive(Debug)]
pub enum Unplug {
    /// The NIC is gone from QEMU and the host.
    Done,
    /// The guest has not released it yet.
    Pending(PendingRemoval),
}

fn unavailable() -> DaemonError {
    DaemonError::Internal("NIC hot-plug needs virtnet-vm's hot-plug executor".into())
}

/// Plugs `iface` (complete: MAC, model, guest address) into the running VM.
pub async fn plug(
    _l: &Live,
    _host: &dyn HostNet,
    _caps: &QemuCaps,
    _iface: &Interface,
) -> Result<Plugged> {
    Err(unavailable())
}

/// Undoes a plug that cannot be kept; returns what could not be undone.
pub async fn unplug_now(_l: &Live, _host: &dyn HostNet, _p: &Plugged) -> Vec<String> {
    vec![unavailable().to_string()]
}

/// Unplugs interface `index`, waiting up to `timeout` for the guest; on success its records
/// are taken out of `status`.
pub async fn unplug(
    _l: &mut Live,
    _host: &dyn HostNet,
    _index: usize,
    _timeout: Duration,
    _status: &mut LiveStatus,
) -> Result<Unplug> {
    Err(unavailable())
}

/// Finishes the pending removal of `alias` after the guest released it; its records are taken
/// out of `status`. Returns what could not be cleaned up.
pub async fn finish(
    _l: &mut Live,
    _host: &dyn HostNet,
    _alias: &str,
    _status: &mut LiveStatus,
) -> Vec<String> {
    vec![unavailable().to_string()]
}

/// Whether QEMU still has device `alias` (`qom-list /machine/peripheral`).
pub async fn device_present(l: &Live, alias: &str) -> Result<bool> {
    let list = l
        .qmp("qom-list", json!({"path": "/machine/peripheral"}))
        .await?;
    Ok(list
        .as_array()
        .is_some_and(|v| v.iter().any(|c| c["name"] == alias)))
}
