//! `chardev-change` to a back end QEMU would have to create by name (a unix socket it listens
//! on, a file it writes): virtnetd opens it and passes the fd, as at start, so a confined QEMU
//! needs no access to the directory. A listening socket goes with `getfd` (the chardev's
//! address is `{"type": "fd", "data": {"str": NAME}}`), a file with `add-fd` (the chardev
//! writes `/dev/fdset/N`). Whatever happens, no fd stays behind in QEMU's fd list or fdsets
//! and no socket file of ours is left when the change fails.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use serde_json::{json, Value};
use virtnet_conf::devices::{Chardev, ChrKind, ChrSource};
use virtnet_qemu::argv::{chardev_opens, ChardevRole, HostOpen};

use crate::error::{DaemonError, Result};
use crate::live::Live;

/// What virtnetd opened for a new chardev back end, passed to QEMU.
pub(crate) enum Passed {
    /// Nothing to open (pty, null, a socket QEMU connects to).
    Nothing,
    /// A listening socket, passed with `getfd` under `fdname`.
    Socket {
        /// Its path (removed if the change fails).
        path: PathBuf,
        /// The `getfd` name.
        fdname: String,
    },
    /// A file in fdset `set`.
    File {
        /// The fdset id QEMU gave it.
        set: u64,
    },
}

/// The `-chardev`-side error of an open or a pass, as a `chardev-change` failure.
fn failed(vm: &str, alias: &str, to: &str, source: virtnet_qemu::QemuError) -> DaemonError {
    DaemonError::ChardevChange {
        vm: vm.into(),
        alias: alias.into(),
        to: to.into(),
        source: Box::new(source),
    }
}

fn qmp_error(vm: &str, alias: &str, to: &str, e: DaemonError) -> DaemonError {
    match e {
        DaemonError::Qmp { source } => DaemonError::ChardevChange {
            vm: vm.into(),
            alias: alias.into(),
            to: to.into(),
            source,
        },
        other => other,
    }
}

/// Opens what `source` needs for chardev `id` and passes it to QEMU; returns what was passed
/// and the `ChardevBackend` JSON that refers to it (`plain`: the JSON for a by-name back end).
pub(crate) async fn pass(
    l: &Live,
    vm: &str,
    alias: &str,
    id: &str,
    source: &ChrSource,
    plain: Value,
) -> Result<(Passed, Value)> {
    let to = source.type_name();
    let chardev = Chardev::new(ChrKind::Serial, source.clone());
    let Some(open) = chardev_opens(&chardev, id)
        .into_iter()
        .find(|o| o.role == ChardevRole::Source)
    else {
        return Ok((Passed::Nothing, plain));
    };
    let fd: OwnedFd = virtnet_qemu::open_host(&open.open).map_err(|e| failed(vm, alias, to, e))?;
    match open.open {
        HostOpen::ListenUnix { path } => {
            let fdname = format!("{id}-source");
            if let Err(e) = l
                .qmp_with_fd(
                    "chardev-change",
                    "getfd",
                    json!({ "fdname": fdname }),
                    Some(fd.as_fd()),
                )
                .await
            {
                remove_socket(&path);
                return Err(qmp_error(vm, alias, to, e));
            }
            let mut backend = plain;
            backend["data"]["addr"] = json!({"type": "fd", "data": {"str": fdname}});
            Ok((Passed::Socket { path, fdname }, backend))
        }
        HostOpen::WriteFile { .. } => {
            let ret = l
                .qmp_with_fd(
                    "chardev-change",
                    "add-fd",
                    json!({ "opaque": format!("{id}-source") }),
                    Some(fd.as_fd()),
                )
                .await
                .map_err(|e| qmp_error(vm, alias, to, e))?;
            let Some(set) = ret.get("fdset-id").and_then(Value::as_u64) else {
                return Err(DaemonError::Internal(format!(
                    "QEMU's add-fd answered without an fdset-id: {ret}"
                )));
            };
            let mut backend = plain;
            backend["data"]["out"] = json!(format!("/dev/fdset/{set}"));
            Ok((Passed::File { set }, backend))
        }
    }
}

/// After `chardev-change` (`ok`: it succeeded): drops what QEMU no longer needs. A `getfd`
/// name the change consumed is gone already ("not found" is fine); an fdset is removed
/// either way (the chardev keeps its own copy of the file; QEMU 7.2 closes a removed fdset's
/// fd at once while the VM runs). A socket the change did not take is removed.
pub(crate) async fn finish(l: &Live, passed: Passed, ok: bool) {
    match passed {
        Passed::Nothing => {}
        Passed::Socket { path, fdname } => {
            if !ok {
                let _ = l
                    .qmp("chardev-change", "closefd", json!({ "fdname": fdname }))
                    .await;
                remove_socket(&path);
            }
        }
        Passed::File { set } => {
            if let Err(e) = l
                .qmp("chardev-change", "remove-fd", json!({ "fdset-id": set }))
                .await
            {
                tracing::warn!(fdset = set, error = %e, "cannot remove the fdset of a chardev file");
            }
        }
    }
}

fn remove_socket(path: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}
