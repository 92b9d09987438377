//! Placing inherited fds at fixed numbers in the child, and nothing else.
//!
//! Runs between `fork` and `exec` (after the standard library has set up fds 0, 1, 2), so only
//! async-signal-safe system calls are used and nothing allocates: plain `libc` calls on
//! numbers prepared before the fork.
//!
//! Steps, in the child:
//! 1. dup every source fd to a number above all targets (`F_DUPFD_CLOEXEC`), so that no
//!    source can be overwritten by another mapping's target;
//! 2. mark every fd from 3 up close-on-exec (`close_range(CLOSE_RANGE_CLOEXEC)`, Linux 5.11+;
//!    older kernels: `fcntl` over the fd table), so an fd some other thread or library opened
//!    without `O_CLOEXEC` cannot leak into QEMU;
//! 3. `dup2` each copy to its target: `dup2` leaves the new fd without `FD_CLOEXEC`, so exactly
//!    the targets survive `exec`.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::raw::c_uint;

use crate::error::{QemuError, Result};

/// Fds the child must inherit: (our fd, the number QEMU sees).
#[derive(Debug, Default)]
pub(crate) struct FdMap {
    entries: Vec<(OwnedFd, RawFd)>,
}

impl FdMap {
    pub(crate) fn push(&mut self, fd: OwnedFd, target: RawFd) {
        self.entries.push((fd, target));
    }

    /// Checks targets: at least 3 (0-2 are QEMU's stdio) and each used once.
    pub(crate) fn validate(&self) -> Result<()> {
        let mut seen = Vec::new();
        for (_, t) in &self.entries {
            if *t < 3 {
                return Err(QemuError::FdMapping(format!(
                    "target fd {t} is one of stdin/stdout/stderr; use 3 or higher"
                )));
            }
            if seen.contains(t) {
                return Err(QemuError::FdMapping(format!(
                    "target fd {t} is given twice"
                )));
            }
            seen.push(*t);
        }
        Ok(())
    }

    /// Installs the placement as a `pre_exec` hook. `self` must outlive the spawn (the
    /// source fds are read in the child); the caller drops it after `spawn` returns.
    pub(crate) fn install(&self, cmd: &mut tokio::process::Command) {
        let pairs: Vec<(RawFd, RawFd)> = self
            .entries
            .iter()
            .map(|(fd, t)| (fd.as_raw_fd(), *t))
            .collect();
        let base = pairs.iter().map(|(_, t)| *t).max().unwrap_or(2) + 1;
        let mut temps: Vec<RawFd> = vec![-1; pairs.len()];
        // SAFETY: the hook only makes async-signal-safe calls (fcntl, dup2, close_range,
        // getrlimit) on memory allocated before the fork, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || place_fds(&pairs, &mut temps, base));
        }
    }
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// In the child: see the module docs.
fn place_fds(pairs: &[(RawFd, RawFd)], temps: &mut [RawFd], base: RawFd) -> io::Result<()> {
    for (temp, (src, _)) in temps.iter_mut().zip(pairs) {
        // SAFETY: plain fcntl on an fd number.
        *temp = check(unsafe { libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, base) })?;
    }
    mark_cloexec_from(3)?;
    for (temp, (_, target)) in temps.iter().zip(pairs) {
        // SAFETY: plain dup2 on fd numbers.
        check(unsafe { libc::dup2(*temp, *target) })?;
    }
    Ok(())
}

fn mark_cloexec_from(first: RawFd) -> io::Result<()> {
    // SAFETY: raw close_range syscall with the CLOEXEC flag closes nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as c_uint,
            c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    // Kernel older than 5.11: walk the fd table up to the fd limit.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `lim`.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    let max = lim.rlim_cur.min(1 << 20) as RawFd;
    for fd in first..max {
        // SAFETY: plain fcntl on fd numbers; EBADF for closed ones is ignored.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devnull() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn validates_targets() {
        let mut m = FdMap::default();
        m.push(devnull(), 3);
        assert!(m.validate().is_ok());
        m.push(devnull(), 3);
        assert!(m.validate().is_err());
        let mut m = FdMap::default();
        m.push(devnull(), 2);
        assert!(m.validate().is_err());
    }
}
