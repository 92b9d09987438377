//! Shared helpers for the root tests: run a closure in a private network namespace.
//!
//! The namespace itself, `ip`, `links` and `link_details` come from `virtnet-testkit`; this
//! module adds what the host tests assert on top: no fd of this process leaks.
#![allow(dead_code)]

use std::sync::Mutex;

pub use virtnet_testkit::{ip, link_details, links};

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
    let _guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let before = fd_count();
    let r = virtnet_testkit::with_netns_exclusive(f)?;
    let after = fd_count();
    assert_eq!(before, after, "fd leak: {before} fds before, {after} after");
    Some(r)
}
