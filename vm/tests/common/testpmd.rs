//! DPDK's testpmd as the vhost-user-net back end of the tests (package dpdk-dev, see
//! scripts/setup and shared/notes/dpdk-testpmd.md): its vhost PMD connects to QEMU's socket
//! (QEMU is the server), receives what the guest sends (`rxonly`) and, with `verbose 1`, prints
//! one line per frame (`src=... - dst=... - type=0x0806 ...`).
//!
//! Why not a rust-vmm back end: vhost-user-backend 0.24 drops the connection when QEMU 7.2's
//! virtio-net sends SET_VRING_ENABLE before SET_FEATURES (it checks the acked features
//! first), and without protocol features QEMU 7.2 refuses to start vhost-user-net (EINVAL).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

/// A running testpmd.
pub struct TestPmd {
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Mutex<Vec<String>>>,
    prefix: String,
    reader: Option<std::thread::JoinHandle<()>>,
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
    /// Starts testpmd as a vhost-user client of `socket` (it reconnects until QEMU listens),
    /// forwarding in `rxonly` mode with per-frame lines. Uses both cores' worth of lcores
    /// (0 = main, mostly idle; 1 = the busy-polling forwarder) and no hugepages.
    pub fn start(bin: &str, socket: &Path) -> TestPmd {
        let prefix = format!("virtnet-test-{}", std::process::id());
        let mut child = Command::new(bin)
            .args([
                "-l",
                "0,1",
                "--main-lcore",
                "0",
                "--no-huge",
                "-m",
                "1024",
                "--no-pci",
            ])
            .args(["--file-prefix", &prefix, "--vdev"])
            .arg(format!(
                "net_vhost0,iface={},client=1,queues=1",
                socket.display()
            ))
            .args(["--", "-i", "--no-numa", "--total-num-mbufs=16384"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dpdk-testpmd");
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(b"set verbose 1\nset fwd rxonly\nstart\n")
            .expect("write to testpmd");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped");
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                sink.lock().unwrap().push(l);
            }
        });
        TestPmd {
            child,
            stdin,
            lines,
            prefix,
            reader: Some(reader),
        }
    }

    /// Everything testpmd printed so far.
    pub fn output(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Quits testpmd (`quit`, then SIGKILL if it lingers), reaps it, removes its runtime dir,
    /// and returns all it printed (its stdout is a pipe, so block-buffered: the per-frame lines
    /// are complete only once it has exited).
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.stdin.write_all(b"stop\nquit\n");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                _ if std::time::Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
        self.output()
    }
}

/// Frames from `mac` with EtherType `ethertype` (e.g. `0x0806`) in testpmd's verbose output.
pub fn frames_from(output: &[String], mac: &str, ethertype: &str) -> usize {
    let src = format!("SRC={}", mac.to_ascii_uppercase());
    let ty = format!("TYPE={}", ethertype.to_ascii_uppercase());
    output
        .iter()
        .map(|l| l.to_ascii_uppercase())
        .filter(|l| l.contains(&src) && l.contains(&ty))
        .count()
}
