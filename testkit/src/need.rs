//! What a test needs from the machine, and what happens when it is missing.
//!
//! A test states its needs once, first thing: `if !require(&[Need::Root, Need::Qemu]) {
//! return; }`. When they are all there, [`require`] returns `true` and the test runs. When one
//! is missing:
//!
//! - with `VIRTNET_E2E=require` (set by `.ci/run`, and by `scripts/test` when `CI=true`) it
//!   panics with the reason: on CI every test must really run;
//! - otherwise it returns `false` and records `ignored: <binary> <test>: <reason>` in the file
//!   named by `VIRTNET_TEST_SKIPS` (set by `scripts/test`; always also on stderr). libtest on
//!   stable cannot mark a test ignored once it runs, so it reports the test as passed;
//!   `scripts/test` moves every recorded test from passed to ignored in its counts, per test
//!   binary, and lists them with their reasons.
//!
//! Why a record file rather than a custom harness (libtest-mimic): every test file keeps
//! libtest (`#[test]`, `#[tokio::test]`, filters, `--nocapture`, parallelism) and no test
//! target needs `harness = false`; the cost is that plain `cargo test` (outside scripts/test)
//! still shows skipped tests as "ok" — its stderr says which.

use std::io::Write;
use std::path::PathBuf;

/// The environment variable that turns a missing facility into a failure (`require`).
pub const E2E_ENV: &str = "VIRTNET_E2E";
/// The environment variable naming the file skipped tests are recorded in.
pub const SKIPS_ENV: &str = "VIRTNET_TEST_SKIPS";

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Running as root (network namespaces, taps, mknod).
    Root,
    /// `qemu-system-x86_64` on `PATH` ([`qemu_path`]).
    Qemu,
    /// A program on `PATH` (e.g. `iperf3`, `valgrind`).
    Binary(&'static str),
    /// A directory that exists (e.g. `/dev/shm`).
    Dir(&'static str),
}

impl Need {
    /// Why the test cannot run, or `None` when the need is met.
    fn missing(self) -> Option<String> {
        match self {
            // SAFETY: geteuid has no preconditions.
            Need::Root if unsafe { libc::geteuid() } != 0 => {
                Some("needs root (network namespaces, taps)".into())
            }
            Need::Root => None,
            Need::Qemu if qemu_path().is_none() => Some(
                "needs qemu-system-x86_64 on PATH (package qemu-system-x86: scripts/setup)".into(),
            ),
            Need::Qemu => None,
            Need::Binary(name) if on_path(name).is_none() => {
                Some(format!("needs {name} on PATH (scripts/setup installs it)"))
            }
            Need::Binary(_) => None,
            Need::Dir(dir) if !std::path::Path::new(dir).is_dir() => {
                Some(format!("needs the directory {dir}"))
            }
            Need::Dir(_) => None,
        }
    }
}

/// Whether every one of `needs` is met. When one is not: panics under `VIRTNET_E2E=require`,
/// else records the calling test as ignored (see the module doc) and returns `false`; the
/// test then returns without doing anything.
pub fn require(needs: &[Need]) -> bool {
    let Some(reason) = needs.iter().find_map(|n| n.missing()) else {
        return true;
    };
    let test = current_test();
    if std::env::var(E2E_ENV).as_deref() == Ok("require") {
        panic!("{test}: {reason} ({E2E_ENV}=require: every test must run here)");
    }
    record_ignored(&test, &reason);
    false
}

/// The test calling this: libtest runs each test on a thread named after it.
fn current_test() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("<unknown test>")
        .to_string()
}

/// The running test binary's file name (`e2e_vhostuser-0123abcd`), as cargo prints it in
/// its `Running ... (target/debug/deps/NAME)` line.
fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "<unknown binary>".into())
}

fn record_ignored(test: &str, reason: &str) {
    let line = format!("ignored: {} {test}: {reason}\n", binary_name());
    eprint!("{line}");
    let Some(path) = std::env::var_os(SKIPS_ENV) else {
        return;
    };
    // One write of one short line to a file opened for appending: lines of tests running in
    // parallel do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!(
            "{test} is skipped ({reason}) but cannot be recorded in {} ({SKIPS_ENV}): {e}",
            PathBuf::from(path).display()
        );
    }
}

/// `name` found on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

/// The QEMU binary to test with: `qemu-system-x86_64` on `PATH`.
pub fn qemu_path() -> Option<PathBuf> {
    on_path("qemu-system-x86_64")
}
