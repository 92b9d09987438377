//! OVN across several "hosts" on one machine, for end-to-end tests (`scripts/multihost` is
//! the same setup as a demo script).
//!
//! [`MultiHost::start`] (called inside [`crate::with_netns`]: the test's own namespace is the
//! underlay) makes:
//! - in the test's namespace, the underlay: a Linux bridge `ul0` with one veth to each of the
//!   namespaces below (`10.99.0.0/24`);
//! - [`Central`] in its namespace (`10.99.0.1`): OVN's Northbound and Southbound ovsdb-servers
//!   (the Southbound one also on `tcp:10.99.0.1:6642`) and ovn-northd;
//! - one [`OvnHost`] per name, each in its namespace (`10.99.0.11`, `.12`, ...): ovsdb-server,
//!   ovs-vswitchd on the userspace datapath (this kernel has no openvswitch module), and
//!   ovn-controller registered as a chassis of that name with Geneve encapsulation;
//!
//! and returns once every chassis is in the Southbound database and every host has its Geneve
//! tunnel port to every other. Logical switches and ports are then made with
//! [`MultiHost::add_port`]; a port is bound to the host where an OVS interface carries its name
//! in `external_ids:iface-id` (an internal port: [`OvnHost::add_internal_port`]; a VM's tap:
//! virtnet's `<virtualport type='openvswitch'>`).
//!
//! Dropping the [`MultiHost`] (also when the test panics) stops every daemon by its pidfile,
//! deletes the namespaces (with their veths) and the underlay bridge, and removes the
//! directory.
//!
//! One more thing the userspace datapath needs, besides what [`host`] describes: TX checksum
//! offload off on central's veth (`ethtool -K eth0 tx off`). The kernel leaves a locally sent
//! TCP segment's checksum to the "hardware", a veth never fills it in, and OVS 3.1's userspace
//! datapath forwards the frame it read over AF_PACKET as is to `br-phys`, where the host's
//! kernel drops it: ovn-controller's TCP connection to the Southbound database would never
//! complete (ping works, TCP does not).

mod central;
mod host;
mod named_ns;

use std::path::Path;
use std::time::{Duration, Instant};

pub use central::Central;
pub use host::OvnHost;
pub use named_ns::NamedNetns;

/// The underlay subnet's first three octets (central is `.1`, hosts `.11`, `.12`, ...).
const UNDERLAY: &str = "10.99.0";

/// The underlay's MTU: a 1500-byte overlay frame plus Geneve's 58 bytes (outer Ethernet, IP,
/// UDP, Geneve with OVN's option) must fit, so the guests keep the usual 1500. Set on the veths;
/// OVS gives `br-phys` (an internal port) the smallest MTU of its bridge's other ports.
pub const UNDERLAY_MTU: u32 = 1600;

/// A running multi-host OVN setup (see the module doc).
pub struct MultiHost {
    // Dropped in this order: the hosts (their daemons, then their namespaces), central, the
    // underlay bridge (Drop), the directory.
    hosts: Vec<OvnHost>,
    central: Central,
    dir: tempfile::TempDir,
}

impl MultiHost {
    /// Starts central and one host per name (chassis names, e.g. `["h1", "h2"]`) and waits
    /// until they are connected. Must run inside [`crate::with_netns`] (panics in the
    /// machine's own namespace). Needs root and Open vSwitch and OVN ([`NEEDS`]).
    pub fn start(names: &[&str]) -> MultiHost {
        assert!(
            !in_initial_netns(),
            "MultiHost::start builds its underlay in the calling thread's namespace: call it \
             inside testkit::with_netns"
        );
        let dir = crate::traversable_tempdir();
        crate::ip("link add ul0 type bridge");
        crate::ip("link set ul0 up");
        // A panic below drops what exists so far (the daemons started, the namespaces).
        let central_ns = NamedNetns::add("central");
        plug(&central_ns, "ul-c");
        let central_ip = format!("{UNDERLAY}.1");
        central_ns.ok(
            "ip",
            &["addr", "add", &format!("{central_ip}/24"), "dev", "eth0"],
        );
        central_ns.ok("ethtool", &["-K", "eth0", "tx", "off"]);
        let central = Central::start(central_ns, &dir.path().join("central"), &central_ip);
        let mut mh = MultiHost {
            hosts: Vec::new(),
            central,
            dir,
        };
        for (i, name) in names.iter().enumerate() {
            let ns = NamedNetns::add(name);
            plug(&ns, &format!("ul-{name}"));
            let cidr = format!("{UNDERLAY}.{}/24", 11 + i);
            let host_dir = mh.dir.path().join(name);
            let host = OvnHost::start(name, ns, &host_dir, &cidr, &mh.central.sb_remote());
            mh.hosts.push(host);
        }
        mh.wait_connected();
        mh
    }

    /// Central (its databases, `ovn-nbctl`, `ovn-sbctl`).
    pub fn central(&self) -> &Central {
        &self.central
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> &OvnHost {
        self.hosts
            .iter()
            .find(|h| h.name() == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// All hosts, in the order given to [`MultiHost::start`].
    pub fn hosts(&self) -> &[OvnHost] {
        &self.hosts
    }

    /// Adds logical port `lsp` with `mac` and `ip` to logical switch `switch` (made when
    /// missing).
    pub fn add_port(&self, switch: &str, lsp: &str, mac: &str, ip: &str) {
        let addresses = format!("{mac} {ip}");
        self.central.nbctl(&[
            "--may-exist",
            "ls-add",
            switch,
            "--",
            "lsp-add",
            switch,
            lsp,
            "--",
            "lsp-set-addresses",
            lsp,
            &addresses,
        ]);
    }

    /// The chassis logical port `lsp` is bound to, if any.
    pub fn binding(&self, lsp: &str) -> Option<String> {
        let arg = format!("logical_port={lsp}");
        let chassis =
            self.central
                .sbctl(&["--bare", "--columns=chassis", "find", "port_binding", &arg]);
        if chassis.is_empty() {
            return None;
        }
        let name = self
            .central
            .sbctl(&["--bare", "--columns=name", "list", "chassis", &chassis]);
        Some(name)
    }

    /// Waits (up to 30 s) until logical port `lsp` is bound to chassis `host`.
    pub fn wait_bound(&self, lsp: &str, host: &str) {
        wait_until(
            &format!("{lsp} bound to {host}"),
            Duration::from_secs(30),
            || self.binding(lsp).as_deref() == Some(host),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.central.sbctl(&["show"])));
    }

    /// Waits until every chassis is registered and every host has a tunnel port to every
    /// other; fills each host's tunnel neighbour cache (ARP for the other endpoints) so the
    /// first tunnelled packet is not dropped while OVS resolves the remote MAC.
    fn wait_connected(&self) {
        let n = self.hosts.len();
        wait_until(
            "every chassis in the Southbound database",
            Duration::from_secs(30),
            || {
                let names = self
                    .central
                    .sbctl(&["--bare", "--columns=name", "list", "chassis"]);
                names.lines().filter(|l| !l.is_empty()).count() == n
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        for h in &self.hosts {
            for o in self.hosts.iter().filter(|o| o.name() != h.name()) {
                let _ = h.ns().run("ping", &["-c", "1", "-W", "2", o.underlay_ip()]);
                wait_until(
                    &format!("{}'s tunnel port to {}", h.name(), o.name()),
                    Duration::from_secs(30),
                    || h.tunnel_port(o.name()).is_some(),
                )
                .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
            }
        }
    }

    /// The tails of every daemon's log (for failure messages).
    pub fn logs(&self) -> String {
        logs(self.dir.path())
    }
}

impl Drop for MultiHost {
    fn drop(&mut self) {
        // The hosts and central stop their daemons and delete their namespaces as the fields
        // drop; the veths go with the namespaces. The bridge is ours to remove.
        self.hosts.clear();
        let _ = crate::ip_status("link del ul0");
    }
}

/// What a test using [`MultiHost`] needs: root, Open vSwitch, OVN, ethtool
/// (`crate::require(ovn::NEEDS)`).
pub const NEEDS: &[crate::Need] = &[
    crate::Need::Root,
    crate::Need::Binary("ovsdb-server"),
    crate::Need::Binary("ovs-vswitchd"),
    crate::Need::Binary("ovn-northd"),
    crate::Need::Binary("ovn-controller"),
    crate::Need::Binary("ethtool"),
];

/// A veth from the underlay bridge (`ul0`, in the calling thread's namespace) to `ns`, where
/// it is called `eth0` and is up.
fn plug(ns: &NamedNetns, outer: &str) {
    crate::ip(&format!(
        "link add {outer} type veth peer name eth0 netns {}",
        ns.name()
    ));
    crate::ip(&format!(
        "link set {outer} mtu {UNDERLAY_MTU} master ul0 up"
    ));
    ns.ok(
        "ip",
        &[
            "link",
            "set",
            "eth0",
            "mtu",
            &UNDERLAY_MTU.to_string(),
            "up",
        ],
    );
}

/// Polls `f` every 100 ms until it holds or `timeout` passes.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> bool,
) -> Result<(), String> {
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether the calling thread is in the machine's own network namespace (pid 1's).
fn in_initial_netns() -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(p).map(|m| m.ino()).ok();
    ino("/proc/thread-self/ns/net") == ino("/proc/1/ns/net")
}

/// The last lines of every `*.log` under `dir` (one level of subdirectories).
fn logs(dir: &Path) -> String {
    let mut out = String::new();
    let mut files: Vec<_> = walk(dir);
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "log"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out += &format!("-- {}\n", f.display());
        for l in &lines[lines.len().saturating_sub(10)..] {
            out += &format!("   | {l}\n");
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
