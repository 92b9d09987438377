//! The switch's seccomp filter, installed in a forked child (between `fork` and `exec`, so
//! the test process itself stays unfiltered): calls outside the allowlist kill the process
//! with SIGSYS (`execve`, `fork`, a `clone` that is not a thread, a network socket,
//! executable memory), the documented few fail
//! with their errno (`openat` EPERM, `clone3` ENOSYS), allowed calls work, and `log` mode
//! kills nothing.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use virtnet_vhost_net::seccomp::{compile, install, SeccompMode};

/// Runs `probe` in a child after installing the filters of `mode`; the child `_exit`s with
/// the probe's result (or execs `/bin/true` when the probe returns `None`).
fn run_filtered(mode: SeccompMode, probe: fn() -> Option<i32>) -> ExitStatus {
    let filters = compile(mode).unwrap();
    let mut cmd = Command::new("/bin/true");
    // SAFETY: the hook installs precompiled filters (prctl, seccomp) and makes raw system
    // calls; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if install(&filters).is_err() {
                libc::_exit(90);
            }
            match probe() {
                Some(code) => libc::_exit(code),
                None => Ok(()),
            }
        });
    }
    cmd.status().unwrap()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn killed_by_sigsys(st: ExitStatus) -> bool {
    st.signal() == Some(libc::SIGSYS)
}

#[test]
fn execve_is_fatal() {
    let st = run_filtered(SeccompMode::On, || None);
    assert!(killed_by_sigsys(st), "{st:?}");
    // In log mode the same exec goes through (the program then exits on its own: its loader's
    // openat still fails with EPERM).
    let st = run_filtered(SeccompMode::Log, || None);
    assert!(st.signal().is_none() && st.code().is_some(), "{st:?}");
    let st = run_filtered(SeccompMode::Off, || None);
    assert!(st.success(), "{st:?}");
}

#[test]
fn fork_and_non_thread_clone_are_fatal() {
    let st = run_filtered(SeccompMode::On, || {
        // SAFETY: raw fork; the child (if any) exits at once.
        let pid = unsafe { libc::syscall(libc::SYS_fork) };
        if pid == 0 {
            // SAFETY: _exit in the child.
            unsafe { libc::_exit(0) };
        }
        Some(3)
    });
    assert!(killed_by_sigsys(st), "{st:?}");
    let st = run_filtered(SeccompMode::On, || {
        // SAFETY: raw clone with only SIGCHLD (a fork); the child exits at once.
        let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
        if pid == 0 {
            // SAFETY: _exit in the child.
            unsafe { libc::_exit(0) };
        }
        Some(3)
    });
    assert!(killed_by_sigsys(st), "{st:?}");
}

#[test]
fn documented_calls_fail_with_their_errno_and_allowed_ones_work() {
    let st = run_filtered(SeccompMode::On, || {
        // SAFETY: openat with a NUL-terminated literal path.
        let fd = unsafe { libc::openat(libc::AT_FDCWD, c"/etc/hostname".as_ptr(), 0) };
        Some(if fd < 0 && errno() == libc::EPERM {
            0
        } else {
            1
        })
    });
    assert_eq!(st.code(), Some(0), "openat: {st:?}");
    let st = run_filtered(SeccompMode::On, || {
        // SAFETY: clone3 with a null argument: refused before it is read.
        let r = unsafe { libc::syscall(libc::SYS_clone3, 0, 0) };
        Some(if r < 0 && errno() == libc::ENOSYS {
            0
        } else {
            1
        })
    });
    assert_eq!(st.code(), Some(0), "clone3: {st:?}");
    let st = run_filtered(SeccompMode::On, || {
        let mut fds = [0; 2];
        // SAFETY: socketpair writes two fds into `fds`.
        let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
        Some(r)
    });
    // socketpair is not in the allowlist (the switch never makes one): fatal.
    assert!(killed_by_sigsys(st), "socketpair: {st:?}");
    let st = run_filtered(SeccompMode::On, || {
        // SAFETY: socket with integer arguments.
        Some(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) })
    });
    assert!(killed_by_sigsys(st), "an AF_INET socket: {st:?}");
    let st = run_filtered(SeccompMode::On, || {
        // SAFETY: an anonymous mapping asked executable.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        Some(i32::from(p == libc::MAP_FAILED))
    });
    assert!(killed_by_sigsys(st), "executable memory: {st:?}");
    let st = run_filtered(SeccompMode::On, || {
        // SAFETY: socket/eventfd/close with plain integer arguments.
        unsafe {
            let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            let e = libc::eventfd(0, libc::EFD_CLOEXEC);
            Some(if s >= 0 && e >= 0 && libc::close(s) == 0 {
                0
            } else {
                1
            })
        }
    });
    assert_eq!(st.code(), Some(0), "socket/eventfd/close: {st:?}");
}
