//! DPDK's testpmd as the vhost-user-net back end of the tests (package dpdk-dev, see
//! scripts/setup and shared/notes/dpdk-testpmd.md). Two ways to run it:
//!
//! - [`TestPmd::connect`]: its vhost PMD connects to one socket QEMU listens on
//!   (`mode='server'`), receives what the guest sends (`rxonly`) and, with `verbose 1`, prints
//!   one line per frame (`src=... - dst=... - type=0x0806 ...`); see [`frames_from`].
//! - [`TestPmd::listen`]: an idle back end listening on socket paths (QEMU connects,
//!   `mode='client'`) that completes the vhost-user handshake; forwarding is never started, so
//!   it does not busy-poll the machine's cores.
//!
//! Why not a rust-vmm back end: vhost-user-backend 0.24 drops the connection when QEMU 7.2's
//! virtio-net sends SET_VRING_ENABLE before SET_FEATURES (it checks the acked features
//! first), and without protocol features QEMU 7.2 refuses to start vhost-user-net (EINVAL).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running testpmd. Dropping it quits it (see [`TestPmd::stop`]).
pub struct TestPmd {
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Mutex<Vec<String>>>,
    prefix: String,
    reader: Option<JoinHandle<()>>,
    stopped: bool,
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
    /// forwarding in `rxonly` mode with per-frame lines (read them with [`TestPmd::stop`]).
    pub fn connect(bin: &str, socket: &Path) -> TestPmd {
        let vdev = format!("net_vhost0,iface={},client=1,queues=1", socket.display());
        let mut pmd = TestPmd::spawn(bin, &[vdev], true);
        pmd.stdin
            .write_all(b"set verbose 1\nset fwd rxonly\nstart\n")
            .expect("write to testpmd");
        pmd
    }

    /// Starts testpmd with one vhost port listening on each of `sockets`, forwarding nothing;
    /// returns once they all exist.
    pub fn listen(bin: &str, sockets: &[PathBuf]) -> TestPmd {
        let vdevs: Vec<String> = sockets
            .iter()
            .enumerate()
            .map(|(i, s)| format!("net_vhost{i},iface={},queues=1", s.display()))
            .collect();
        let mut pmd = TestPmd::spawn(bin, &vdevs, false);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !sockets.iter().all(|s| s.exists()) {
            if let Ok(Some(st)) = pmd.child.try_wait() {
                panic!("testpmd exited at start ({st})");
            }
            assert!(Instant::now() < deadline, "testpmd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        pmd
    }

    /// testpmd in interactive mode with the vhost ports `vdevs`, on two lcores (0 = main,
    /// mostly idle; 1 = the forwarder, busy-polling once forwarding starts) and no hugepages;
    /// its stdout collected when `capture`.
    fn spawn(bin: &str, vdevs: &[String], capture: bool) -> TestPmd {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "virtnet-test-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
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
        for v in vdevs {
            cmd.arg("--vdev").arg(v);
        }
        let stdout = if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = cmd
            .args(["--", "-i", "--no-numa", "--total-num-mbufs=16384"])
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("start dpdk-testpmd");
        let stdin = child.stdin.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = child.stdout.take().map(|out| {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines() {
                    let Ok(l) = l else { break };
                    sink.lock().unwrap().push(l);
                }
            })
        });
        TestPmd {
            child,
            stdin,
            lines,
            prefix,
            reader,
            stopped: false,
        }
    }

    /// Everything testpmd printed so far (nothing for [`TestPmd::listen`]).
    pub fn output(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Quits testpmd (`stop`, `quit`, then SIGKILL if it lingers), reaps it, removes its
    /// runtime dir, and returns all it printed (its stdout is a pipe, so block-buffered: the
    /// per-frame lines are complete only once it has exited).
    pub fn stop(mut self) -> Vec<String> {
        self.shut_down();
        self.output()
    }

    fn shut_down(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let _ = self.stdin.write_all(b"stop\nquit\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

impl Drop for TestPmd {
    fn drop(&mut self) {
        self.shut_down();
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
