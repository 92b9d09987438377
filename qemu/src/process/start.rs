//! Starting QEMU: spawn, watch for exit, connect QMP (retrying until the socket appears).

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::child::ChildHandle;
use super::{log, QemuProcess, QemuSpawn};
use crate::error::{QemuError, Result};
use crate::qmp::{QmpClient, QmpOptions};

/// Why QMP did not come up.
enum ConnectFailure {
    Exited(ExitStatus),
    TimedOut(String),
    Other(QemuError),
}

pub(crate) async fn start(spec: QemuSpawn) -> Result<QemuProcess> {
    spec.fds.validate()?;
    remove_stale_socket(&spec.qmp_socket);
    let header = format!(
        "=== virtnet: starting {} {} ===",
        spec.binary.display(),
        spec.args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (log_file, log_start) = log::open_for_start(&spec.log_path, &header)?;
    let log_err = |source| QemuError::LogFile {
        path: spec.log_path.clone(),
        source,
    };
    let stderr = log_file.try_clone().map_err(log_err)?;

    let mut cmd = tokio::process::Command::new(&spec.binary);
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(stderr);
    spec.cgroups.install(&mut cmd); // first: before any hook that drops privileges
    spec.fds.install(&mut cmd);
    // Sockets and files QEMU creates are writable by their group (as libvirt does, umask
    // 002): a vhost-user socket QEMU listens on in a switch network's directory (group
    // virtnet-qemu, setgid) is then reachable by the switch, a member of that group.
    // SAFETY: umask is async-signal-safe and the hook allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o002);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| QemuError::Exec {
        binary: spec.binary.clone(),
        source,
    })?;
    // Our copies of the inherited fds are no longer needed (QEMU has its own now).
    drop(spec.fds);
    drop(spec.cgroups);
    let child = ChildHandle::new(child);

    let mut exit = child.exit_watch();
    let deadline = Instant::now() + spec.start_timeout;
    let failure = match connect_qmp(&spec.qmp_socket, spec.qmp, &mut exit, deadline).await {
        Ok(qmp) => {
            return Ok(QemuProcess {
                child,
                qmp,
                log_path: spec.log_path,
                qmp_socket: spec.qmp_socket,
            })
        }
        Err(f) => f,
    };
    // Nothing half-started stays behind: kill and reap QEMU, remove the socket, then report.
    child.kill().await;
    remove_stale_socket(&spec.qmp_socket);
    let tail = log::tail(&spec.log_path, log_start);
    Err(match failure {
        ConnectFailure::Exited(status) => QemuError::EarlyExit {
            status: status.to_string(),
            log: spec.log_path,
            tail,
        },
        ConnectFailure::TimedOut(reason) => QemuError::StartTimeout {
            pid: child.pid(),
            socket: spec.qmp_socket,
            timeout: spec.start_timeout,
            reason,
            log: spec.log_path,
            tail,
        },
        ConnectFailure::Other(e) => e,
    })
}

/// Removes a socket left by an earlier run, so we never connect to a stale or foreign one.
pub(crate) fn remove_stale_socket(path: &Path) {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Tries to connect until the handshake succeeds, QEMU exits, or the deadline passes.
/// Waits between tries (10 ms growing to 100 ms), but wakes at once when QEMU exits.
async fn connect_qmp(
    socket: &Path,
    options: QmpOptions,
    exit: &mut watch::Receiver<Option<ExitStatus>>,
    deadline: Instant,
) -> std::result::Result<QmpClient, ConnectFailure> {
    let mut delay = Duration::from_millis(10);
    let mut last;
    loop {
        if let Some(status) = *exit.borrow() {
            return Err(ConnectFailure::Exited(status));
        }
        match UnixStream::connect(socket).await {
            Ok(stream) => {
                let mut opts = options.clone();
                let left = deadline.saturating_duration_since(Instant::now());
                opts.greeting_timeout = opts.greeting_timeout.min(left);
                match QmpClient::from_stream(stream, opts).await {
                    Ok(c) => return Ok(c),
                    Err(e) => {
                        // A QEMU that dies right after accepting looks like a closed
                        // connection: give it a moment to be reaped, then report the exit.
                        let grace = Instant::now() + Duration::from_millis(500);
                        let _ =
                            tokio::time::timeout_at(grace, exit.wait_for(Option::is_some)).await;
                        if let Some(status) = *exit.borrow() {
                            return Err(ConnectFailure::Exited(status));
                        }
                        return Err(ConnectFailure::Other(e));
                    }
                }
            }
            Err(e) if is_not_yet(&e) => last = format!("last connect error: {e}"),
            Err(source) => {
                return Err(ConnectFailure::Other(QemuError::QmpConnect {
                    path: socket.to_path_buf(),
                    source,
                }))
            }
        }
        if Instant::now() >= deadline {
            return Err(ConnectFailure::TimedOut(last));
        }
        let wake = (Instant::now() + delay).min(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = exit.changed() => {}
        }
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// Errors that mean "QEMU has not created or started listening on the socket yet".
fn is_not_yet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}
