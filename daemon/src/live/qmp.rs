//! [`QmpLink`]: the daemon's one QMP connection to a running QEMU.
//!
//! QEMU's monitor socket serves one client at a time (a second one waits, unanswered, until
//! the first disconnects), so every operation on a VM and its event listener share this one
//! connection. For a VM started by this daemon it is the connection the start made; for a QEMU
//! adopted after a restart it is opened on first use and opened again if it was lost.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use virtnet_qemu::{QemuError, QmpClient, QmpOptions};

use super::stall::Stall;
use crate::events::Stopped;
use crate::model::Stalled;

/// How long QEMU may take to greet a new connection.
const GREETING_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared QMP connection of one running VM.
#[derive(Debug)]
pub struct QmpLink {
    socket: PathBuf,
    client: tokio::sync::Mutex<Option<QmpClient>>,
    /// Set while QEMU does not answer (see [`Stall`]); shared with queries and the watcher.
    stall: Mutex<Option<Stall>>,
    /// Wakes the stall watcher when a stall is marked.
    stalled: Notify,
    /// How the guest ended, as QEMU's `SHUTDOWN` event said (the event listener notes it),
    /// for the stopped event of a QEMU that then exits on its own.
    guest_end: tokio::sync::watch::Sender<Option<Stopped>>,
}

impl QmpLink {
    /// A link over an open connection (a VM this daemon started).
    pub fn connected(socket: impl Into<PathBuf>, client: QmpClient) -> QmpLink {
        QmpLink {
            socket: socket.into(),
            client: tokio::sync::Mutex::new(Some(client)),
            stall: Mutex::new(None),
            stalled: Notify::new(),
            guest_end: tokio::sync::watch::Sender::new(None),
        }
    }

    /// A link that connects on first use (a QEMU adopted after a daemon restart).
    pub fn lazy(socket: impl Into<PathBuf>) -> QmpLink {
        QmpLink {
            socket: socket.into(),
            client: tokio::sync::Mutex::new(None),
            stall: Mutex::new(None),
            stalled: Notify::new(),
            guest_end: tokio::sync::watch::Sender::new(None),
        }
    }

    /// The QMP socket.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// The connection, opened (again) when there is none or it was closed.
    pub async fn client(&self) -> Result<QmpClient, QemuError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let opts = QmpOptions {
            greeting_timeout: GREETING_TIMEOUT,
            ..QmpOptions::default()
        };
        let c = QmpClient::connect_with(&self.socket, opts).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    fn stall_slot(&self) -> std::sync::MutexGuard<'_, Option<Stall>> {
        self.stall.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks QEMU stalled (a command got no reply in time) and wakes the watcher. A stall
    /// already marked is kept (it is the older one); its late objects and sockets gain these.
    pub fn mark_stalled(&self, stall: Stall) {
        tracing::warn!(socket = %self.socket.display(), operation = %stall.info.operation,
            reason = %stall.info.reason, "QEMU's monitor does not answer: VM marked stalled");
        {
            let mut slot = self.stall_slot();
            match slot.as_mut() {
                Some(old) => old.absorb(stall),
                None => *slot = Some(stall),
            }
        }
        self.stalled.notify_one();
    }

    /// What the API shows while stalled.
    pub fn stalled(&self) -> Option<Stalled> {
        self.stall_slot().as_ref().map(|s| s.info.clone())
    }

    /// A refusal message while stalled: how long, which operation, why.
    pub(crate) fn stall_message(&self) -> Option<String> {
        self.stall_slot().as_ref().map(|s| {
            format!(
                "QEMU has not answered its monitor for {} (found by {}: {})",
                s.age(),
                s.info.operation,
                s.info.reason
            )
        })
    }

    /// Clears the stall (QEMU answers again, or the VM stops) and returns it.
    pub fn take_stall(&self) -> Option<Stall> {
        self.stall_slot().take()
    }

    /// Waits until a stall is marked.
    pub(crate) async fn stall_marked(&self) {
        self.stalled.notified().await;
    }

    /// Notes QEMU's `SHUTDOWN` event: `reason` is its `reason` field (`guest-shutdown`,
    /// `guest-panic`, `host-signal`, ...). As libvirt does, any shutdown QEMU reported before
    /// exiting makes a shutdown, a guest panic a crash.
    pub(crate) fn note_shutdown(&self, reason: &str) {
        let why = if reason == "guest-panic" {
            Stopped::Crashed
        } else {
            Stopped::Shutdown
        };
        self.guest_end.send_replace(Some(why));
    }

    /// How the guest ended, waiting up to `grace` for the event listener to note it (QEMU
    /// sends `SHUTDOWN` before it exits, the listener may not have read it yet); `None`
    /// when QEMU reported no shutdown.
    pub(crate) async fn guest_end(&self, grace: Duration) -> Option<Stopped> {
        let mut rx = self.guest_end.subscribe();
        let _ = tokio::time::timeout(grace, rx.wait_for(Option::is_some)).await;
        *self.guest_end.borrow()
    }

    /// Drops the connection (the VM stopped): QEMU sees the monitor close.
    pub async fn close(&self) {
        self.client.lock().await.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LateObjects;

    fn stall(op: &str, netdev: Option<&str>, socket: Option<&str>) -> Stall {
        let late = LateObjects {
            netdev: netdev.map(String::from),
            ..LateObjects::default()
        };
        let sockets = socket.into_iter().map(PathBuf::from).collect();
        Stall::new(op, format!("{op} got no reply"), late, sockets)
    }

    #[test]
    fn a_stall_is_shown_refused_with_and_cleared() {
        let link = QmpLink::lazy("/run/virtnet/vm1/qmp.sock");
        assert_eq!(link.stalled(), None);
        assert_eq!(link.stall_message(), None);
        link.mark_stalled(stall(
            "attach-device",
            Some("hostnet1"),
            Some("/run/vu.sock"),
        ));
        let shown = link.stalled().unwrap();
        assert_eq!(shown.operation, "attach-device");
        assert!(shown.since_unix_ms > 0);
        let why = link.stall_message().unwrap();
        assert!(
            why.contains("found by attach-device: attach-device got no reply"),
            "{why}"
        );
        // A second stall keeps the first's reason and time, and adds what it may leave.
        link.mark_stalled(stall("domif-setlink", None, Some("/run/vu2.sock")));
        assert_eq!(link.stalled().unwrap(), shown);
        let taken = link.take_stall().unwrap();
        assert_eq!(taken.late.netdev.as_deref(), Some("hostnet1"));
        assert_eq!(
            taken.sockets,
            [
                PathBuf::from("/run/vu.sock"),
                PathBuf::from("/run/vu2.sock")
            ]
        );
        assert_eq!(link.stalled(), None);
    }
}
