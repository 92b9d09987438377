//! Live migration across two OVN hosts (testkit's [`MultiHost`]: OVN central and hosts `h1`,
//! `h2`, each in its own namespace with its own OVS, ovn-controller and virtnetd, Geneve over a
//! veth underlay). Guest A on h1 and guest B on h2 are ports of one logical switch through
//! `<virtualport type='openvswitch'>` NICs; both virtnetds run with `--ovn-nb`, so a migration
//! moves A's logical switch port (`requested-chassis`, `activation-strategy=rarp`).
//!
//! - `a_guest_moves_between_ovn_hosts_while_pinged`: B pings A every 100 ms while A migrates
//!   h1 → h2 over TCP across the underlay; the lost probes are counted (and printed), A's
//!   uptime and console counter go on, nothing of A is left on h1 (QEMU, tap, OVS port), OVN
//!   binds A's port to h2 and its `requested-chassis` is h2 alone; then back to h1, driven by
//!   h2's virtnetd.
//! - `failed_migrations_between_ovn_hosts_leave_the_guest_on_h1`: a destination without an OVN
//!   chassis (refused before anything is done), the destination refusing (no such bridge), its QEMU killed mid-migration, a cancel (`domjobabort`) and a deadline: A
//!   runs on h1 as before and B still reaches it, the port's options are as before (none, or
//!   `requested-chassis=h1`), nothing of A on h2 and nothing new on h1.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::e2e::{alive, post_json, start, state, wait_until, BOOT, CMD};
use common::hosts::{
    kill_qemu_once_started, link_names, pid_of, start_ticks, tick_after, uptime,
    wait_until_streaming,
};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::ovn::{self, MultiHost};
use virtnet_testkit::{require, runtime, with_netns, SerialConsole, TestDomain};

const MAC_A: &str = "52:54:00:00:13:31";
const IP_A: &str = "10.100.0.31";
const LSP_A: &str = "1b3bb2c5-43c1-4a35-9b0b-6d1a1e0c0031";
const MAC_B: &str = "52:54:00:00:13:32";
const IP_B: &str = "10.100.0.32";
const LSP_B: &str = "1b3bb2c5-43c1-4a35-9b0b-6d1a1e0c0032";
/// Probes B sends to A, one per 100 ms.
const PROBES: u32 = 200;

/// The two hosts with their virtnetds (dropped before the MultiHost: fields drop in order).
struct Rig {
    d1: TestDaemon,
    d2: TestDaemon,
    base1: tempfile::TempDir,
    base2: tempfile::TempDir,
    mh: MultiHost,
    /// The runtime the consoles live on.
    rt: tokio::runtime::Runtime,
}

impl Rig {
    fn new(qemu: &std::path::Path) -> Rig {
        let mh = MultiHost::start(&["h1", "h2"]);
        mh.add_port("ls0", LSP_A, MAC_A, IP_A);
        mh.add_port("ls0", LSP_B, MAC_B, IP_B);
        let nb = mh.central().nb();
        let daemon = |host: &str, base: &tempfile::TempDir| {
            let h = mh.host(host);
            let ovsdb = h.ovsdb();
            TestDaemon::start_in(
                base.path(),
                Some(qemu),
                &["--ovsdb", &ovsdb, "--ovn-nb", &nb],
                Some(h.ns().name()),
            )
        };
        let base1 = virtnet_testkit::traversable_tempdir();
        let base2 = virtnet_testkit::traversable_tempdir();
        let d1 = daemon("h1", &base1);
        let d2 = daemon("h2", &base2);
        Rig {
            d1,
            d2,
            base1,
            base2,
            mh,
            rt: runtime(),
        }
    }

    /// A's console socket on `host`.
    fn serial_a(&self, host: &str) -> PathBuf {
        match host {
            "h1" => self.base1.path().join("a-serial.sock"),
            _ => self.base2.path().join("a-serial.sock"),
        }
    }

    /// Guest A's XML on `host` (its NIC on `bridge`).
    fn xml_a(&self, host: &str, bridge: &str) -> String {
        TestDomain::new("a", self.serial_a(host))
            .nic(
                &ovs_nic(MAC_A, LSP_A, bridge),
                MAC_A,
                Some(&format!("{IP_A}/24")),
            )
            .xml(virtnet_testkit::guest())
    }

    /// Starts A on h1 and B on h2; their consoles once both NICs are up and B reaches A.
    fn start_guests(&self) -> (SerialConsole, SerialConsole) {
        let rt = &self.rt;
        let serial_b = self.base2.path().join("b-serial.sock");
        let xml_b = TestDomain::new("b", &serial_b)
            .nic(
                &ovs_nic(MAC_B, LSP_B, "br-int"),
                MAC_B,
                Some(&format!("{IP_B}/24")),
            )
            .xml(virtnet_testkit::guest());
        assert_eq!(self.d1.define(&self.xml_a("h1", "br-int")).0, 201);
        assert_eq!(self.d2.define(&xml_b).0, 201);
        start(&self.d1, "a");
        let mut con_a = rt
            .block_on(SerialConsole::connect(
                self.serial_a("h1"),
                Duration::from_secs(10),
            ))
            .unwrap();
        start(&self.d2, "b");
        let mut con_b = rt
            .block_on(SerialConsole::connect(&serial_b, Duration::from_secs(10)))
            .unwrap();
        self.mh.wait_bound(LSP_A, "h1");
        self.mh.wait_bound(LSP_B, "h2");
        rt.block_on(async {
            con_a.wait_nic_up(MAC_A, BOOT).await.unwrap();
            con_b.wait_nic_up(MAC_B, BOOT).await.unwrap();
            con_a.wait_ready(BOOT).await.unwrap();
            con_b.wait_ready(BOOT).await.unwrap();
        });
        assert!(
            rt.block_on(b_reaches_a(&mut con_b)),
            "B does not reach A over Geneve\n{}",
            self.mh.logs()
        );
        (con_a, con_b)
    }

    /// `POST /v1/domains/a/migrate` on h1's virtnetd towards h2's, over TCP on the underlay.
    fn migrate(&self, extra: Value) -> (u16, Value) {
        let mut body = json!({
            "dest": self.d2.socket,
            "migrate_uri": format!("tcp:{}", self.mh.host("h2").underlay_ip()),
            "timeout_secs": 120,
            "dest_xml": self.xml_a("h2", "br-int"),
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        post_json(&self.d1, "/v1/domains/a/migrate", &body)
    }

    /// A logical switch port option (`None`: not set).
    fn lsp_option(&self, key: &str) -> Option<String> {
        let v = self.mh.central().nbctl(&[
            "--if-exists",
            "get",
            "Logical_Switch_Port",
            LSP_A,
            &format!("options:{key}"),
        ]);
        let v = v.trim().trim_matches('"').to_string();
        (!v.is_empty()).then_some(v)
    }

    /// The links of `host`'s namespace.
    fn links(&self, host: &str) -> Vec<String> {
        link_names(&self.mh.host(host).ns().ok("ip", &["-o", "link", "show"]))
    }

    /// What a host has that a VM leaves behind: its links, br-int's VM ports, and the QEMUs
    /// running in its namespace (pids).
    fn footprint(&self, host: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
        use std::os::unix::fs::MetadataExt;
        let ns = format!("/run/netns/{}", self.mh.host(host).ns().name());
        let ino = std::fs::metadata(&ns).map(|m| m.ino()).unwrap();
        let mut procs = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let in_ns = std::fs::metadata(e.path().join("ns/net")).is_ok_and(|m| m.ino() == ino);
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            if in_ns && comm.starts_with("qemu") {
                procs.push(format!(
                    "{} {}",
                    e.file_name().to_string_lossy(),
                    comm.trim()
                ));
            }
        }
        procs.sort();
        (self.links(host), vm_ports(&self.mh, host), procs)
    }
}

/// A NIC on OVS bridge `bridge` bound to OVN logical port `iface_id`.
fn ovs_nic(mac: &str, iface_id: &str, bridge: &str) -> String {
    format!(
        "<interface type='bridge'><mac address='{mac}'/><source bridge='{bridge}'/>\
         <virtualport type='openvswitch'><parameters interfaceid='{iface_id}'/></virtualport>\
         <model type='virtio'/></interface>"
    )
}

/// The ports of br-int that are not ovn-controller's tunnel ports.
fn vm_ports(mh: &MultiHost, host: &str) -> Vec<String> {
    let mut v: Vec<String> = mh
        .host(host)
        .vsctl(&["list-ports", "br-int"])
        .lines()
        .filter(|p| !p.starts_with("ovn-"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Whether B gets a reply from A (3 probes; busybox ping exits 0 on any reply).
async fn b_reaches_a(con_b: &mut SerialConsole) -> bool {
    let (_, rc) = con_b
        .run(&format!("ping -c 3 -W 2 {IP_A}"), CMD)
        .await
        .unwrap();
    rc == 0
}

/// busybox ping's output: (transmitted, received, the sequence numbers that got no reply).
fn probe_figures(out: &str) -> (u32, u32, Vec<u32>) {
    let nums = |tail: &str| -> Option<u32> {
        out.split(tail)
            .next()
            .and_then(|s| s.split_whitespace().last())
            .and_then(|n| n.parse().ok())
    };
    let tx = nums(" packets transmitted").unwrap_or_else(|| panic!("no summary in:\n{out}"));
    let rx = nums(" packets received").unwrap_or_else(|| panic!("no summary in:\n{out}"));
    let seen: std::collections::BTreeSet<u32> = out
        .lines()
        .filter_map(|l| l.split("seq=").nth(1))
        .filter_map(|s| s.split_whitespace().next()?.parse().ok())
        .collect();
    let missing = (0..tx).filter(|s| !seen.contains(s)).collect();
    (tx, rx, missing)
}

#[test]
fn a_guest_moves_between_ovn_hosts_while_pinged() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    if !require(ovn::NEEDS) {
        return;
    }
    with_netns(move || {
        let r = Rig::new(&qemu);
        let rt = &r.rt;
        let h1_before = r.links("h1");
        let (mut con_a, mut con_b) = r.start_guests();
        let pid_a = pid_of(&r.d1, "a");
        let ports_h1 = vm_ports(&r.mh, "h1");
        assert_eq!(ports_h1.len(), 1, "A's port on h1: {ports_h1:?}");
        assert_eq!(r.lsp_option("requested-chassis"), None);
        let (t0, u0) = rt.block_on(async {
            start_ticks(&mut con_a).await;
            let t0 = tick_after(&mut con_a, 1).await;
            (t0, uptime(&mut con_a, false).await)
        });

        // B pings A every 100 ms in the background, into a file; A moves meanwhile.
        rt.block_on(async {
            let (_, rc) = con_b
                .run(
                    &format!("ping -i 0.1 -c {PROBES} -W 2 {IP_A} >/tmp/probes 2>&1 &"),
                    CMD,
                )
                .await
                .unwrap();
            assert_eq!(rc, 0);
        });
        std::thread::sleep(Duration::from_secs(3));
        let started = Instant::now();
        let (s, m) = r.migrate(json!({}));
        let wall = started.elapsed();
        assert_eq!(
            s,
            200,
            "{m}\nh1:\n{}\nh2:\n{}\n{}",
            r.d1.log(),
            r.d2.log(),
            r.mh.logs()
        );
        assert_eq!(m["leftovers"], json!([]), "{m}");
        println!(
            "MIGRATION over OVN: wall_ms={} total_time_ms={} downtime_ms={} sent_mib={}",
            wall.as_millis(),
            m["total_time_ms"],
            m["downtime_ms"],
            m["transferred_bytes"].as_u64().unwrap_or(0) >> 20
        );
        println!("steps: {}", m["steps"]);
        let steps = m["steps"].to_string();
        assert!(
            steps.contains("requested-chassis=h1,h2 activation-strategy=rarp")
                && steps.contains("requested-chassis=h2; remove activation-strategy"),
            "{steps}"
        );

        // The probes: every one sent, at most a few lost around the switch-over.
        let out = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (out, _) = con_b.run("cat /tmp/probes", CMD).await.unwrap();
                if out.contains("packets transmitted") {
                    return out;
                }
                assert!(Instant::now() < deadline, "ping did not finish:\n{out}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let (tx, rx, missing) = probe_figures(&out);
        let lost = tx - rx;
        println!(
            "PROBES B -> A every 100 ms during the migration: {tx} sent, {rx} answered, {lost} \
             lost (sequence numbers {missing:?})"
        );
        assert_eq!(tx, PROBES, "{out}");
        // The target is 5. Measured on this shared 2-core machine: see the README;
        // the bound leaves room for a loaded run of two TCG guests and userspace OVS.
        assert!(lost <= 10, "{lost} probes lost:\n{out}");

        // A runs on h2: counting on, same uptime line.
        assert_eq!(state(&r.d2, "a"), "running");
        rt.block_on(async {
            let mut con = SerialConsole::connect(r.serial_a("h2"), Duration::from_secs(10))
                .await
                .unwrap();
            let t1 = tick_after(&mut con, t0).await;
            let u1 = uptime(&mut con, true).await;
            assert!(u1 > u0, "uptime went on: {u0} -> {u1}");
            println!("guest A: tick {t0} -> {t1}, uptime {u0} -> {u1}");
        });
        // Its tap is on h2's br-int with the same iface-id.
        let ports_h2 = vm_ports(&r.mh, "h2");
        assert_eq!(ports_h2.len(), 2, "A's and B's ports on h2: {ports_h2:?}");
        let ids = ports_h2
            .iter()
            .map(|p| {
                r.mh.host("h2")
                    .vsctl(&["get", "interface", p, "external_ids"])
            })
            .find(|ids| ids.contains(LSP_A))
            .unwrap_or_else(|| panic!("no port with A's iface-id on h2: {ports_h2:?}"));
        assert!(ids.contains(MAC_A), "{ids}");

        // OVN: bound to h2, requested there alone, no activation strategy left.
        r.mh.wait_bound(LSP_A, "h2");
        assert_eq!(r.lsp_option("requested-chassis").as_deref(), Some("h2"));
        assert_eq!(r.lsp_option("activation-strategy"), None);

        // Nothing of A on h1: QEMU gone, no tap, no OVS port.
        wait_until("h1's QEMU to exit", Duration::from_secs(15), || {
            !alive(pid_a)
        });
        assert_eq!(state(&r.d1, "a"), "shut_off");
        assert_eq!(vm_ports(&r.mh, "h1"), Vec::<String>::new(), "ports on h1");
        assert_eq!(r.links("h1"), h1_before, "links on h1");
        let (_, _, procs) = r.footprint("h1");
        assert!(procs.is_empty(), "QEMUs on h1: {procs:?}");
        // And B still reaches A, now on its own host.
        assert!(rt.block_on(b_reaches_a(&mut con_b)));

        // Back to h1, driven by h2's virtnetd (its own --ovn-nb): bound to h1 alone again,
        // nothing of A left on h2 but B.
        let (s, m) = post_json(
            &r.d2,
            "/v1/domains/a/migrate",
            &json!({
                "dest": r.d1.socket,
                "migrate_uri": format!("tcp:{}", r.mh.host("h1").underlay_ip()),
                "timeout_secs": 120,
                "dest_xml": r.xml_a("h1", "br-int"),
            }),
        );
        assert_eq!(s, 200, "{m}\nh2:\n{}\nh1:\n{}", r.d2.log(), r.d1.log());
        assert_eq!(state(&r.d1, "a"), "running");
        r.mh.wait_bound(LSP_A, "h1");
        assert_eq!(r.lsp_option("requested-chassis").as_deref(), Some("h1"));
        assert_eq!(r.lsp_option("activation-strategy"), None);
        wait_until("h2 to stop A", Duration::from_secs(15), || {
            state(&r.d2, "a") == "shut_off"
        });
        assert_eq!(vm_ports(&r.mh, "h2").len(), 1, "only B's port on h2");
        assert_eq!(vm_ports(&r.mh, "h1").len(), 1, "A's port on h1");
        assert!(
            rt.block_on(b_reaches_a(&mut con_b)),
            "B reaches A back on h1"
        );
        drop((con_a, con_b));
    });
}

#[test]
fn failed_migrations_between_ovn_hosts_leave_the_guest_on_h1() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    if !require(ovn::NEEDS) {
        return;
    }
    with_netns(move || {
        let r = Rig::new(&qemu);
        let rt = &r.rt;
        let (mut con_a, mut con_b) = r.start_guests();
        let pid = pid_of(&r.d1, "a");
        let h1 = r.footprint("h1");
        let h2 = r.footprint("h2");
        let check = |what: &str,
                     rc_before: Option<&str>,
                     con_a: &mut SerialConsole,
                     con_b: &mut SerialConsole| {
            // A runs on h1 as before: the same QEMU, running, answering B.
            assert_eq!(state(&r.d1, "a"), "running", "{what}");
            assert_eq!(pid_of(&r.d1, "a"), pid, "{what}: the same QEMU");
            let st = common::e2e::qmp(&r.d1, "a", "query-status", json!({})).unwrap();
            assert_eq!(st["status"], "running", "{what}: {st}");
            rt.block_on(async {
                let (out, rc) = con_a.run("echo still-here", CMD).await.unwrap();
                assert_eq!((out.as_str(), rc), ("still-here", 0), "{what}");
                assert!(b_reaches_a(con_b).await, "{what}: B does not reach A");
            });
            // OVN as before.
            assert_eq!(
                r.lsp_option("requested-chassis").as_deref(),
                rc_before,
                "{what}"
            );
            assert_eq!(r.lsp_option("activation-strategy"), None, "{what}");
            r.mh.wait_bound(LSP_A, "h1");
            // Nothing of A on h2, nothing new on h1.
            wait_until("h2 to forget A", Duration::from_secs(10), || {
                !r.d2.names().contains(&"a".to_string())
            });
            assert_eq!(
                r.footprint("h2"),
                h2,
                "{what}: on h2 (links, ports, processes)"
            );
            assert_eq!(
                r.footprint("h1"),
                h1,
                "{what}: on h1 (links, ports, processes)"
            );
        };

        // 0. A destination whose chassis is unknown (a virtnetd on h2 without an OVSDB):
        //    refused before anything is done.
        let base3 = virtnet_testkit::traversable_tempdir();
        let d3 = TestDaemon::start_in(
            base3.path(),
            Some(&qemu),
            &["--ovsdb", "unix:/nonexistent/db.sock"],
            Some(r.mh.host("h2").ns().name()),
        );
        let (s, v) = r.migrate(json!({ "dest": d3.socket }));
        assert_eq!(s, 409, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("the destination's Open vSwitch has no external_ids:system-id"),
            "{msg}"
        );
        println!("no chassis: {msg}");
        assert!(d3.names().is_empty());
        drop(d3);
        check("no destination chassis", None, &mut con_a, &mut con_b);

        // 1. The destination refuses: h2 has no bridge br-nope.
        let (s, v) = r.migrate(json!({ "dest_xml": r.xml_a("h2", "br-nope") }));
        assert_eq!(s, 409, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("br-nope"), "{msg}");
        assert!(msg.contains("undone, the VM runs on the source"), "{msg}");
        println!("refused: {msg}");
        check("refused", None, &mut con_a, &mut con_b);

        // 2. h2's QEMU killed mid-migration (at 2 MiB/s, so there is time).
        let killer = kill_qemu_once_started(r.d2.socket.clone(), "a");
        let (s, v) = r.migrate(json!({ "bandwidth_mib": 2 }));
        let killed = killer.join().unwrap();
        assert!(s >= 400, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("undone, the VM runs on the source"), "{msg}");
        println!("QEMU {killed} on h2 killed: {msg}");
        check("destination QEMU killed", None, &mut con_a, &mut con_b);

        // 3. Cancelled on request (domjobabort), with requested-chassis=h1 set before: it is
        //    put back as it was.
        r.mh.central().nbctl(&[
            "set",
            "Logical_Switch_Port",
            LSP_A,
            "options:requested-chassis=h1",
        ]);
        let sock1 = r.d1.socket.clone();
        let nb = r.mh.central().nb();
        let canceller = std::thread::spawn(move || {
            wait_until_streaming(&sock1, "a");
            // While it runs, the port may be bound on both chassis.
            let during = std::process::Command::new("ovn-nbctl")
                .arg(format!("--db={nb}"))
                .args(["get", "Logical_Switch_Port", LSP_A, "options"])
                .output()
                .unwrap();
            let (s, v) = common::http(&sock1, "POST", "/v1/domains/a/migrate/cancel", &[], b"");
            assert_eq!(s, 200, "{v}");
            String::from_utf8_lossy(&during.stdout).into_owned()
        });
        let (s, v) = r.migrate(json!({ "bandwidth_mib": 2 }));
        let during = canceller.join().unwrap();
        assert!(
            during.contains("activation-strategy=rarp")
                && during.contains("requested-chassis=\"h1,h2\""),
            "options during the migration: {during}"
        );
        assert_eq!(s, 409, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("cancelled on request"), "{msg}");
        check("cancelled", Some("h1"), &mut con_a, &mut con_b);

        // 4. Its deadline passes (1 s at 2 MiB/s).
        let (s, v) = r.migrate(json!({ "bandwidth_mib": 2, "timeout_secs": 1 }));
        assert_eq!(s, 500, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("did not complete within 1000 ms"), "{msg}");
        check("deadline", Some("h1"), &mut con_a, &mut con_b);
        drop((con_a, con_b));
    });
}
