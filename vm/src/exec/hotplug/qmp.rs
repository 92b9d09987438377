//! QMP calls of hot-plug: every one with its own deadline, and "not found" told apart.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use serde_json::{json, Value};
use virtnet_qemu::{QemuError, QmpClient};

use crate::error::VmError;
use crate::plan::QmpCommand;

/// Runs `cmd` (passing `fd` alongside, for `getfd`) and gives up after `deadline`
/// ([`QemuError::CommandTimeout`]). A command given up on may still run later: QEMU executes
/// what it has read in order once its monitor answers again.
pub(crate) async fn run(
    qmp: &QmpClient,
    cmd: &QmpCommand,
    fd: Option<BorrowedFd<'_>>,
    deadline: Duration,
) -> Result<Value, QemuError> {
    let args = cmd.arguments.clone();
    let call = async {
        match fd {
            Some(fd) => qmp.execute_with_fd(&cmd.execute, args, fd).await,
            None => qmp.execute_with_timeout(&cmd.execute, args, deadline).await,
        }
    };
    match tokio::time::timeout(deadline, call).await {
        Ok(r) => r,
        Err(_) => Err(QemuError::CommandTimeout {
            command: cmd.execute.clone(),
            timeout: deadline,
        }),
    }
}

/// `execute` with `arguments`.
pub(crate) fn command(execute: &str, arguments: Value) -> QmpCommand {
    QmpCommand {
        execute: execute.to_string(),
        arguments,
    }
}

/// Whether QEMU said the object does not exist (`DeviceNotFound`, or a "... not found"
/// description: `closefd`, `chardev-remove`).
pub(crate) fn is_not_found(e: &QemuError) -> bool {
    e.qmp_class() == Some("DeviceNotFound") || e.qmp_desc().is_some_and(|d| d.contains("not found"))
}

/// Whether `device_del` was refused because an unplug of the device is already in progress.
pub(crate) fn is_unplug_in_progress(e: &QemuError) -> bool {
    e.qmp_desc()
        .is_some_and(|d| d.contains("already in the process of unplug"))
}

/// Whether the command timed out (QEMU's monitor may be stalled).
pub(crate) fn is_timeout(e: &QemuError) -> bool {
    matches!(e, QemuError::CommandTimeout { .. })
}

/// Whether QEMU still has device `id` (`qom-list /machine/peripheral/ID`).
pub(crate) async fn device_exists(
    qmp: &QmpClient,
    id: &str,
    deadline: Duration,
) -> Result<bool, QemuError> {
    let cmd = command(
        "qom-list",
        json!({ "path": format!("/machine/peripheral/{id}") }),
    );
    match run(qmp, &cmd, None, deadline).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// [`VmError::Qemu`] for a failed command.
pub(crate) fn error(cmd: &QmpCommand, e: QemuError) -> VmError {
    VmError::Qemu {
        what: format!("QMP {} {}", cmd.execute, cmd.arguments),
        source: Box::new(e),
    }
}

/// `device_del` with a deadline (forgetting a stale remembered deletion of the id first).
pub(crate) async fn device_del(
    qmp: &QmpClient,
    id: &str,
    deadline: Duration,
) -> Result<(), QemuError> {
    match tokio::time::timeout(deadline, qmp.device_del(id)).await {
        Ok(r) => r,
        Err(_) => Err(QemuError::CommandTimeout {
            command: "device_del".into(),
            timeout: deadline,
        }),
    }
}
