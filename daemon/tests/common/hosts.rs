//! Two "hosts" for live migration tests (e2e_migrate, e2e_rpc_migrate): host A is the test's
//! network namespace, host B another one; each runs its own virtnetd and has a Linux bridge
//! `br0`; a veth pair `ul0` (10.99.0.1 on A, 10.99.0.2 on B) is the underlay. The guest's
//! liveness: a counter it prints once a second on its console and its `/proc/uptime`. The guest
//! counter and the migration-progress helpers serve e2e_ovn_migrate too.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use virtnet_testkit::{bridge_nic, ip, with_netns, SerialConsole, Snapshot, TestDomain};

use super::e2e::{post_json, state, wait_until, CMD};
use super::TestDaemon;

pub const MAC: &str = "52:54:00:00:0d:02";
pub const GUEST_IP: &str = "10.0.13.2";

/// Host A (this namespace) and host B (another), each with a virtnetd.
pub struct Hosts {
    /// virtnetd on host A.
    pub a: TestDaemon,
    /// virtnetd on host B.
    pub b: TestDaemon,
    /// virtnetd B's pid: the handle on namespace B.
    pub b_pid: u32,
    /// Both daemons' bases, the serial sockets, files a test writes.
    pub tmp: tempfile::TempDir,
}

impl Hosts {
    /// Both hosts, their bridges and the underlay.
    pub fn new(qemu: &Path) -> Hosts {
        ip("link add br0 type bridge");
        ip("addr add 10.0.13.1/24 dev br0");
        ip("link set br0 up");
        let tmp = tempfile::tempdir().unwrap();
        let a = TestDaemon::start_with(&tmp.path().join("a"), Some(qemu));
        let (base_b, qemu_b) = (tmp.path().join("b"), qemu.to_path_buf());
        let b = virtnet_testkit::in_another_netns(move || {
            ip("link add br0 type bridge");
            ip("addr add 10.0.13.254/24 dev br0");
            ip("link set br0 up");
            TestDaemon::start_with(&base_b, Some(&qemu_b))
        });
        let b_pid = b.pid();
        ip(&format!(
            "link add ul0 type veth peer name ul0 netns {b_pid}"
        ));
        ip("addr add 10.99.0.1/24 dev ul0");
        ip("link set ul0 up");
        in_b(b_pid, "ip addr add 10.99.0.2/24 dev ul0");
        in_b(b_pid, "ip link set ul0 up");
        Hosts { a, b, b_pid, tmp }
    }

    pub fn serial(&self, host: &str) -> PathBuf {
        self.tmp.path().join(format!("{host}-serial.sock"))
    }

    /// The test domain `name` with its console at `host`'s serial socket.
    pub fn xml(&self, name: &str, host: &str) -> String {
        TestDomain::new(name, self.serial(host))
            .nic(
                &bridge_nic(MAC, "br0"),
                MAC,
                Some(&format!("{GUEST_IP}/24")),
            )
            .xml(virtnet_testkit::guest())
    }

    /// Links in namespace B.
    pub fn links_b(&self) -> Vec<String> {
        link_names(&in_b(self.b_pid, "ip -o link show"))
    }

    /// What B has before a migration, for `nothing_on_b`: its links and the files of its
    /// virtnetd's run and state dirs.
    pub fn b_before(&self) -> (Vec<String>, Snapshot) {
        let files = Snapshot::take(&[&self.b.base.join("run"), &self.b.base.join("state")]);
        (self.links_b(), files)
    }

    /// `POST /v1/domains/NAME/migrate` on A towards B over the underlay.
    pub fn migrate(&self, name: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({
            "dest": self.b.socket,
            "migrate_uri": "tcp:10.99.0.2",
            "timeout_secs": 120,
            "dest_xml": self.xml(name, "b"),
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        post_json(&self.a, &format!("/v1/domains/{name}/migrate"), &body)
    }
}

/// Runs `f` with both hosts in a fresh network namespace; skips (returns) where the
/// end-to-end tests do not run.
pub fn with_hosts(f: impl FnOnce(Hosts) + Send + 'static) {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    with_netns(move || f(Hosts::new(&qemu)));
}

/// The stdout of a migration client (virsh, python3) that must have succeeded; printed. On
/// failure the panic shows its output and the destination `dest`'s log.
pub fn succeeded(out: &Output, dest: &TestDaemon) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}\nB:\n{}",
        String::from_utf8_lossy(&out.stderr),
        dest.log()
    );
    println!("{text}");
    text
}

/// Runs `CMD` (words) in namespace B; stdout, panics on failure.
pub fn in_b(pid: u32, cmd: &str) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "--"])
        .args(cmd.split_whitespace())
        .output()
        .expect("run nsenter");
    assert!(
        out.status.success(),
        "{cmd} in B: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sorted link names in `ip -o link show`'s output (without `@peer`).
pub fn link_names(ip_o_link: &str) -> Vec<String> {
    let mut v: Vec<String> = ip_o_link
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect();
    v.sort();
    v
}

/// The QEMU pid of running domain `name`.
pub fn pid_of(d: &TestDaemon, name: &str) -> u64 {
    let (s, v) = d.get(&format!("/v1/domains/{name}"));
    assert_eq!(s, 200, "{v}");
    v["pid"].as_u64().expect("running")
}

/// The guest's counter: starts it (once a second, on the console).
pub async fn start_ticks(con: &mut SerialConsole) {
    let (_, rc) = con
        .run(
            "(i=0; while :; do i=$((i+1)); echo \"virtnet-guest: tick $i\"; sleep 1; done) >/dev/ttyS0 2>&1 &",
            CMD,
        )
        .await
        .unwrap();
    assert_eq!(rc, 0);
}

/// The highest tick on the console after waiting for one more than `after`.
pub async fn tick_after(con: &mut SerialConsole, after: u64) -> u64 {
    let l = con
        .wait_line(
            |l| tick(l).is_some_and(|n| n > after),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    tick(&l).unwrap()
}

/// The tick number of a counter line on the console.
pub fn tick(line: &str) -> Option<u64> {
    line.strip_prefix("virtnet-guest: tick ")?
        .trim()
        .parse()
        .ok()
}

/// The guest's uptime in seconds; `after_migration`: without waiting for a fresh prompt.
pub async fn uptime(con: &mut SerialConsole, after_migration: bool) -> f64 {
    let (out, rc) = if after_migration {
        con.run_now("cat /proc/uptime", CMD).await.unwrap()
    } else {
        con.run("cat /proc/uptime", CMD).await.unwrap()
    };
    assert_eq!(rc, 0, "{out}");
    out.split_whitespace().next().unwrap().parse().unwrap()
}

/// The guest at console `serial`, ready and counting: its console, uptime and a tick seen.
pub async fn ticking(serial: &Path) -> (SerialConsole, f64, u64) {
    let mut con = super::e2e::ready_console(serial).await;
    start_ticks(&mut con).await;
    let t0 = tick_after(&mut con, 1).await;
    let u0 = uptime(&mut con, false).await;
    (con, u0, t0)
}

/// The guest migrated to console `serial` went on counting past tick `t0` and uptime `u0`
/// (the same guest, not rebooted); its console there.
pub async fn went_on(serial: &Path, t0: u64, u0: f64) -> SerialConsole {
    let mut con = SerialConsole::connect(serial, Duration::from_secs(10))
        .await
        .unwrap();
    let t1 = tick_after(&mut con, t0).await;
    let u1 = uptime(&mut con, true).await;
    assert!(u1 > u0, "uptime went on: {u0} -> {u1}");
    println!("guest: tick {t0} -> {t1}, uptime {u0} -> {u1}");
    con
}

/// A thread that waits (60 s at most) until the virtnetd at `sock` runs QEMU for `vm` (a
/// migration's destination), lets the stream start (1.5 s) and kills that QEMU; its pid.
pub fn kill_qemu_once_started(sock: PathBuf, vm: &str) -> JoinHandle<i32> {
    let path = format!("/v1/domains/{vm}");
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (s, v) = super::http(&sock, "GET", &path, &[], b"");
            let v: Value = serde_json::from_str(&v).unwrap_or_default();
            if s == 200 && v["pid"].is_u64() {
                std::thread::sleep(Duration::from_millis(1500));
                let pid = v["pid"].as_u64().unwrap() as i32;
                // SAFETY: kill with a pid read from the destination's virtnetd and a valid
                // signal.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "the destination never started QEMU"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

/// Waits (60 s at most) until the migration of `vm` by the virtnetd at `sock` has issued
/// QMP migrate, then 0.5 s more (so it is streaming).
pub fn wait_until_streaming(sock: &Path, vm: &str) {
    let path = format!("/v1/domains/{vm}/migrate");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, p) = super::http(sock, "GET", &path, &[], b"");
        let p: Value = serde_json::from_str(&p).unwrap_or_default();
        let started = p["lines"].as_array().is_some_and(|l| {
            l.iter()
                .any(|l| l.as_str().unwrap_or("").contains("QMP migrate"))
        });
        if started {
            std::thread::sleep(Duration::from_millis(500));
            return;
        }
        assert!(Instant::now() < deadline, "the migration never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The guest `name` runs on A as before a failed migration: the same QEMU, the guest answers.
pub async fn still_on_a(h: &Hosts, name: &str, pid: u64, con: &mut SerialConsole) {
    assert_eq!(state(&h.a, name), "running");
    assert_eq!(pid_of(&h.a, name), pid, "the same QEMU");
    let (s, v) = super::e2e::qmp(&h.a, name, "query-status", json!({}))
        .map_or_else(|e| (500, Value::String(e)), |v| (200, v));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "running", "the source guest was resumed: {v}");
    let (out, rc) = con.run("echo still-here", CMD).await.unwrap();
    assert_eq!((out.as_str(), rc), ("still-here", 0));
}

/// Nothing of `name` on B: no VM, no QEMU, no tap, no file in its run dir.
pub fn nothing_on_b(h: &Hosts, name: &str, links_before: &[String], files_before: &Snapshot) {
    wait_until("B to forget the VM", Duration::from_secs(10), || {
        !h.b.names().contains(&name.to_string())
    });
    assert_eq!(h.links_b(), links_before, "links on B");
    // Files only: the snapshot's links and processes are this (A's) namespace's.
    let now = files_before.again();
    let new: Vec<_> = now
        .files
        .iter()
        .filter(|f| !files_before.files.contains(f))
        .collect();
    assert!(new.is_empty(), "left on B: {new:?}");
    assert!(!h.serial("b").exists(), "B's serial socket");
}

/// Whether `CMD` (words) succeeds in namespace B.
pub fn in_b_ok(pid: u32, cmd: &str) -> bool {
    Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "--"])
        .args(cmd.split_whitespace())
        .output()
        .is_ok_and(|o| o.status.success())
}
