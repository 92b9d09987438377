//! Running the real `virtnetd` binary on a temporary socket and state, and talking raw
//! HTTP/1.1 to it (so malformed requests can be sent too).

#![allow(dead_code)]

pub mod e2e;
pub mod hosts;
pub mod ovs;
pub mod virsh;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `virtnetd` process with its state under `base`.
pub struct TestDaemon {
    /// Where state/, run/ and daemon.log are.
    pub base: PathBuf,
    /// The API socket.
    pub socket: PathBuf,
    child: Option<Child>,
    qemu: Option<PathBuf>,
    args: Vec<String>,
    /// The named network namespace it runs in (`ip netns exec`), if not the test's own.
    netns: Option<String>,
}

impl TestDaemon {
    /// Starts virtnetd with `base/state`, `base/run`, logging to `base/daemon.log`, and waits
    /// until it answers.
    pub fn start(base: &Path) -> TestDaemon {
        Self::start_with(base, None)
    }

    /// Same, with the QEMU binary to use.
    pub fn start_with(base: &Path, qemu: Option<&Path>) -> TestDaemon {
        Self::start_with_args(base, qemu, &[])
    }

    /// Same, with more command line arguments (`--backend-timeout 2`).
    pub fn start_with_args(base: &Path, qemu: Option<&Path>, args: &[&str]) -> TestDaemon {
        Self::start_in(base, qemu, args, None)
    }

    /// Same, in the named network namespace `netns` (`ip netns exec NS virtnetd ...`, e.g. a
    /// simulated host of testkit's `ovn::MultiHost`) when given.
    pub fn start_in(
        base: &Path,
        qemu: Option<&Path>,
        args: &[&str],
        netns: Option<&str>,
    ) -> TestDaemon {
        let mut d = TestDaemon {
            base: base.to_path_buf(),
            socket: base.join("run/virtnetd.sock"),
            child: None,
            qemu: qemu.map(Path::to_path_buf),
            args: args.iter().map(|a| a.to_string()).collect(),
            netns: netns.map(str::to_string),
        };
        if d.confined() {
            // `base` stands for a user's directory where the tests put sockets and files;
            // the ones QEMU opens by path (vhost-user sockets) need the QEMU user to reach it
            // (virtnetd hides its own state/ and run/ inside it from QEMU).
            if let Some(sb) = virtnet_testkit::sandbox() {
                virtnet_testkit::sandbox_run_dir(base, &sb);
            }
        }
        d.restart();
        d
    }

    /// Whether this daemon confines QEMU (the default; `--sandbox off` does not).
    pub fn confined(&self) -> bool {
        !self
            .args
            .windows(2)
            .any(|w| w[0] == "--sandbox" && w[1] == "off")
    }

    /// Starts the process (again).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.base.join("daemon.log"))
            .unwrap();
        let mut cmd = match &self.netns {
            // `ip netns exec` execs virtnetd: the child's pid is virtnetd's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_virtnetd")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_virtnetd")),
        };
        cmd.arg("--state-dir")
            .arg(self.base.join("state"))
            .arg("--run-dir")
            .arg(self.base.join("run"))
            .env("VIRTNETD_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(q) = &self.qemu {
            cmd.arg("--qemu").arg(q);
        }
        cmd.args(&self.args);
        let mut child = cmd.spawn().expect("spawn virtnetd");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("virtnetd exited at start ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "virtnetd did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.base.join("daemon.log")).unwrap_or_default()
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill with a pid we own and a valid signal.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(15);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.wait();
        }
    }

    /// SIGKILL and wait (a crash).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One request; returns the status and the body parsed as JSON (or as a JSON string when
    /// it is not JSON).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let mut headers = Vec::new();
        if let Some(ct) = content_type {
            headers.push(("Content-Type", ct));
        }
        let (status, text) = http(&self.socket, method, path, &headers, body.as_bytes());
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, "")
    }

    /// `POST /v1/domains` with the XML.
    pub fn define(&self, xml: &str) -> (u16, Value) {
        self.call("POST", "/v1/domains", Some("application/xml"), xml)
    }

    /// `POST path` without a body.
    pub fn post(&self, path: &str) -> (u16, Value) {
        self.call("POST", path, None, "")
    }

    /// The names in `GET /v1/domains`.
    pub fn names(&self) -> Vec<String> {
        let (s, v) = self.get("/v1/domains");
        assert_eq!(s, 200, "{v}");
        v["domains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Every file of the store (definitions and live statuses) with its content.
    pub fn store_files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for dir in [self.base.join("state/domains"), self.base.join("run")] {
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_file() {
                        out.insert(p.clone(), std::fs::read(&p).unwrap());
                    }
                }
            }
        }
        out
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        // A failed test must not leave QEMUs running: destroy what runs, then stop.
        if self.child.is_some() {
            if let Ok(names) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.names()))
            {
                for n in names {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.post(&format!("/v1/domains/{n}/destroy"))
                    }));
                }
            }
            // Switches outlive virtnetd by design (it adopts them at restart): stop them.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let (_, v) = self.get("/v1/networks");
                for n in v.as_array().into_iter().flatten() {
                    if let Some(n) = n["name"].as_str() {
                        self.post(&format!("/v1/networks/{n}/destroy"));
                    }
                }
            }));
        }
        self.stop();
    }
}

/// A raw HTTP/1.1 request over the unix socket (`Connection: close`); status and body.
pub fn http(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = UnixStream::connect(socket).expect("connect to virtnetd");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: virtnetd\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    // The server may answer (and close) before reading a body it does not need: a failed
    // write is fine as long as the answer can be read.
    let _ = s.write_all(&bytes);
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8(resp).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, body.to_string())
}

/// A small valid domain named `name` with the given `<interface>` elements.
pub fn domain_xml(name: &str, interfaces: &str) -> String {
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os><type>hvm</type></os>
  <devices>
    {interfaces}
  </devices>
</domain>
"
    )
}

/// A vhost-user `<interface>` on `path` with `mac`.
pub fn vhostuser_nic(mac: &str, path: &str) -> String {
    virtnet_testkit::vhostuser_nic(mac, Path::new(path), "client")
}

/// `target/<profile>/virtnet-vswitch`, next to virtnetd (built if missing).
pub fn vswitch() -> PathBuf {
    let daemon = Path::new(env!("CARGO_BIN_EXE_virtnetd"));
    virtnet_testkit::vswitch_binary(daemon.parent().unwrap())
}
