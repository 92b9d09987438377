//! Joining QEMU's cgroup between fork and exec: the child writes `0` (itself) into each
//! group's `cgroup.procs`, opened by the parent before the fork, so QEMU is in its group
//! before it allocates guest memory (charged to the group from the first page) and before
//! any later hook drops privileges (joining needs write access to the group, which the
//! confined user has not).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The `cgroup.procs` files the child joins.
#[derive(Debug, Default)]
pub(crate) struct CgroupJoin {
    procs: Vec<OwnedFd>,
}

impl CgroupJoin {
    pub(crate) fn extend(&mut self, procs: Vec<OwnedFd>) {
        self.procs.extend(procs);
    }

    /// Installs the join as a `pre_exec` hook (call it before hooks that switch the uid).
    /// `self` must outlive the spawn; the caller drops it after `spawn` returns.
    pub(crate) fn install(&self, cmd: &mut tokio::process::Command) {
        if self.procs.is_empty() {
            return;
        }
        let fds: Vec<RawFd> = self.procs.iter().map(|f| f.as_raw_fd()).collect();
        // SAFETY: the hook only calls write(2), async-signal-safe, on fds opened before the
        // fork, reading memory allocated before it; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || join(&fds));
        }
    }
}

/// In the child: `0` into each `cgroup.procs` moves the writing process.
fn join(fds: &[RawFd]) -> io::Result<()> {
    for fd in fds {
        // SAFETY: write(2) of one byte from a static buffer to an fd number.
        let n = unsafe { libc::write(*fd, b"0".as_ptr().cast(), 1) };
        if n != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
