//! The event listener of a running VM: one task per VM that follows QEMU's events on the VM's
//! [`QmpLink`] for as long as the VM runs (started or adopted), so a removal the guest
//! completes after its detach gave up waiting is finished as soon as QEMU reports
//! `DEVICE_DELETED`, not at the next command.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::task::AbortHandle;

use super::qmp::QmpLink;
use crate::daemon::Daemon;

/// How long to wait before connecting again after the connection was lost or refused.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Spawns the listener of VM `name` (instance `id`). It stops when aborted (the VM stops) or
/// when the daemon is gone.
pub(crate) fn spawn_event_listener(
    daemon: &Daemon,
    name: &str,
    id: u32,
    qmp: Arc<QmpLink>,
) -> AbortHandle {
    let me = daemon.weak();
    let name = name.to_string();
    tokio::spawn(async move {
        loop {
            let client = match qmp.client().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(vm = %name, error = %e, "event listener cannot reach QMP; retrying");
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            };
            let mut events = client.subscribe();
            // Deletions that happened while nobody listened (a restart, a lost connection).
            match me.upgrade() {
                Some(d) => d.reconcile_removals(&name, id).await,
                None => return,
            }
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    () = client.closed() => break,
                };
                let Some(d) = me.upgrade() else { return };
                match event {
                    Ok(ev) if ev.name == "DEVICE_DELETED" => {
                        if let Some(dev) = ev.data.get("device").and_then(|v| v.as_str()) {
                            d.on_device_deleted(&name, id, dev).await;
                        }
                    }
                    Ok(ev) if ev.name == "SHUTDOWN" => {
                        let reason = ev.data.get("reason").and_then(|v| v.as_str());
                        qmp.note_shutdown(reason.unwrap_or_default());
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(vm = %name, missed = n, "QMP events missed; checking pending removals");
                        d.reconcile_removals(&name, id).await;
                    }
                    Err(RecvError::Closed) => break,
                }
            }
            drop(client);
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    })
    .abort_handle()
}
