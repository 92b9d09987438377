//! libvirt's own clients against a [`TestDaemon`]'s `RUN_DIR/libvirt-sock`: Debian's `virsh`
//! (libvirt-clients) and python3-libvirt, unchanged.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::TestDaemon;

/// The QEMU to use when the end-to-end tests run here and virsh is installed; None (skip) else.
pub fn qemu_and_virsh() -> Option<PathBuf> {
    let qemu = virtnet_testkit::e2e_qemu()?;
    virtnet_testkit::require(&[virtnet_testkit::Need::Binary("virsh")]).then_some(qemu)
}

/// The daemon's libvirt socket.
pub fn sock(d: &TestDaemon) -> PathBuf {
    d.base.join("run/libvirt-sock")
}

/// The URI libvirt's clients open for it.
pub fn uri(d: &TestDaemon) -> String {
    format!("qemu+unix:///system?socket={}", sock(d).display())
}

/// `virsh -c URI ARGS...`: (success, stdout, stderr, wall time).
pub fn virsh(d: &TestDaemon, args: &[&str]) -> (bool, String, String, Duration) {
    let t = Instant::now();
    let out = Command::new("virsh")
        .arg("-c")
        .arg(uri(d))
        .args(args)
        .output()
        .expect("virsh (scripts/setup installs libvirt-clients)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    )
}

/// virsh's stdout for `args`, which must succeed.
pub fn virsh_ok(d: &TestDaemon, args: &[&str]) -> String {
    let (ok, out, err, _) = virsh(d, args);
    assert!(ok, "virsh {args:?} failed: {err}\n{}", d.log());
    out
}

/// virsh's refusal for `args`, which must fail: its stderr.
pub fn virsh_err(d: &TestDaemon, args: &[&str]) -> String {
    let (ok, out, err, _) = virsh(d, args);
    assert!(!ok, "virsh {args:?} succeeded: {out}");
    err
}

/// Debian's python (where python3-libvirt is, not a python3 earlier on PATH) running
/// `script` with `args` (`sys.argv[1..]`).
pub fn python3(script: &str, args: &[&str]) -> Output {
    Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 (scripts/setup installs python3-libvirt)")
}
