//! Can KVM run a guest here? Decided by booting the test guest, not by `/dev/kvm` existing
//! (on some hosts `/dev/kvm` answers but cannot run a stock kernel: see
//! shared/notes/qemu-on-these-machines.md).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use crate::guest::GuestArtifacts;

/// Boots `guest` under `-accel kvm` (no NICs, serial on stdout) and reports whether its first
/// `virtnet-guest:` line appears within `timeout`. QEMU is killed and reaped either way.
pub fn kvm_boots_guest(qemu: &Path, guest: &GuestArtifacts, timeout: Duration) -> bool {
    if !Path::new("/dev/kvm").exists() {
        return false;
    }
    let child = Command::new(qemu)
        .args([
            "-accel", "kvm", "-machine", "pc", "-cpu", "host", "-m", "256",
        ])
        .args([
            "-display",
            "none",
            "-nodefaults",
            "-no-user-config",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(&guest.kernel)
        .arg("-initrd")
        .arg(&guest.initrd)
        .args(["-append", &guest.cmdline])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("virtnet-guest:") {
                let _ = tx.send(());
                break;
            }
        }
    });
    let booted = rx.recv_timeout(timeout).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    booted
}

/// [`kvm_boots_guest`] with a 10 s limit, probed once per process.
pub fn kvm_usable(qemu: &Path) -> bool {
    static KVM: OnceLock<bool> = OnceLock::new();
    *KVM.get_or_init(|| kvm_boots_guest(qemu, crate::guest::guest(), Duration::from_secs(10)))
}
