//! Starting QEMU: spawn, watch for exit, connect QMP once (the socket listens already).

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::child::ChildHandle;
use super::confine;
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
    let confinement = spec
        .sandbox
        .as_ref()
        .map(confine::Confinement::prepare)
        .transpose()?;
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
    // After the fd placement: see confine.rs.
    let confined = confinement.is_some();
    if let Some(c) = confinement {
        c.install(&mut cmd);
    }
    let child = cmd.spawn().map_err(|source| {
        if confined {
            QemuError::Confine {
                what: format!(
                    "start {} confined (if a confinement step failed, {} names it)",
                    spec.binary.display(),
                    spec.log_path.display()
                ),
                source,
            }
        } else {
            QemuError::Exec {
                binary: spec.binary.clone(),
                source,
            }
        }
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

/// Connects once: the caller made the socket listen before QEMU started (see
/// [`super::listen_unix`]), so the connection waits in its backlog until QEMU's monitor
/// accepts it and greets. Stops early when QEMU exits, and at the deadline.
async fn connect_qmp(
    socket: &Path,
    options: QmpOptions,
    exit: &mut watch::Receiver<Option<ExitStatus>>,
    deadline: Instant,
) -> std::result::Result<QmpClient, ConnectFailure> {
    let stream = match UnixStream::connect(socket).await {
        Ok(s) => s,
        Err(source) => {
            // Refused when QEMU has already exited (it held the only listening fd).
            if let Some(status) = exited_within_grace(exit).await {
                return Err(ConnectFailure::Exited(status));
            }
            return Err(ConnectFailure::Other(QemuError::QmpConnect {
                path: socket.to_path_buf(),
                source,
            }));
        }
    };
    let mut opts = options;
    opts.greeting_timeout = deadline.saturating_duration_since(Instant::now());
    let handshake = QmpClient::from_stream(stream, opts);
    let mut exited = exit.clone();
    tokio::select! {
        r = handshake => match r {
            Ok(c) => Ok(c),
            Err(e) => {
                // A QEMU that dies before greeting looks like a closed connection: give it a
                // moment to be reaped, then report the exit.
                if let Some(status) = exited_within_grace(exit).await {
                    return Err(ConnectFailure::Exited(status));
                }
                if Instant::now() >= deadline {
                    return Err(ConnectFailure::TimedOut(format!("no QMP greeting: {e}")));
                }
                Err(ConnectFailure::Other(e))
            }
        },
        // The watch's guard is dropped inside the branch (it must not live across an await).
        r = async { exited.wait_for(Option::is_some).await.ok().and_then(|s| *s) } => match r {
            Some(status) => Err(ConnectFailure::Exited(status)),
            None => Err(ConnectFailure::Other(QemuError::Closed {
                waiting_for: "the QMP greeting".into(),
            })),
        },
        _ = tokio::time::sleep_until(deadline) => Err(ConnectFailure::TimedOut(
            "connected, but QEMU's monitor sent no greeting".into(),
        )),
    }
}

/// QEMU's exit status if it exits (and is reaped) within half a second.
async fn exited_within_grace(exit: &mut watch::Receiver<Option<ExitStatus>>) -> Option<ExitStatus> {
    let grace = Instant::now() + Duration::from_millis(500);
    let _ = tokio::time::timeout_at(grace, exit.wait_for(Option::is_some)).await;
    *exit.borrow()
}
