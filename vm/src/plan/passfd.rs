//! What virtnetd opens for QEMU before it starts, so QEMU (confined, as its own user) never
//! creates a socket or a file by name: the QMP monitor's listening socket, the listening
//! sockets of chardevs with `<source mode='bind'>`, the files of `type='file'` chardevs and of
//! `<log file>`. Each becomes a [`PassFd`] step: QEMU inherits the fd (files in an fdset).

use std::path::Path;

use serde::{Deserialize, Serialize};
use virtnet_conf::Domain;
use virtnet_qemu::argv::{chardev_host_opens, ChardevFd, HostOpen, PassedFd};

/// How a [`PassFd`] step is undone when a later step of the start fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassFdUndo {
    /// Remove the socket file it bound (our fd is closed anyway).
    RemoveSocket,
    /// Nothing but closing our fd: the file stays, as it would had QEMU opened it.
    CloseFd,
}

/// One thing virtnetd opens before QEMU starts, and the fd number QEMU inherits it at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassFd {
    /// What it is for: `QMP monitor`, `chardev charserial0 (source)`.
    pub what: String,
    /// What is opened.
    #[serde(flatten)]
    pub open: HostOpen,
    /// The fd number in QEMU.
    pub fd: i32,
    /// The fdset QEMU files it in (`-add-fd set=N`), for files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fdset: Option<u32>,
    /// Its undo.
    pub undo: PassFdUndo,
}

impl PassFd {
    /// A one-line description.
    pub fn describe(&self) -> String {
        match &self.open {
            HostOpen::ListenUnix { path } => {
                format!("listen on {} for the {}", path.display(), self.what)
            }
            HostOpen::WriteFile { path, append } => format!(
                "open {} ({}) for the {}",
                path.display(),
                if *append { "append" } else { "truncate" },
                self.what
            ),
        }
    }
}

/// The fds of a start: the steps and what the argv builder needs.
pub(crate) struct PlannedFds {
    /// The steps, monitor first.
    pub steps: Vec<PassFd>,
    /// The monitor's fd number.
    pub qmp_fd: i32,
    /// The chardevs' fds, for [`virtnet_qemu::RuntimePaths::chardev_fds`].
    ///
    /// The fdsets stay in QEMU (one more fd per file, until it exits): QEMU 7.2 closes a
    /// `remove-fd`'d fd only while the VM runs (`monitor_fdset_cleanup` checks
    /// `runstate_is_running()`), and the start's QMP commands run before `cont`.
    pub chardev_fds: Vec<ChardevFd>,
}

/// Plans the fds of `domain`'s start from fd number `next` on.
pub(crate) fn plan_fds(domain: &Domain, qmp_socket: &Path, mut next: i32) -> PlannedFds {
    let mut take = || {
        let n = next;
        next += 1;
        n
    };
    let qmp_fd = take();
    let mut steps = vec![PassFd {
        what: "QMP monitor".into(),
        open: HostOpen::ListenUnix {
            path: qmp_socket.to_path_buf(),
        },
        fd: qmp_fd,
        fdset: None,
        undo: PassFdUndo::RemoveSocket,
    }];
    let mut chardev_fds = Vec::new();
    let mut sets = 0;
    for o in chardev_host_opens(domain) {
        let fd = take();
        let what = format!("chardev {} ({})", o.chardev, o.role.as_str());
        let (passed, fdset, undo) = match &o.open {
            HostOpen::ListenUnix { .. } => {
                (PassedFd::Listening { fd }, None, PassFdUndo::RemoveSocket)
            }
            HostOpen::WriteFile { .. } => {
                let set = sets;
                sets += 1;
                (
                    PassedFd::FdSet {
                        set,
                        fd,
                        opaque: format!("{}-{}", o.chardev, o.role.as_str()),
                    },
                    Some(set),
                    PassFdUndo::CloseFd,
                )
            }
        };
        chardev_fds.push(ChardevFd {
            chardev: o.chardev,
            role: o.role,
            fd: passed,
        });
        steps.push(PassFd {
            what,
            open: o.open,
            fd,
            fdset,
            undo,
        });
    }
    PlannedFds {
        steps,
        qmp_fd,
        chardev_fds,
    }
}
