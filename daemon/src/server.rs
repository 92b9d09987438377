//! [`Server`]: the daemon bound to its socket, ready to serve.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;

use crate::api::Access;
use crate::config::Config;
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};

/// Longest unix socket path (`sun_path` holds 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The daemon with its API socket bound (mode 0600), its read-only socket (`root:virtnet`
/// 0660) and its libvirt protocol socket (0600) when configured.
pub struct Server {
    daemon: Arc<Daemon>,
    listener: UnixListener,
    socket: PathBuf,
    ro: Option<(UnixListener, PathBuf)>,
    libvirt: Option<(UnixListener, PathBuf)>,
}

impl Server {
    /// Opens the daemon (store, lock, loading) and binds the API socket, and the read-only
    /// one (its group created when missing). A stale socket file (no daemon behind it) is
    /// replaced; a live one is refused.
    pub async fn bind(config: Config) -> Result<Server> {
        let socket = config.socket.clone();
        let ro_socket = config.ro_socket.clone();
        let libvirt_socket = config.libvirt_socket.clone();
        for path in std::iter::once(&socket)
            .chain(&ro_socket)
            .chain(&libvirt_socket)
        {
            if path.as_os_str().len() > MAX_SOCKET_PATH {
                return Err(DaemonError::SocketPathTooLong {
                    path: path.clone(),
                    max: MAX_SOCKET_PATH,
                });
            }
        }
        let ro_gid = match &ro_socket {
            Some(_) => Some(virtnet_host::ensure_system_group(&config.ro_group).map_err(
                |source| DaemonError::RoGroup {
                    name: config.ro_group.clone(),
                    source,
                },
            )?),
            None => None,
        };
        let run_dir = config.run_dir.clone();
        let daemon = Daemon::open(config).await?;
        if let (Some(path), Some(gid)) = (&ro_socket, ro_gid) {
            open_run_dir_to_group(&run_dir, path, gid)?;
        }
        let listener = bind_socket(&socket, 0o600, None)?;
        tracing::info!(socket = %socket.display(), "listening");
        let ro = match (ro_socket, ro_gid) {
            (Some(path), Some(gid)) => {
                let l = bind_socket(&path, 0o660, Some(gid)).inspect_err(|_| {
                    let _ = std::fs::remove_file(&socket);
                })?;
                tracing::info!(socket = %path.display(), gid, "listening (read-only)");
                Some((l, path))
            }
            _ => None,
        };
        let libvirt = match libvirt_socket {
            Some(path) => {
                let l = bind_socket(&path, 0o600, None).inspect_err(|_| {
                    let _ = std::fs::remove_file(&socket);
                    if let Some((_, p)) = &ro {
                        let _ = std::fs::remove_file(p);
                    }
                })?;
                tracing::info!(socket = %path.display(), "listening (libvirt protocol)");
                Some((l, path))
            }
            None => None,
        };
        Ok(Server {
            daemon,
            listener,
            socket,
            ro,
            libvirt,
        })
    }

    /// The read-only API socket, when served.
    pub fn ro_socket(&self) -> Option<&Path> {
        self.ro.as_ref().map(|(_, p)| p.as_path())
    }

    /// The libvirt protocol socket, when served.
    pub fn libvirt_socket(&self) -> Option<&Path> {
        self.libvirt.as_ref().map(|(_, p)| p.as_path())
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
        let mut listeners = vec![(self.listener, Access::ReadWrite)];
        let mut ro_path = None;
        if let Some((l, path)) = self.ro {
            listeners.push((
                l,
                Access::ReadOnly {
                    ro_socket: path.clone(),
                    rw_socket: self.socket.clone(),
                },
            ));
            ro_path = Some(path);
        }
        let libvirt = self.libvirt.map(|(l, path)| {
            (
                tokio::spawn(crate::rpc::serve(l, self.daemon.clone())),
                path,
            )
        });
        crate::api::serve(listeners, self.daemon.clone(), shutdown).await;
        if let Some((task, path)) = libvirt {
            task.abort();
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(&self.socket);
        if let Some(p) = ro_path {
            let _ = std::fs::remove_file(p);
        }
        tracing::info!("stopped serving");
        self.daemon
    }
}

/// Lets the group `gid` reach the read-only socket `ro_socket` when it is in virtnetd's own
/// run directory: that directory gets group `gid` and the group's search bit (0700, as the
/// store creates it, becomes 0710: enough to reach a socket whose name the group knows, not to
/// list the directory or read the VMs' run-time files, 0600 in 0700 directories); its other
/// bits are kept. A socket placed elsewhere (`--ro-socket`) leaves its directory as it is.
fn open_run_dir_to_group(run_dir: &Path, ro_socket: &Path, gid: u32) -> Result<()> {
    if ro_socket.parent() != Some(run_dir) {
        return Ok(());
    }
    std::fs::metadata(run_dir)
        .and_then(|m| {
            std::os::unix::fs::chown(run_dir, None, Some(gid))?;
            let mode = (m.permissions().mode() & 0o7777) | 0o010;
            std::fs::set_permissions(run_dir, std::fs::Permissions::from_mode(mode))
        })
        .map_err(|source| DaemonError::StartupIo {
            action: "let the read-only socket's group reach",
            path: run_dir.to_path_buf(),
            source,
        })
}

/// Binds `path` with `mode` (and group `gid`, owner unchanged): bound under a temp name,
/// chown and chmod, renamed into place, so no client ever sees it with wider permissions.
fn bind_socket(path: &Path, mode: u32, gid: Option<u32>) -> Result<UnixListener> {
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
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .and_then(|()| gid.map_or(Ok(()), |g| std::os::unix::fs::chown(&tmp, None, Some(g))))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(startup("set up", e));
    }
    Ok(listener)
}
