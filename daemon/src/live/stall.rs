//! A running VM whose QEMU stopped answering its monitor ([`Stall`]).
//!
//! QEMU 7.2 blocks (monitor included) inside `netdev_add` of a vhost-user netdev while the back
//! end does not answer the handshake. When a QMP command of an operation passes its deadline,
//! the VM is marked stalled: live operations are refused at once with the reason
//! ([`crate::live::Live::qmp_client`]) instead of each timing out in turn, `destroy` works, and
//! a watcher ([`spawn_stall_watch`]) sends one probe that QEMU answers only after the stalled
//! command and the undo queued behind it. Then the mark is cleared and whatever the late reply
//! created (device, netdev, chardev) and is still there is removed, so the VM is as it was
//! before the operation. A stall inside `netdev_add` on a socket QEMU listens on also gets a
//! stand-in back end (`rescue`), as QEMU 7.2 waits there for a new connection once the silent
//! one goes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::AbortHandle;
use virtnet_qemu::QmpClient;

use super::qmp::QmpLink;
use crate::daemon::Daemon;
use crate::model::Stalled;

/// How long one probe waits for QEMU (it is sent again after that).
const PROBE_WAIT: Duration = Duration::from_secs(3600);
/// Deadline of each command that removes what a late reply created.
const CLEANUP_WAIT: Duration = Duration::from_secs(5);

/// The QEMU objects a stalled operation may still create once QEMU answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LateObjects {
    /// A device id (`net1`).
    pub device: Option<String>,
    /// A netdev id (`hostnet1`).
    pub netdev: Option<String>,
    /// A chardev id (`charnet1`).
    pub chardev: Option<String>,
}

/// Why and since when a VM's QEMU does not answer, and what is left to undo.
#[derive(Debug)]
pub struct Stall {
    /// What the API shows.
    pub info: Stalled,
    /// What to remove from QEMU once it answers again.
    pub late: LateObjects,
    /// Sockets QEMU listens on for the stalled NIC (vhost-user `mode='server'`): `destroy`
    /// removes them, as QEMU killed leaves them.
    pub sockets: Vec<PathBuf>,
}

impl Stall {
    /// A stall found now by `operation`, for `reason`.
    pub fn new(operation: &str, reason: String, late: LateObjects, sockets: Vec<PathBuf>) -> Stall {
        Stall {
            info: Stalled {
                reason,
                operation: operation.to_string(),
                since_unix_ms: now_unix_ms(),
            },
            late,
            sockets,
        }
    }

    /// Takes in a later stall's objects and sockets (the reason and time stay the first's).
    pub fn absorb(&mut self, later: Stall) {
        let l = &mut self.late;
        l.device = l.device.take().or(later.late.device);
        l.netdev = l.netdev.take().or(later.late.netdev);
        l.chardev = l.chardev.take().or(later.late.chardev);
        self.sockets.extend(later.sockets);
    }

    /// How long ago it started, for messages (`12.3s`).
    pub fn age(&self) -> String {
        let ms = now_unix_ms().saturating_sub(self.info.since_unix_ms);
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Spawns the stall watcher of VM `name` (instance `id`), for as long as the VM runs: each
/// time a stall is marked on `qmp`, it sends one probe at a time until QEMU answers, then calls
/// [`Daemon::on_qemu_answers`]. Stops when aborted (the VM stops) or the daemon is gone.
pub(crate) fn spawn_stall_watch(
    daemon: &Daemon,
    name: &str,
    id: u32,
    qmp: Arc<QmpLink>,
) -> AbortHandle {
    let me = daemon.weak();
    let name = name.to_string();
    tokio::spawn(async move {
        loop {
            qmp.stall_marked().await;
            loop {
                let Ok(client) = qmp.client().await else {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                };
                // QEMU runs commands in order: this answer comes after the stalled command's
                // and after the undo queued behind it.
                match client
                    .execute_with_timeout("query-status", json!({}), PROBE_WAIT)
                    .await
                {
                    Ok(_) => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            match me.upgrade() {
                Some(d) => d.on_qemu_answers(&name, id).await,
                None => return,
            }
        }
    })
    .abort_handle()
}

impl Daemon {
    /// QEMU of VM `name` (instance `id`) answers again: the stalled mark is cleared, what the
    /// late reply created is removed, and the view is published.
    pub(crate) async fn on_qemu_answers(&self, name: &str, id: u32) {
        let Ok(entry) = self.entry(name) else { return };
        let slot = entry.slot.lock().await;
        let Some(l) = slot.live.as_ref().filter(|l| l.status.id == id) else {
            return;
        };
        let Some(stall) = l.qmp.take_stall() else {
            return;
        };
        let left = match l.qmp.client().await {
            Ok(c) => remove_late(&c, &stall.late).await,
            Err(e) => vec![e.to_string()],
        };
        for x in &left {
            tracing::error!(vm = %name, leftover = %x, "cannot remove what a late QMP reply created");
        }
        tracing::info!(vm = %name, stalled_for = %stall.age(), operation = %stall.info.operation,
            "QEMU answers again; stalled state cleared");
        entry.publish(&slot, None);
    }
}

/// Removes from QEMU whichever of `late` it has; returns what could not be removed.
pub(crate) async fn remove_late(qmp: &QmpClient, late: &LateObjects) -> Vec<String> {
    let mut left = Vec::new();
    let run = |cmd: &'static str, args: serde_json::Value| {
        let qmp = qmp.clone();
        async move {
            qmp.execute_with_timeout(cmd, args, CLEANUP_WAIT)
                .await
                .map_err(|e| format!("{cmd}: {e}"))
        }
    };
    if let Some(dev) = &late.device {
        match run("qom-list", json!({"path": "/machine/peripheral"})).await {
            Ok(list) if has_name(&list, "name", dev) => {
                tracing::warn!(device = %dev, "a late device_add took effect; removing it");
                if let Err(e) = run("device_del", json!({"id": dev})).await {
                    left.push(e);
                }
            }
            Ok(_) => {}
            Err(e) => left.push(e),
        }
    }
    if let Some(net) = &late.netdev {
        let info = run(
            "human-monitor-command",
            json!({"command-line": "info network"}),
        )
        .await;
        match info {
            Ok(text) if has_netdev(text.as_str().unwrap_or_default(), net) => {
                tracing::warn!(netdev = %net, "a late netdev_add took effect; removing it");
                if let Err(e) = run("netdev_del", json!({"id": net})).await {
                    left.push(e);
                }
            }
            Ok(_) => {}
            Err(e) => left.push(e),
        }
    }
    if let Some(chr) = &late.chardev {
        match run("query-chardev", json!({})).await {
            Ok(list) if has_name(&list, "label", chr) => {
                tracing::warn!(chardev = %chr, "a chardev of the stalled operation is left; removing it");
                if let Err(e) = run("chardev-remove", json!({"id": chr})).await {
                    left.push(e);
                }
            }
            Ok(_) => {}
            Err(e) => left.push(e),
        }
    }
    left
}

/// Whether a QMP list of objects has one whose `key` is `value`.
fn has_name(list: &serde_json::Value, key: &str, value: &str) -> bool {
    list.as_array()
        .is_some_and(|v| v.iter().any(|o| o[key] == value))
}

/// Whether HMP `info network` lists netdev `id` (as `hostnet1: index=0,type=...`, alone or
/// under its NIC as ` \ hostnet1: ...`).
pub(crate) fn has_netdev(info: &str, id: &str) -> bool {
    info.lines().any(|l| {
        l.trim_start_matches([' ', '\\', '\t'])
            .strip_prefix(id)
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

#[cfg(test)]
mod tests {
    use super::has_netdev;

    #[test]
    fn info_network_lines_name_netdevs() {
        // As QEMU 7.2 prints it: a NIC with its netdev, and a netdev without a NIC.
        let info = "net0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:00:00:01\r\n \
                    \\ hostnet0: index=0,type=tap,fd=3\r\nhostnet1: index=0,type=vhost-user,\
                    vhost-user to charnet1\r\n";
        assert!(has_netdev(info, "hostnet0"));
        assert!(has_netdev(info, "hostnet1"));
        assert!(!has_netdev(info, "hostnet"));
        assert!(!has_netdev(info, "net1"));
    }
}
