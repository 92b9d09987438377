//! OVN across two simulated hosts on one machine (testkit's [`MultiHost`]: OVN central and two
//! hosts with OVS on the userspace datapath and ovn-controller, each in its own namespace, a
//! veth underlay, Geneve between the hosts):
//!
//! - `tunnel_between_host_ports`: without VMs, an OVS internal port on each host bound to a
//!   logical switch port; host 1's pings host 2's through the Geneve tunnel; the Southbound
//!   database lists both chassis and both bindings; both hosts' tunnel port counters rise;
//!   after the drop nothing is left (processes, namespaces, directory).
//! - `guests_on_two_hosts_ping_over_geneve`: a TCG test guest on each host, started through
//!   that host's own virtnetd with `<virtualport type='openvswitch'>` bound to its logical
//!   port; guest 1 pings guest 2; both tunnel ports' counters rise; destroying the VMs removes
//!   their OVS ports.
//! - `a_failing_test_leaves_nothing`: a panic with the setup running leaves nothing of it.
//! - `the_multihost_script_shows_the_tunnel_and_cleans_up_on_sigterm`: `scripts/multihost`
//!   itself, up to its `--hold` and then SIGTERM: nothing left.

mod common;

use std::time::Duration;

use common::e2e::{destroy_leaving_nothing, start, BOOT, CMD};
use common::TestDaemon;
use virtnet_testkit::ovn::{self, MultiHost};
use virtnet_testkit::{require, runtime, with_netns, SerialConsole, TestDomain};

/// What a MultiHost made (its namespaces and directories), to check nothing of it is left.
struct Made {
    namespaces: Vec<String>,
    dirs: Vec<std::path::PathBuf>,
}

impl Made {
    fn of(mh: &MultiHost) -> Made {
        let mut namespaces = vec![mh.central().ns().name().to_string()];
        let mut dirs = vec![mh.central().dir().to_path_buf()];
        for h in mh.hosts() {
            namespaces.push(h.ns().name().to_string());
            dirs.push(h.dir().to_path_buf());
        }
        Made { namespaces, dirs }
    }

    /// Processes running from one of the directories, namespaces, directories still there.
    fn leftovers(&self) -> Vec<String> {
        leftovers(&self.namespaces, &self.dirs)
    }
}

/// Processes whose command line names one of `dirs`, namespaces of `namespaces` still
/// listed, and `dirs` still existing.
fn leftovers(namespaces: &[String], dirs: &[std::path::PathBuf]) -> Vec<String> {
    let mut left = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if dirs.iter().any(|d| cmd.contains(&*d.to_string_lossy())) {
            left.push(format!(
                "process {}: {cmd}",
                e.file_name().to_string_lossy()
            ));
        }
    }
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    for l in String::from_utf8_lossy(&netns.stdout).lines() {
        if namespaces
            .iter()
            .any(|n| l.split_whitespace().next() == Some(n.as_str()))
        {
            left.push(format!("namespace {l}"));
        }
    }
    for d in dirs {
        if d.exists() {
            left.push(format!("directory {}", d.display()));
        }
    }
    left
}

/// Waits until both hosts' tunnel ports (h1's towards h2 and h2's towards h1) have received
/// and sent at least `min` packets more than `before` (the Interface table is refreshed every
/// 5 s); returns the counters then.
fn wait_tunnel_counters_rise(
    mh: &MultiHost,
    before: &[(u64, u64); 2],
    min: u64,
) -> [(u64, u64); 2] {
    let now = || {
        [
            mh.host("h1").tunnel_packets("h2"),
            mh.host("h2").tunnel_packets("h1"),
        ]
    };
    let risen = |n: &[(u64, u64); 2]| {
        (0..2).all(|i| n[i].0 >= before[i].0 + min && n[i].1 >= before[i].1 + min)
    };
    let _ = ovn::wait_until("tunnel counters rising", Duration::from_secs(15), || {
        risen(&now())
    });
    let after = now();
    assert!(
        risen(&after),
        "tunnel port counters (rx, tx) did not rise by {min} on both hosts: before {before:?}, \
         after {after:?}\n{}",
        mh.host("h1").appctl(&["dpctl/show", "-s"])
    );
    eprintln!(
        "tunnel packets (rx, tx): h1 {:?} -> {:?}, h2 {:?} -> {:?}",
        before[0], after[0], before[1], after[1]
    );
    after
}

#[test]
fn tunnel_between_host_ports() {
    if !require(ovn::NEEDS) {
        return;
    }
    with_netns(|| {
        let mh = MultiHost::start(&["h1", "h2"]);
        let made = Made::of(&mh);
        for (h, ip, mac) in [
            ("h1", "10.100.0.11", "0a:00:00:00:00:11"),
            ("h2", "10.100.0.12", "0a:00:00:00:00:12"),
        ] {
            let lsp = format!("p-{h}");
            mh.add_port("ls0", &lsp, mac, ip);
            mh.host(h)
                .add_internal_port("lp", &lsp, mac, &format!("{ip}/24"));
        }
        mh.wait_bound("p-h1", "h1");
        mh.wait_bound("p-h2", "h2");
        let show = mh.central().sbctl(&["show"]);
        for want in [
            "Chassis h1",
            "Chassis h2",
            "Port_Binding p-h1",
            "Port_Binding p-h2",
        ] {
            assert!(show.contains(want), "ovn-sbctl show lacks {want}:\n{show}");
        }
        assert!(show.contains("geneve"), "{show}");

        let before = [
            mh.host("h1").tunnel_packets("h2"),
            mh.host("h2").tunnel_packets("h1"),
        ];
        let h1 = mh.host("h1").ns();
        let out = h1
            .run(
                "ping",
                &["-n", "-c", "5", "-i", "0.2", "-W", "2", "10.100.0.12"],
            )
            .unwrap_or_else(|e| panic!("h1 -> h2 over Geneve: {e}\n{}", mh.logs()));
        assert!(out.contains(" 0% packet loss"), "{out}");
        // A full-size frame fits too (the underlay's MTU leaves room for Geneve's headers).
        let out = h1
            .run(
                "ping",
                &[
                    "-n",
                    "-c",
                    "2",
                    "-W",
                    "2",
                    "-s",
                    "1472",
                    "-M",
                    "do",
                    "10.100.0.12",
                ],
            )
            .unwrap_or_else(|e| panic!("h1 -> h2, 1500-byte packets: {e}"));
        assert!(out.contains(" 0% packet loss"), "{out}");
        // The pings crossed the tunnel: h1's 7 requests left through its tunnel port and
        // entered h2's, the replies went back the same way.
        wait_tunnel_counters_rise(&mh, &before, 7);

        drop(mh);
        let left = made.leftovers();
        assert!(left.is_empty(), "left behind: {left:#?}");
    });
}

/// The two guests: host, VM name, MAC, address, logical port (= the NIC's `interfaceid`).
const GUESTS: [(&str, &str, &str, &str, &str); 2] = [
    (
        "h1",
        "vm1",
        "52:54:00:00:13:21",
        "10.100.0.21",
        "1b3bb2c5-43c1-4a35-9b0b-6d1a1e0c0021",
    ),
    (
        "h2",
        "vm2",
        "52:54:00:00:13:22",
        "10.100.0.22",
        "1b3bb2c5-43c1-4a35-9b0b-6d1a1e0c0022",
    ),
];

/// A NIC on the host's OVS integration bridge, bound to OVN logical port `iface_id`, as
/// OpenStack/libvirt write it.
fn ovs_nic(mac: &str, iface_id: &str) -> String {
    format!(
        "<interface type='bridge'><mac address='{mac}'/><source bridge='br-int'/>\
         <virtualport type='openvswitch'><parameters interfaceid='{iface_id}'/></virtualport>\
         <model type='virtio'/></interface>"
    )
}

/// The ports of br-int that are not ovn-controller's tunnel ports.
fn vm_ports(mh: &MultiHost, host: &str) -> Vec<String> {
    let h = mh.host(host);
    h.vsctl(&["list-ports", "br-int"])
        .lines()
        .filter(|p| !p.starts_with("ovn-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn guests_on_two_hosts_ping_over_geneve() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    if !require(ovn::NEEDS) {
        return;
    }
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let mh = MultiHost::start(&["h1", "h2"]);
        let made = Made::of(&mh);
        // One virtnetd per host, in the host's namespace, on the host's own OVSDB, with its
        // own state and run directories.
        let mut daemons = Vec::new();
        let mut consoles = Vec::new();
        let rt = runtime();
        for (host, vm, mac, ip, lsp) in GUESTS {
            mh.add_port("ls0", lsp, mac, ip);
            let base = virtnet_testkit::traversable_tempdir();
            let h = mh.host(host);
            let ovsdb = h.ovsdb();
            let d = TestDaemon::start_in(
                base.path(),
                Some(&qemu),
                &["--ovsdb", &ovsdb],
                Some(h.ns().name()),
            );
            let serial = base.path().join("serial.sock");
            let dom = TestDomain::new(vm, &serial).nic(
                &ovs_nic(mac, lsp),
                mac,
                Some(&format!("{ip}/24")),
            );
            let (s, v) = d.define(&dom.xml(guest));
            assert_eq!(s, 201, "define {vm} on {host}: {v}");
            start(&d, vm);
            // At once: QEMU drops what the guest prints while no client is connected.
            let con = rt
                .block_on(SerialConsole::connect(&serial, Duration::from_secs(10)))
                .unwrap();
            consoles.push(con);
            // virtnet put the VM's tap on br-int with the iface-id ovn-controller binds.
            let ports = vm_ports(&mh, host);
            assert_eq!(
                ports.len(),
                1,
                "{host}: br-int ports {ports:?}\n{}",
                d.log()
            );
            let tap = &ports[0];
            let ids = h.vsctl(&["get", "interface", tap, "external_ids"]);
            assert!(ids.contains(lsp) && ids.contains(mac), "{tap}: {ids}");
            mh.wait_bound(lsp, host);
            daemons.push((d, base));
        }

        let before = [
            mh.host("h1").tunnel_packets("h2"),
            mh.host("h2").tunnel_packets("h1"),
        ];
        let [c1, c2] = &mut consoles[..] else {
            unreachable!("one console per guest")
        };
        let replies = rt.block_on(async {
            c1.wait_nic_up(GUESTS[0].2, BOOT).await.unwrap();
            c2.wait_nic_up(GUESTS[1].2, BOOT).await.unwrap();
            c2.wait_ready(BOOT).await.unwrap();
            let (out, rc) = c1
                .run(&format!("ping -c 5 -W 2 {}", GUESTS[1].3), CMD)
                .await
                .unwrap();
            assert_eq!(rc, 0, "vm1 -> vm2 over Geneve:\n{out}\n{}", mh.logs());
            // busybox: "5 packets transmitted, 5 packets received, 0% packet loss"
            let replies: u64 = out
                .split(" packets received")
                .next()
                .and_then(|s| s.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no reply count in:\n{out}"));
            // Two TCG guests on a loaded 2-core machine may lose the odd probe; most must pass.
            assert!(replies >= 3, "vm1 -> vm2: {replies}/5 replies:\n{out}");
            replies
        });
        // Each request that got its reply crossed both tunnel ports, and so did the reply.
        wait_tunnel_counters_rise(&mh, &before, replies);

        // Destroying the VMs takes their taps off br-int; then nothing is left.
        for ((host, vm, ..), (d, ..)) in GUESTS.iter().zip(&daemons) {
            destroy_leaving_nothing(d, vm);
            assert_eq!(vm_ports(&mh, host), Vec::<String>::new(), "{host}");
        }
        let mut made = made;
        drop(consoles);
        for (mut d, base) in daemons {
            d.stop();
            // No QEMU or virtnetd of it may run on after its directory is gone.
            made.dirs.push(base.path().to_path_buf());
            drop(base);
        }
        drop(mh);
        let left = made.leftovers();
        assert!(left.is_empty(), "left behind: {left:#?}");
    });
}

/// A test that fails half-way (a panic while the setup runs) still leaves nothing: the
/// MultiHost's Drop runs during the unwinding.
#[test]
fn a_failing_test_leaves_nothing() {
    if !require(ovn::NEEDS) {
        return;
    }
    with_netns(|| {
        let made = std::sync::Mutex::new(None);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mh = MultiHost::start(&["h1", "h2"]);
            *made.lock().unwrap() = Some(Made::of(&mh));
            mh.add_port("ls0", "p-h1", "0a:00:00:00:00:11", "10.100.0.11");
            panic!("a test failing with the setup running");
        }));
        assert!(r.is_err());
        let made = made.into_inner().unwrap().expect("the setup started");
        let left = made.leftovers();
        assert!(left.is_empty(), "left behind: {left:#?}");
    });
}

/// `scripts/multihost --hold` (the demo): it builds the setup, shows both chassis and a ping
/// through the tunnel with 0% loss, and on SIGTERM (its trap) stops and removes everything it
/// made: no namespace `vnmh-PID-*`, no process from its directory, no directory.
#[test]
fn the_multihost_script_shows_the_tunnel_and_cleans_up_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    if !require(ovn::NEEDS) {
        return;
    }
    with_netns(|| {
        let script = virtnet_testkit::repo_root().join("scripts/multihost");
        let mut child = TermOnDrop(
            Command::new(&script)
                .arg("--hold")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("run scripts/multihost"),
        );
        let pid = child.0.id();
        let mut out = String::new();
        let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            out += &line;
            out.push('\n');
            // The last of the commands it prints once holding.
            if line.contains("tnl/neigh/show") {
                break;
            }
        }
        // The directory, from a command it prints: `--db=unix:DIR/central/sb.sock`.
        let dir = out
            .split("--db=unix:")
            .nth(1)
            .and_then(|s| s.split("/central/").next())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| panic!("scripts/multihost did not reach --hold:\n{out}"));
        for want in [
            "Chassis h1",
            "Chassis h2",
            "Port_Binding p-h1",
            " 0% packet loss",
        ] {
            assert!(out.contains(want), "no '{want}' in:\n{out}");
        }
        let namespaces: Vec<String> = ["ul", "central", "h1", "h2"]
            .iter()
            .map(|n| format!("vnmh-{pid}-{n}"))
            .collect();
        assert!(
            leftovers(&namespaces, std::slice::from_ref(&dir)).len() > 1,
            "the setup is running"
        );
        child.term();
        for line in lines {
            out += &line.unwrap();
            out.push('\n');
        }
        let status = child.0.wait().unwrap();
        assert_eq!(status.code(), Some(143), "{out}");
        let left = leftovers(&namespaces, &[dir]);
        assert!(left.is_empty(), "left behind: {left:#?}\n{out}");
    });
}

/// The script run by the test: SIGTERM (its trap tears everything down) and reaped when the
/// test ends, also when an assertion fails before the test sends it.
struct TermOnDrop(std::process::Child);

impl TermOnDrop {
    fn term(&self) {
        // SAFETY: kill(2) on our own child's pid (not reaped yet: no reuse).
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
    }
}

impl Drop for TermOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.term();
            let _ = self.0.wait();
        }
    }
}
