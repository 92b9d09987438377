//! [`Server`]: the daemon bound to its socket, ready to serve.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;

use crate::config::Config;
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};

/// Longest unix socket path (`sun_path` holds 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The daemon with its API socket bound (mode 0600).
pub struct Server {
    daemon: Arc<Daemon>,
    listener: UnixListener,
    socket: PathBuf,
}

impl Server {
    /// Opens the daemon (store, lock, loading) and binds the API socket. A stale socket file
    /// (no daemon behind it) is replaced; a live one is refused.
    pub async fn bind(config: Config) -> Result<Server> {
        let socket = config.socket.clone();
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(DaemonError::SocketPathTooLong {
                path: socket,
                max: MAX_SOCKET_PATH,
            });
        }
        let daemon = Daemon::open(config).await?;
        let listener = bind_socket(&socket)?;
        tracing::info!(socket = %socket.display(), "listening");
        Ok(Server {
            daemon,
            listener,
            socket,
        })
    }

    /// The API socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon state.
    pub fn daemon(&self) -> &Arc<Daemon> {
        &self.daemon
    }

    /// Serves until `shutdown` completes, then removes the socket. Running VMs keep running;
    /// the returned daemon holds them (drop it to kill them, or leak it to leave them for the
    /// next daemon to recover).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Arc<Daemon> {
        crate::api::serve(self.listener, self.daemon.clone(), shutdown).await;
        let _ = std::fs::remove_file(&self.socket);
        tracing::info!("stopped serving");
        self.daemon
    }
}

/// Binds `path` with mode 0600: bound under a temp name, chmod, renamed into place, so no
/// client ever sees it with wider permissions.
fn bind_socket(path: &Path) -> Result<UnixListener> {
    let startup = |action: &'static str, source: io::Error| DaemonError::StartupIo {
        action,
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| startup("create the directory of", e))?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(DaemonError::SocketInUse {
                    path: path.to_path_buf(),
                });
            }
            std::fs::remove_file(path).map_err(|e| startup("remove the stale socket", e))?;
        }
        Ok(_) => {
            return Err(DaemonError::NotASocket {
                path: path.to_path_buf(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(startup("inspect", e)),
    }
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("sock");
    let tmp = dir.join(format!(".{file_name}.bind-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| startup("bind", e))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(startup("set up", e));
    }
    Ok(listener)
}
