//! The switch's seccomp filter: an allowlist of the system calls it makes (measured with
//! `strace -f` over the vhost-user end-to-end tests), built with rust-vmm's `seccompiler` as
//! firecracker does.
//!
//! Installed by `virtnet-vswitch` in its main thread before it starts any other thread, and
//! with TSYNC (on every thread that may exist already), so every thread runs under it.
//! Anything else kills the whole process (`SECCOMP_RET_KILL_PROCESS`), with two documented
//! exceptions:
//! - `clone3` fails with ENOSYS, because its flags live in memory a filter cannot read; glibc
//!   then falls back to `clone`, whose flags are checked: threads only (`CLONE_THREAD`), so the
//!   switch can never fork. `execve` is not allowed at all.
//! - `open`/`openat` fail with EPERM: the switch opens no file after start (its uplink is an
//!   inherited fd), and `add-uplink` over the control socket, which would open
//!   `/dev/net/tun`, is then refused with that error instead of killing the switch.
//!
//! Arguments are checked where it matters: `socket` only for AF_UNIX (no network socket),
//! `mmap`/`mprotect` never with PROT_EXEC, `ioctl` only the uplink's four requests, `prctl`
//! only PR_SET_NAME, `clone` only threads.
//!
//! `--seccomp log` allows and logs (to the kernel audit log) what `on` would kill, to find a
//! missing call; `--seccomp off` installs nothing (debugging only).

use std::collections::BTreeMap;
use std::str::FromStr;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

/// How the filter acts on a call outside the allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeccompMode {
    /// Kill the process (the default).
    #[default]
    On,
    /// Allow it and log it (finding a missing call).
    Log,
    /// No filter (debugging only).
    Off,
}

impl FromStr for SeccompMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "on" => Ok(SeccompMode::On),
            "log" => Ok(SeccompMode::Log),
            "off" => Ok(SeccompMode::Off),
            _ => Err(Error::Usage(format!(
                "--seccomp {s}: use on (the default), log or off"
            ))),
        }
    }
}

/// System calls allowed with any arguments.
const ALLOWED: &[libc::c_long] = &[
    // Memory: buffers, thread stacks, guest memory regions (mmap of the fds QEMU sends).
    libc::SYS_brk,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    // Threads and their synchronisation.
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_sigaltstack,
    libc::SYS_tgkill,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_getrandom,
    // I/O on fds it holds: the uplink tap, vhost-user sockets, eventfds, the control socket.
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_lseek,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_eventfd2,
    // vhost-user sockets (client and server mode) and the control socket.
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept4,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_setsockopt,
    libc::SYS_getsockname,
    // Server-mode sockets and the control socket are removed at exit (and a stale one at
    // bind); the control socket is made owner-only after bind.
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_chmod,
    libc::SYS_fchmodat,
    // Answered with an error by the other filters (see the module docs).
    libc::SYS_clone3,
    libc::SYS_openat,
    libc::SYS_open,
];

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(bad)
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::Seccomp(e.to_string())
}

fn arch() -> Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(bad)
}

/// The allowlist filter for `mode` (`None` for [`SeccompMode::Off`]).
pub fn allowlist(mode: SeccompMode) -> Result<Option<BpfProgram>> {
    let mismatch = match mode {
        SeccompMode::On => SeccompAction::KillProcess,
        SeccompMode::Log => SeccompAction::Log,
        SeccompMode::Off => return Ok(None),
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|&nr| (nr, Vec::new())).collect();
    // Threads only: CLONE_THREAD set (no fork, no new namespaces).
    let thread = libc::CLONE_THREAD as u64;
    rules.insert(
        libc::SYS_clone,
        vec![
            SeccompRule::new(vec![cond(0, SeccompCmpOp::MaskedEq(thread), thread)?])
                .map_err(bad)?,
        ],
    );
    // Unix sockets only: no network socket, even on the host's network.
    rules.insert(
        libc::SYS_socket,
        vec![
            SeccompRule::new(vec![cond(0, SeccompCmpOp::Eq, libc::AF_UNIX as u64)?])
                .map_err(bad)?,
        ],
    );
    // Memory never becomes executable: mmap and mprotect without PROT_EXEC.
    let exec = libc::PROT_EXEC as u64;
    for nr in [libc::SYS_mmap, libc::SYS_mprotect] {
        rules.insert(
            nr,
            vec![SeccompRule::new(vec![cond(2, SeccompCmpOp::MaskedEq(exec), 0)?]).map_err(bad)?],
        );
    }
    // The uplink tap's settings (`adopt_tap`) and std's set_nonblocking: nothing else.
    rules.insert(
        libc::SYS_ioctl,
        [
            crate::tap::TUNGETIFF,
            crate::tap::TUNSETVNETHDRSZ,
            crate::tap::TUNSETOFFLOAD,
            libc::FIONBIO as libc::c_ulong,
        ]
        .iter()
        .map(|&req| {
            SeccompRule::new(vec![SeccompCondition::new(
                1,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                req,
            )
            .map_err(bad)?])
            .map_err(bad)
        })
        .collect::<Result<_>>()?,
    );
    // Thread names only (prctl(PR_SET_NAME)).
    rules.insert(
        libc::SYS_prctl,
        vec![
            SeccompRule::new(vec![cond(0, SeccompCmpOp::Eq, libc::PR_SET_NAME as u64)?])
                .map_err(bad)?,
        ],
    );
    let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, arch()?).map_err(bad)?;
    Ok(Some(filter.try_into().map_err(bad)?))
}

/// A filter failing `calls` with `errno`, passing everything else on to the other filters
/// (the kernel runs them all and applies the strictest answer).
pub fn fail_with(calls: &[libc::c_long], errno: i32) -> Result<BpfProgram> {
    let rules = calls.iter().map(|&nr| (nr, Vec::new())).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch()?,
    )
    .map_err(bad)?;
    filter.try_into().map_err(bad)
}

/// The filters of `mode`, compiled (before installing: compiling allocates).
pub fn compile(mode: SeccompMode) -> Result<Vec<BpfProgram>> {
    Ok(match allowlist(mode)? {
        // The allowlist last: installing a filter needs prctl and seccomp, which it forbids.
        Some(allow) => vec![
            fail_with(&[libc::SYS_clone3], libc::ENOSYS)?,
            fail_with(&[libc::SYS_open, libc::SYS_openat], libc::EPERM)?,
            allow,
        ],
        None => Vec::new(),
    })
}

/// Installs compiled filters on every thread of the process (TSYNC; threads started later
/// inherit them). Sets NoNewPrivs first, as seccomp requires of an unprivileged process. Only
/// system calls: safe between `fork` and `exec`.
pub fn install(filters: &[BpfProgram]) -> Result<()> {
    for f in filters {
        seccompiler::apply_filter_all_threads(f).map_err(bad)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_off_builds_nothing() {
        assert_eq!("on".parse::<SeccompMode>().unwrap(), SeccompMode::On);
        assert_eq!("log".parse::<SeccompMode>().unwrap(), SeccompMode::Log);
        assert!(compile(SeccompMode::Off).unwrap().is_empty());
        let e = "maybe".parse::<SeccompMode>().unwrap_err().to_string();
        assert!(e.contains("use on (the default), log or off"), "{e}");
        assert_eq!(compile(SeccompMode::On).unwrap().len(), 3);
    }
}
