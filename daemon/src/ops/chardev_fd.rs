//! `chardev-change` to a back end QEMU would have to create by name (a unix socket it listens
//! on, a file it writes, the chardev's `<log file>`): virtnetd opens it and passes the fd, as
//! at start, so a confined QEMU needs no access to the directory. A listening socket goes with
//! `getfd` (the chardev's address is `{"type": "fd", "data": {"str": NAME}}`), a file with
//! `add-fd` (the chardev writes `/dev/fdset/N`). Whatever happens, no fd stays behind in
//! QEMU's fd list or fdsets and no socket file of ours is left when the change fails.

use std::os::fd::AsFd;
use std::path::PathBuf;

use serde_json::{json, Value};
use virtnet_conf::devices::Chardev;
use virtnet_qemu::argv::{chardev_opens, ChardevRole, HostOpen};

use crate::error::{DaemonError, Result};
use crate::live::Live;

/// One thing virtnetd opened for a new chardev back end and passed to QEMU.
pub(crate) enum Passed {
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

/// Who the change is for, for error messages.
pub(crate) struct Target<'a> {
    /// The VM.
    pub vm: &'a str,
    /// The device's alias (`serial1`).
    pub alias: &'a str,
    /// QEMU's chardev id (`charserial1`).
    pub id: &'a str,
}

fn as_change_error(t: &Target<'_>, to: &str, e: DaemonError) -> DaemonError {
    match e {
        DaemonError::Qmp { source } => DaemonError::ChardevChange {
            vm: t.vm.into(),
            alias: t.alias.into(),
            to: to.into(),
            source,
        },
        other => other,
    }
}

/// Opens what `chardev` (with its new source and its `<log>`) needs and passes it to QEMU;
/// returns what was passed (for [`finish`]) and `plain` (the `ChardevBackend` JSON of the
/// source by name) made to refer to the fds. On failure what was passed so far is undone.
pub(crate) async fn pass(
    l: &Live,
    t: &Target<'_>,
    chardev: &Chardev,
    plain: Value,
) -> Result<(Vec<Passed>, Value)> {
    let mut passed = Vec::new();
    let mut backend = plain;
    for open in chardev_opens(chardev, t.id) {
        match pass_one(l, t, chardev, &open.open, open.role).await {
            Ok((p, value)) => {
                let data = &mut backend["data"];
                match (&p, open.role) {
                    (Passed::Socket { .. }, _) => data["addr"] = value,
                    (Passed::File { .. }, ChardevRole::Source) => data["out"] = value,
                    (Passed::File { .. }, ChardevRole::Log) => {
                        data["logfile"] = value;
                        if let HostOpen::WriteFile { append, .. } = open.open {
                            data["logappend"] = json!(append);
                        }
                    }
                }
                passed.push(p);
            }
            Err(e) => {
                finish(l, passed, false).await;
                return Err(e);
            }
        }
    }
    Ok((passed, backend))
}

/// Opens and passes one fd; returns it and the JSON value that names it.
async fn pass_one(
    l: &Live,
    t: &Target<'_>,
    chardev: &Chardev,
    open: &HostOpen,
    role: ChardevRole,
) -> Result<(Passed, Value)> {
    let to = chardev.source.type_name();
    let fd = virtnet_qemu::open_host(open).map_err(|source| DaemonError::ChardevChange {
        vm: t.vm.into(),
        alias: t.alias.into(),
        to: to.into(),
        source: Box::new(source),
    })?;
    let label = format!("{}-{}", t.id, role.as_str());
    match open {
        HostOpen::ListenUnix { path } => {
            let args = json!({ "fdname": label });
            if let Err(e) = l
                .qmp_with_fd("chardev-change", "getfd", args, Some(fd.as_fd()))
                .await
            {
                remove_socket(path);
                return Err(as_change_error(t, to, e));
            }
            let addr = json!({"type": "fd", "data": {"str": label}});
            let p = Passed::Socket {
                path: path.clone(),
                fdname: label,
            };
            Ok((p, addr))
        }
        HostOpen::WriteFile { .. } => {
            let args = json!({ "opaque": label });
            let ret = l
                .qmp_with_fd("chardev-change", "add-fd", args, Some(fd.as_fd()))
                .await
                .map_err(|e| as_change_error(t, to, e))?;
            let Some(set) = ret.get("fdset-id").and_then(Value::as_u64) else {
                return Err(DaemonError::Internal(format!(
                    "QEMU's add-fd answered without an fdset-id: {ret}"
                )));
            };
            Ok((Passed::File { set }, json!(format!("/dev/fdset/{set}"))))
        }
    }
}

/// After `chardev-change` (`ok`: it succeeded): drops what QEMU no longer needs. A `getfd`
/// name the change consumed is gone already; one it did not is closed (`closefd`) and its
/// socket removed. An fdset is removed either way (the chardev keeps its own copy of the
/// file; QEMU 7.2 closes a removed fdset's fd at once while the VM runs).
pub(crate) async fn finish(l: &Live, passed: Vec<Passed>, ok: bool) {
    for p in passed.into_iter().rev() {
        match p {
            Passed::Socket { path, fdname } => {
                if !ok {
                    // "Not found" when the failed change had consumed it: fine.
                    let _ = l
                        .qmp("chardev-change", "closefd", json!({ "fdname": fdname }))
                        .await;
                    remove_socket(&path);
                }
            }
            Passed::File { set } => {
                let args = json!({ "fdset-id": set });
                if let Err(e) = l.qmp("chardev-change", "remove-fd", args).await {
                    tracing::warn!(fdset = set, error = %e, "cannot remove the fdset of a chardev file");
                }
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

/// `chardev-change` of chardev `t.id` to `chardev`'s source (and log), with `plain` its
/// `ChardevBackend` JSON by name: passes the fds, changes, cleans up ([`pass`], [`finish`]).
pub(crate) async fn change(
    l: &Live,
    t: &Target<'_>,
    chardev: &Chardev,
    plain: Value,
) -> Result<Value> {
    let (passed, backend) = pass(l, t, chardev, plain).await?;
    let args = json!({"id": t.id, "backend": backend});
    let ret = l.qmp("chardev-change", "chardev-change", args).await;
    finish(l, passed, ret.is_ok()).await;
    ret
}
