//! Running test code in a private network namespace.
//!
//! [`with_netns`] runs a closure on a dedicated thread that has unshared its network and mount
//! namespaces (`unshare(CLONE_NEWNET | CLONE_NEWNS)`), made `/` private and mounted a fresh
//! sysfs on `/sys` showing the new network namespace. Processes the closure starts (QEMU, `ip`,
//! `ping`) inherit the thread's namespaces. Everything vanishes when the thread ends (and its
//! children are gone), even if the closure panics: no name to clean up, nothing to leak.

use std::process::Command;
use std::sync::RwLock;

/// Tests that count the process's fds ([`with_netns_exclusive`]) must not overlap with other
/// tests of the same process; the others share this lock.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

/// Runs `f` in a fresh network namespace (with `lo` up) on its own thread and returns its
/// result; a panic in `f` is re-raised here. Returns `None` only when not root
/// ([`crate::require`]: under `VIRTNET_E2E=require` it panics instead, else the test is counted
/// as ignored).
/// Runs alongside other `with_netns` tests of this process.
pub fn with_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    if !crate::require(&[crate::Need::Root]) {
        return None;
    }
    let _shared = EXCLUSIVE.read().unwrap_or_else(|p| p.into_inner());
    Some(run_in_new_netns(false, f))
}

/// Like [`with_netns`], but no other `with_netns*` test of this process runs meanwhile, so the
/// closure may compare the process's open fds ([`crate::leak::Snapshot`]) before and after.
pub fn with_netns_exclusive<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    if !crate::require(&[crate::Need::Root]) {
        return None;
    }
    let _only = EXCLUSIVE.write().unwrap_or_else(|p| p.into_inner());
    Some(run_in_new_netns(true, f))
}

/// From inside a [`with_netns`] closure: runs `f` in one more fresh network (and mount)
/// namespace, on its own thread, and returns its result. Meant for a second "host": a process
/// `f` starts (a daemon) keeps that namespace alive after `f` returns, and dies with it when
/// the process ends; reach the namespace through the process's pid (`ip link set X netns
/// PID`, `nsenter -t PID -n`).
pub fn in_another_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    run_in_new_netns(false, f)
}

thread_local! {
    static ALONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread runs a [`with_netns_exclusive`] closure (so counting the
/// process's fds means something).
pub fn running_alone() -> bool {
    ALONE.with(|a| a.get())
}

fn run_in_new_netns<R: Send + 'static>(alone: bool, f: impl FnOnce() -> R + Send + 'static) -> R {
    // Named after the test (libtest names its thread so), so that a `require` inside `f`
    // records the right test.
    let name = std::thread::current().name().unwrap_or("netns").to_string();
    let r = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            ALONE.with(|a| a.set(alone));
            enter_private_namespaces();
            ip("link set lo up");
            f()
        })
        .expect("spawn the namespace thread")
        .join();
    match r {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn enter_private_namespaces() {
    // SAFETY: plain syscalls with valid NUL-terminated arguments; they affect only this thread
    // (CLONE_NEWNS also unshares this thread's fs struct).
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

/// The inode of the calling thread's network namespace (to tell namespaces apart).
pub fn netns_id() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// Runs `ip ARGS` (words split on whitespace) in the calling thread's namespaces; returns
/// stdout, panics with stderr on failure.
pub fn ip(args: &str) -> String {
    match ip_status(args) {
        Ok(s) => s,
        Err(e) => panic!("ip {args}: {e}"),
    }
}

/// Runs `ip ARGS`; `Err(stderr)` on failure.
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

/// Creates bridge `name` in the calling thread's namespace, gives it `addr` (`10.0.1.1/24`)
/// when given, and sets it up.
pub fn add_bridge(name: &str, addr: Option<&str>) {
    ip(&format!("link add {name} type bridge"));
    if let Some(a) = addr {
        ip(&format!("addr add {a} dev {name}"));
    }
    ip(&format!("link set {name} up"));
}

/// Creates the veth pair `a`/`b` in the calling thread's namespace, gives `b` the address
/// `b_addr` when given, and sets both up.
pub fn add_veth_pair(a: &str, b: &str, b_addr: Option<&str>) {
    ip(&format!("link add {a} type veth peer name {b}"));
    if let Some(addr) = b_addr {
        ip(&format!("addr add {addr} dev {b}"));
    }
    ip(&format!("link set {a} up"));
    ip(&format!("link set {b} up"));
}

/// Names of all links in the calling thread's network namespace, sorted.
pub fn links() -> Vec<String> {
    let mut v: Vec<String> = ip("-o link show")
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect();
    v.sort();
    v
}

/// `ip -d -o link show dev NAME`, or `None` if there is no such link.
pub fn link_details(name: &str) -> Option<String> {
    ip_status(&format!("-d -o link show dev {name}")).ok()
}

/// Runs `ping -c COUNT -W 1 -i 0.2 ADDR` in the calling thread's namespace; returns
/// (success, output).
pub fn ping(addr: &str, count: u32) -> (bool, String) {
    let out = Command::new("ping")
        .args(["-n", "-c", &count.to_string(), "-W", "1", "-i", "0.2", addr])
        .output()
        .expect("run ping (install iputils-ping: scripts/setup)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}
