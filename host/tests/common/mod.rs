//! Shared helpers for the root tests: run a closure in a private network namespace.
#![allow(dead_code)]

use std::process::Command;
use std::sync::Mutex;

/// Root tests share one lock: fd counting is per process, so they must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Runs `f` on a dedicated thread that has its own network namespace and mount namespace
/// (with a fresh sysfs on /sys showing that network namespace). Both vanish when the thread
/// ends. Returns `None` (after printing why) only if we are not root. Asserts that the
/// process has as many fds afterwards as before.
pub fn in_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: not root, cannot create network namespaces");
        return None;
    }
    let _guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let before = fd_count();
    let r = std::thread::spawn(move || {
        enter_private_namespaces();
        f()
    })
    .join();
    let r = match r {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    };
    let after = fd_count();
    assert_eq!(before, after, "fd leak: {before} fds before, {after} after");
    Some(r)
}

fn enter_private_namespaces() {
    // SAFETY: plain syscalls with valid, NUL-terminated arguments; they affect only this
    // thread (CLONE_NEWNS also unshares this thread's fs struct).
    unsafe {
        let rc = libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS);
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        let rc = libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        );
        assert_eq!(rc, 0, "make / private: {}", std::io::Error::last_os_error());
        let rc = libc::mount(
            c"sysfs".as_ptr(),
            c"/sys".as_ptr(),
            c"sysfs".as_ptr(),
            0,
            std::ptr::null(),
        );
        assert_eq!(rc, 0, "mount sysfs: {}", std::io::Error::last_os_error());
    }
}

/// Runs `ip ARGS` (in the calling thread's namespaces) and returns stdout; panics on failure.
pub fn ip(args: &str) -> String {
    let out = ip_status(args);
    match out {
        Ok(s) => s,
        Err(e) => panic!("ip {args}: {e}"),
    }
}

/// Runs `ip ARGS`; `Err(stderr)` if it fails.
pub fn ip_status(args: &str) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("run ip (install iproute2: scripts/setup)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Names of all links in the current namespace, sorted.
pub fn links() -> Vec<String> {
    let mut v: Vec<String> = ip("-o link show")
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// `ip -d -o link show dev NAME`, or None if the link does not exist.
pub fn link_details(name: &str) -> Option<String> {
    ip_status(&format!("-d -o link show dev {name}")).ok()
}
