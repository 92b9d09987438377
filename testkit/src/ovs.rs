//! A private Open vSwitch for a test: its own `ovsdb-server` and `ovs-vswitchd` (userspace
//! datapath, `datapath_type=netdev`: this kernel has no openvswitch module), every file in
//! one directory, started in a network namespace and stopped when the [`Ovs`] is dropped
//! (also when the test panics).
//!
//! ```no_run
//! # use virtnet_testkit::ovs::Ovs;
//! let dir = tempfile::tempdir().unwrap();
//! let ovs = Ovs::start(None, dir.path()); // in the calling thread's namespace
//! ovs.add_bridge("br-int");
//! ovs.vsctl(&["list-ports", "br-int"]);
//! ```
//! What it does is what `/work/shared/notes/host-kernel-here.md` measured: `ovsdb-tool
//! create`, `ovsdb-server --remote=punix:DIR/db.sock`, `ovs-vsctl --no-wait init`,
//! `ovs-vswitchd unix:DIR/db.sock`, with `OVS_RUNDIR`/`OVS_DBDIR`/`OVS_LOGDIR` all `DIR`
//! so nothing touches the host's Open vSwitch (whose systemd units are never started).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The OVSDB schema Debian's openvswitch-common installs.
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// A running private Open vSwitch (see the module doc). Dropping it stops both daemons.
pub struct Ovs {
    dir: PathBuf,
    ns: Option<String>,
}

impl Ovs {
    /// Starts ovsdb-server and ovs-vswitchd with every file in `dir`, in network namespace
    /// `ns` (`ip netns exec NS`), or in the calling thread's when `None` (inside
    /// [`crate::with_netns`]). Panics when a step fails (after stopping what it started).
    pub fn start(ns: Option<&str>, dir: &Path) -> Ovs {
        let ovs = Ovs {
            dir: dir.to_path_buf(),
            ns: ns.map(str::to_string),
        };
        let d = dir.display();
        ovs.run_ok("ovsdb-tool", &["create", &format!("{d}/conf.db"), SCHEMA]);
        ovs.run_ok(
            "ovsdb-server",
            &[
                &format!("{d}/conf.db"),
                &format!("--remote=punix:{d}/db.sock"),
                &format!("--pidfile={d}/ovsdb-server.pid"),
                &format!("--log-file={d}/ovsdb-server.log"),
                &format!("--unixctl={d}/ovsdb-server.ctl"),
                "--detach",
            ],
        );
        ovs.vsctl(&["--no-wait", "init"]);
        ovs.run_ok(
            "ovs-vswitchd",
            &[
                &ovs.db(),
                &format!("--pidfile={d}/ovs-vswitchd.pid"),
                &format!("--log-file={d}/ovs-vswitchd.log"),
                &format!("--unixctl={d}/ovs-vswitchd.ctl"),
                "--detach",
            ],
        );
        ovs
    }

    /// The database as ovs-vsctl's `--db` (and `virtnetd --ovsdb`) take it: `unix:DIR/db.sock`.
    pub fn db(&self) -> String {
        format!("unix:{}", self.db_socket().display())
    }

    /// The database socket.
    pub fn db_socket(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// Runs `ovs-vsctl --db=... ARGS`; returns stdout trimmed, panics with stderr on failure.
    pub fn vsctl(&self, args: &[&str]) -> String {
        self.vsctl_status(args)
            .unwrap_or_else(|e| panic!("ovs-vsctl {}: {e}", args.join(" ")))
    }

    /// Runs `ovs-vsctl --db=... ARGS`; stdout trimmed, or stderr.
    pub fn vsctl_status(&self, args: &[&str]) -> Result<String, String> {
        let db = format!("--db={}", self.db());
        let mut a = vec![db.as_str(), "--timeout=10"];
        a.extend_from_slice(args);
        self.run("ovs-vsctl", &a)
    }

    /// Adds bridge `name` on the userspace datapath (`datapath_type=netdev`).
    pub fn add_bridge(&self, name: &str) {
        self.vsctl(&[
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
        ]);
    }

    /// The ports of `bridge`.
    pub fn ports(&self, bridge: &str) -> Vec<String> {
        self.vsctl(&["list-ports", bridge])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Every port of every bridge.
    pub fn all_ports(&self) -> Vec<String> {
        let brs = self.vsctl(&["list-br"]);
        brs.lines().flat_map(|b| self.ports(b)).collect()
    }

    /// Column `col` of `table` row `row` (`ovs-vsctl get`), e.g. `("Interface", "vnet0",
    /// "external_ids:iface-id")`, unquoted.
    pub fn get(&self, table: &str, row: &str, col: &str) -> String {
        self.vsctl(&["get", table, row, col])
            .trim_matches('"')
            .to_string()
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        };
        c.args(args);
        for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            c.env(var, &self.dir);
        }
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let out = self
            .command(program, args)
            .output()
            .map_err(|e| format!("cannot run {program}: {e} (scripts/setup installs it)"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn run_ok(&self, program: &str, args: &[&str]) {
        if let Err(e) = self.run(program, args) {
            let logs = ["ovsdb-server.log", "ovs-vswitchd.log"]
                .map(|l| std::fs::read_to_string(self.dir.join(l)).unwrap_or_default());
            panic!("{program} {}: {e}\n{}", args.join(" "), logs.join("\n"));
        }
    }

    /// Stops `name` by its pidfile `DIR/NAME.pid` ([`stop_pidfile`]).
    fn stop(&self, name: &str) {
        stop_pidfile(&self.dir.join(format!("{name}.pid")));
    }
}

/// Stops the daemon whose pid is in `pidfile` (one an OVS or OVN tool detached with
/// `--pidfile`): SIGTERM, SIGKILL after 5 s, and waits until it is gone; nothing when there is
/// no pidfile (it never started). Also used by [`crate::ovn`].
pub(crate) fn stop_pidfile(pidfile: &Path) {
    let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let alive = || Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid);
    // SAFETY: kill(2) on a pid read from the daemon's own pidfile; no memory involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let t0 = Instant::now();
    while alive() {
        if t0.elapsed() > Duration::from_secs(5) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if t0.elapsed() > Duration::from_secs(10) {
            eprintln!("ovs: pid {pid} ({}) did not stop", pidfile.display());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

impl Drop for Ovs {
    fn drop(&mut self) {
        self.stop("ovs-vswitchd");
        self.stop("ovsdb-server");
    }
}
