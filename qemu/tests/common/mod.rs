//! Shared helpers for tests that run a real QEMU.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use virtnet_qemu::{QemuProcess, QemuSpawn, QmpOptions};

/// The QEMU binary (`qemu-system-x86_64` on `PATH`), or `None` when it is missing and the test
/// is counted as ignored (under `VIRTNET_E2E=require` it fails instead: see
/// `virtnet_testkit::require`).
pub fn qemu_binary() -> Option<PathBuf> {
    if !virtnet_testkit::require(&[virtnet_testkit::Need::Qemu]) {
        return None;
    }
    virtnet_testkit::qemu_path()
}

/// The fd number idle QEMUs get their (already listening) QMP socket at.
pub const MONITOR_FD: i32 = 100;

/// Args for a QEMU that just sits there answering QMP on the listening socket it inherits at
/// [`MONITOR_FD`]: no guest, TCG, paused (-S).
pub fn idle_args(extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "-S",
        "-nodefaults",
        "-machine",
        "pc",
        "-accel",
        "tcg",
        "-m",
        "64",
        "-display",
        "none",
        "-mon",
        "chardev=charmonitor,id=monitor,mode=control",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push("-chardev".into());
    a.push(format!(
        "socket,id=charmonitor,fd={MONITOR_FD},server=on,wait=off"
    ));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// A spawn spec for an idle QEMU in `dir` (socket `qmp.sock`, made to listen here and
/// passed as [`MONITOR_FD`]; log `qemu.log`).
pub fn idle_spawn(bin: &Path, dir: &TempDir, extra: &[&str]) -> QemuSpawn {
    let sock = dir.path().join("qmp.sock");
    let monitor = virtnet_qemu::listen_unix(&sock).expect("listen on the QMP socket");
    QemuSpawn::new(bin, idle_args(extra), &sock, dir.path().join("qemu.log"))
        .inherit_fd(monitor, MONITOR_FD)
        .qmp_options(QmpOptions {
            command_timeout: Duration::from_secs(5),
            ..QmpOptions::default()
        })
}

/// Starts an idle QEMU; returns it with its temp dir (keep both alive).
pub async fn start_idle(extra: &[&str]) -> Option<(QemuProcess, TempDir)> {
    let bin = qemu_binary()?;
    let dir = tempfile::tempdir().unwrap();
    let vm = idle_spawn(&bin, &dir, extra)
        .spawn()
        .await
        .expect("idle QEMU starts");
    Some((vm, dir))
}

/// `pipe:[inode]`-style link targets of every fd of `pid`, as (fd number, target).
pub fn proc_fds(pid: u32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let e = e.unwrap();
        let n: i32 = e.file_name().to_string_lossy().parse().unwrap();
        if let Ok(t) = std::fs::read_link(e.path()) {
            out.push((n, t.to_string_lossy().into_owned()));
        }
    }
    out.sort();
    out
}

/// The `/proc` link target of one of our own fds (e.g. `pipe:[1234]`).
pub fn link_of(fd: &impl std::os::fd::AsRawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// True while `/proc/<pid>` exists (a zombie still has it).
pub fn pid_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
