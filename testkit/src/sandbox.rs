//! Confined QEMU in tests: the sandbox user ([`sandbox`]), a run dir that user can use
//! ([`sandbox_run_dir`]), and the check that a QEMU really is confined ([`assert_qemu_confined`]).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use virtnet_qemu::{QemuUser, Sandbox};

/// The user confined QEMUs run as (virtnetd's default).
pub const QEMU_USER: &str = virtnet_host::QEMU_USER;

/// A [`Sandbox`] for the `virtnet-qemu` user (created when missing), base `/dev` nodes,
/// nothing hidden. Panics when the user cannot be created (run `scripts/setup`).
pub fn sandbox() -> Option<Sandbox> {
    let u = virtnet_host::ensure_system_user(QEMU_USER, "virtnet QEMU (tests)")
        .unwrap_or_else(|e| panic!("cannot create the user {QEMU_USER}: {e}"));
    Some(Sandbox::new(QemuUser {
        name: u.name,
        uid: u.uid,
        gid: u.gid,
        groups: vec![],
    }))
}

/// Makes `dir` (created when missing) usable by the sandbox user: `root:<its group>` 0770
/// (a test's scratch dir where QEMU may open or create sockets by path).
pub fn sandbox_run_dir(dir: &Path, sandbox: &Sandbox) {
    std::fs::create_dir_all(dir).unwrap();
    std::os::unix::fs::chown(dir, Some(0), Some(sandbox.user.gid)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o770)).unwrap();
}

/// One `Key:\tvalue` line of `/proc/PID/status`.
pub fn proc_status_field(pid: u32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Asserts that QEMU `pid` runs confined: what [`crate::assert_confined`] checks (no uid 0,
/// no capability in any set, NoNewPrivs, seccomp mode 2), no gid 0, and a mount namespace
/// other than ours.
pub fn assert_qemu_confined(pid: u32) {
    crate::assert_confined(pid, "QEMU");
    let gids = proc_status_field(pid, "Gid");
    assert!(
        gids.split_whitespace().all(|g| g != "0"),
        "QEMU {pid} runs with gid 0: Gid: {gids}"
    );
    let ours = std::fs::metadata("/proc/self/ns/mnt").unwrap().ino();
    let its = std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .ino();
    assert_ne!(ours, its, "QEMU {pid} shares our mount namespace");
}

/// Asserts that process `pid` runs unconfined: uid 0, in our mount namespace, no seccomp
/// filter.
pub fn assert_unconfined(pid: u32) {
    let uids = proc_status_field(pid, "Uid");
    assert!(
        uids.split_whitespace().all(|u| u == "0"),
        "QEMU {pid}: Uid: {uids}"
    );
    assert_eq!(proc_status_field(pid, "Seccomp"), "0", "QEMU {pid}");
    let ours = std::fs::metadata("/proc/self/ns/mnt").unwrap().ino();
    let its = std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .ino();
    assert_eq!(ours, its, "QEMU {pid} has its own mount namespace");
}

/// The names in `/dev` as process `pid` sees it (`/proc/PID/root/dev`), sorted.
pub fn dev_entries(pid: u32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/root/dev"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
