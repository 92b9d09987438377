//! The `virtnet-vswitch` binary for tests, and [`VSwitch`]: a running switch as the
//! vhost-user-net back end of a test VM, queried over its control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `PROFILE_DIR/virtnet-vswitch` (`PROFILE_DIR` is `target/debug` or `target/release`, where
/// cargo puts the binaries under test). `cargo test --workspace` builds it; a narrower
/// `cargo test -p virtnetd` may not, so it is built here when missing, in the same profile.
/// Panics when it cannot be built.
pub fn vswitch_binary(profile_dir: &Path) -> PathBuf {
    let bin = profile_dir.join("virtnet-vswitch");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args([
            "build",
            "-p",
            "virtnet-vhost-net",
            "--bin",
            "virtnet-vswitch",
        ]);
        if profile_dir.file_name() == Some("release".as_ref()) {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().unwrap().success(),
            "cannot build virtnet-vswitch"
        );
    }
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// The profile dir of the running test binary (`target/debug` for `target/debug/deps/t-1234`).
pub fn test_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("a test binary lives in PROFILE_DIR/deps")
        .to_path_buf()
}

/// One vhost-user port of a [`VSwitch`].
#[derive(Debug, Clone)]
pub struct VsPort {
    /// The port's name.
    pub name: String,
    /// Its socket.
    pub socket: PathBuf,
    /// `client` (the switch connects, QEMU `mode='server'`) or `server` (the switch listens,
    /// QEMU `mode='client'`).
    pub mode: &'static str,
}

impl VsPort {
    /// A port `name` on `socket`, the switch in `mode` (`client` or `server`).
    pub fn new(name: &str, socket: &Path, mode: &'static str) -> VsPort {
        VsPort {
            name: name.into(),
            socket: socket.into(),
            mode,
        }
    }
}

/// A running `virtnet-vswitch` (the binary of [`vswitch_binary`], in the test's profile).
/// Dropping it stops it (SIGTERM, then SIGKILL) and reaps it.
pub struct VSwitch {
    child: Child,
    control: PathBuf,
}

impl VSwitch {
    /// Starts the switch with `ports` (client ports keep reconnecting until their server
    /// listens), and an uplink tap named `uplink` when given (port `uplink`), its control socket
    /// in `dir`; returns once the control socket answers (all ports are added by then, server
    /// ports listening). Its stderr goes to `dir/vswitch.log`.
    ///
    /// As root it runs the way virtnetd runs it: as `virtnet-switch` without capabilities,
    /// NoNewPrivs, its seccomp filter on, the uplink tap opened here and passed as an fd, and
    /// `dir` and the directories of the port sockets made switch directories
    /// ([`virtnet_host::SwitchIdentity::prepare_dir`]: `virtnet-switch:virtnet-qemu 2770`).
    pub fn start(dir: &Path, ports: &[VsPort], uplink: Option<&str>) -> VSwitch {
        let bin = vswitch_binary(&test_profile_dir());
        let control = dir.join("vswitch-control.sock");
        let mut cmd = Command::new(bin);
        cmd.arg("--control").arg(&control);
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        // Kept open until the switch has started (it has its own copy then).
        let mut tap_fd = None;
        if root {
            let id = virtnet_host::SwitchIdentity::ensure(virtnet_host::QEMU_USER)
                .expect("the switch's and QEMU's system users");
            let mut dirs = vec![dir.to_path_buf()];
            dirs.extend(
                ports
                    .iter()
                    .filter_map(|p| p.socket.parent().map(Path::to_path_buf)),
            );
            for d in dirs {
                id.prepare_dir(&d)
                    .unwrap_or_else(|e| panic!("share {} with the switch: {e}", d.display()));
            }
            let mut confinement = id.confinement;
            if let Some(tap) = uplink {
                let fd = virtnet_host::open_tap_fd(tap)
                    .unwrap_or_else(|e| panic!("open the uplink tap {tap}: {e}"));
                let n = std::os::fd::AsRawFd::as_raw_fd(&fd);
                cmd.arg("--uplink-fd").arg(n.to_string());
                confinement.keep_fds.push(n);
                tap_fd = Some(fd);
            }
            confinement.install(&mut cmd);
        } else if let Some(tap) = uplink {
            cmd.args(["--uplink", tap]);
        }
        for p in ports {
            cmd.arg("--port")
                .arg(format!("{}={},mode={}", p.name, p.socket.display(), p.mode));
        }
        let log = dir.join("vswitch.log");
        let err = std::fs::File::create(&log).expect("create the switch's log");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start virtnet-vswitch");
        drop(tap_fd);
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&control).is_err() {
            if let Ok(Some(st)) = child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("virtnet-vswitch exited at start ({st}):\n{text}");
            }
            assert!(Instant::now() < deadline, "virtnet-vswitch did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        VSwitch { child, control }
    }

    /// The switch's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One control request (`{"cmd":"list-ports"}`); panics unless the reply says `ok`.
    pub fn request(&self, req: &serde_json::Value) -> serde_json::Value {
        let mut s = UnixStream::connect(&self.control).expect("connect the control socket");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        writeln!(s, "{req}").expect("write a control request");
        let mut line = String::new();
        BufReader::new(s)
            .read_line(&mut line)
            .expect("read the control reply");
        let v: serde_json::Value = serde_json::from_str(&line).expect("the reply is JSON");
        assert_eq!(v["ok"], true, "{req} failed: {v}");
        v
    }

    /// The MAC table as (mac, port) pairs.
    pub fn mac_table(&self) -> Vec<(String, String)> {
        let v = self.request(&serde_json::json!({"cmd": "mac-table"}));
        v["macs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                        (s("mac"), s("port"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Port `name`'s entry of `list-ports` (name, connected, counters, ...).
    pub fn port(&self, name: &str) -> serde_json::Value {
        let v = self.request(&serde_json::json!({"cmd": "list-ports"}));
        v["ports"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no port {name}: {v}"))
    }

    /// Frames the switch received from port `name`.
    pub fn rx_packets(&self, name: &str) -> u64 {
        self.port(name)["counters"]["rx_packets"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Stops the switch: SIGTERM (it disconnects its ports and removes its sockets), SIGKILL
    /// after 10 s; reaps it. Returns how it ended (a clean shutdown exits with 0).
    pub fn stop(mut self) -> Option<ExitStatus> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Some(st);
        }
        // SAFETY: kill(2) on our own child's pid; it is not reaped yet, so the pid is its own.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return self.child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for VSwitch {
    fn drop(&mut self) {
        self.shut_down();
    }
}
