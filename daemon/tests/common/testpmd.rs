//! DPDK's testpmd as an idle vhost-user-net back end: its vhost PMD listens on socket paths
//! (QEMU connects, `mode='client'`) and completes the vhost-user handshake; forwarding is
//! never started, so it does not busy-poll the machine's cores.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A running testpmd.
pub struct TestPmd {
    child: Child,
    stdin: ChildStdin,
    prefix: String,
}

/// testpmd's binary, or `None` (after printing why) when dpdk-dev is not installed.
pub fn binary() -> Option<&'static str> {
    let bin = "/usr/bin/dpdk-testpmd";
    if Path::new(bin).exists() {
        Some(bin)
    } else {
        eprintln!("SKIP: {bin} not found (package dpdk-dev: run scripts/setup)");
        None
    }
}

impl TestPmd {
    /// Starts testpmd with one vhost port listening on each of `sockets`; returns once they
    /// all exist.
    pub fn start(bin: &str, sockets: &[PathBuf]) -> TestPmd {
        let prefix = format!("virtnetd-test-{}-{}", std::process::id(), sockets.len());
        let mut cmd = Command::new(bin);
        cmd.args([
            "-l",
            "0,1",
            "--main-lcore",
            "0",
            "--no-huge",
            "-m",
            "1024",
            "--no-pci",
        ])
        .args(["--file-prefix", &prefix]);
        for (i, s) in sockets.iter().enumerate() {
            cmd.arg("--vdev")
                .arg(format!("net_vhost{i},iface={},queues=1", s.display()));
        }
        let mut child = cmd
            .args(["--", "-i", "--no-numa", "--total-num-mbufs=16384"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dpdk-testpmd");
        let stdin = child.stdin.take().expect("piped");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sockets.iter().all(|s| s.exists()) {
            if let Ok(Some(st)) = child.try_wait() {
                panic!("testpmd exited at start ({st})");
            }
            assert!(Instant::now() < deadline, "testpmd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        TestPmd {
            child,
            stdin,
            prefix,
        }
    }
}

impl Drop for TestPmd {
    fn drop(&mut self) {
        let _ = self.stdin.write_all(b"quit\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}
