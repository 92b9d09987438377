//! The destination's end of a unix migration stream: virtnetd listens in its run dir and
//! hands the source's connection to its QEMU as an fd (`getfd`, `migrate-incoming fd:`), so a
//! confined QEMU never needs the socket's path.

use std::path::PathBuf;
use std::time::Duration;

use crate::daemon::Daemon;

/// How long the destination waits for the source to connect to a unix stream's socket.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The `getfd` name of the destination QEMU's end of a unix migration stream.
pub(super) const IN_FD: &str = "migrate-in";

impl Daemon {
    /// A unix socket for `name`'s incoming stream in virtnetd's run dir (root's: QEMU gets
    /// the connection as an fd).
    pub(super) fn migration_listener(
        &self,
        name: &str,
    ) -> std::io::Result<(tokio::net::UnixListener, PathBuf)> {
        let path = self.config.run_dir.join(format!("migrate-{name}.sock"));
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::warn!(path = %path.display(), "removed a stale migration socket"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok((tokio::net::UnixListener::bind(&path)?, path))
    }

    /// Waits for the source's connection on `listener` and hands it to QEMU instance `id` of
    /// `name` (`getfd`, `migrate-incoming fd:`). A failure is logged: the source sees its
    /// migration fail and aborts.
    pub(super) fn hand_over_stream(&self, name: &str, id: u32, listener: tokio::net::UnixListener) {
        let weak = self.weak();
        let name = name.to_string();
        tokio::spawn(async move {
            let conn = match tokio::time::timeout(ACCEPT_TIMEOUT, listener.accept()).await {
                Ok(Ok((c, _))) => c,
                Ok(Err(e)) => {
                    tracing::warn!(vm = %name, error = %e, "migration socket: accept failed");
                    return;
                }
                Err(_) => {
                    tracing::warn!(vm = %name, "migration socket: no connection came");
                    return;
                }
            };
            drop(listener);
            let Some(daemon) = weak.upgrade() else { return };
            let Ok(entry) = daemon.entry(&name) else {
                return;
            };
            let slot = entry.slot.lock().await;
            let Some(live) = slot.live.as_ref().filter(|l| l.status.id == id) else {
                return;
            };
            if let Some(p) = daemon
                .migrations
                .lock()
                .get(&name)
                .and_then(|i| i.socket.clone())
            {
                let _ = std::fs::remove_file(p);
            }
            let r = async {
                live.qmp_with_fd(
                    "migrate",
                    "getfd",
                    serde_json::json!({ "fdname": IN_FD }),
                    Some(std::os::fd::AsFd::as_fd(&conn)),
                )
                .await?;
                live.qmp(
                    "migrate",
                    "migrate-incoming",
                    serde_json::json!({ "uri": format!("fd:{IN_FD}") }),
                )
                .await
            }
            .await;
            if let Err(e) = r {
                tracing::warn!(vm = %name, error = %e, "cannot hand the migration stream to QEMU");
            }
        });
    }
}
