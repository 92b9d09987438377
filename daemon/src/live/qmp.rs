//! [`QmpLink`]: the daemon's one QMP connection to a running QEMU.
//!
//! QEMU's monitor socket serves one client at a time (a second one waits, unanswered, until
//! the first disconnects), so every operation on a VM and its event listener share this one
//! connection. For a VM started by this daemon it is the connection the start made; for a QEMU
//! adopted after a restart it is opened on first use and opened again if it was lost.

use std::path::PathBuf;
use std::time::Duration;

use virtnet_qemu::{QemuError, QmpClient, QmpOptions};

/// How long QEMU may take to greet a new connection.
const GREETING_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared QMP connection of one running VM.
#[derive(Debug)]
pub struct QmpLink {
    socket: PathBuf,
    client: tokio::sync::Mutex<Option<QmpClient>>,
}

impl QmpLink {
    /// A link over an open connection (a VM this daemon started).
    pub fn connected(socket: impl Into<PathBuf>, client: QmpClient) -> QmpLink {
        QmpLink {
            socket: socket.into(),
            client: tokio::sync::Mutex::new(Some(client)),
        }
    }

    /// A link that connects on first use (a QEMU adopted after a daemon restart).
    pub fn lazy(socket: impl Into<PathBuf>) -> QmpLink {
        QmpLink {
            socket: socket.into(),
            client: tokio::sync::Mutex::new(None),
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

    /// Drops the connection (the VM stopped): QEMU sees the monitor close.
    pub async fn close(&self) {
        self.client.lock().await.take();
    }
}
