//! Switch port policies end to end (real virtnetd, QEMU 7.2 under TCG, the test guest, the
//! real `virtnet-vswitch`, in a private network namespace), three guests on one switch
//! network with an uplink (10.50.0.1/24 on the host side), reused for every check:
//! - rate: `<bandwidth>` on pa's NIC, iperf3 pa → pb (outbound) and pb → pa (inbound), the
//!   rate measured on the host (pa's switch port byte counters over the host's clock: a TCG
//!   guest's clock can run fast) within ±10% of 1, 10 and 100 Mbit/s; the rate is changed
//!   between them by `update-device --live` (the switch's `set-policy`, whose policy the
//!   switch then reports);
//! - VLAN: pa and pb in VLAN 10 ping each other, pc in VLAN 20 reaches neither (nor the uplink,
//!   which carries the untagged network); pc as a trunk whose untagged native VLAN is 10 pings
//!   pa. Tagged trunk traffic needs 802.1Q in the guest, which the test guest does not load
//!   (8021q.ko is not in its initramfs): trunks are proven frame by frame in
//!   `vhost-net/tests/policy.rs`;
//! - isolation: pa and pb isolated cannot ping each other; each pings pc and the uplink host.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::e2e::{post_json, start, BOOT, CMD};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{runtime, with_netns, SerialConsole, TestDomain};

const NET_XML: &str = "<network><name>qos0</name><virtualport type='virtnet-vswitch'/>\
    <uplink dev='qos0-up'><ip address='10.50.0.1' prefix='24'/></uplink></network>";

const VMS: [(&str, &str, &str); 3] = [
    ("pa", "52:54:00:50:00:01", "10.50.0.11"),
    ("pb", "52:54:00:50:00:02", "10.50.0.12"),
    ("pc", "52:54:00:50:00:03", "10.50.0.13"),
];

/// VM `i`'s NIC with `extra` elements, in its network form (as dumpxml shows it live).
fn nic(i: usize, extra: &str) -> String {
    let (vm, mac, _) = VMS[i];
    let port = format!("{vm}-{}", mac.replace(':', ""));
    format!(
        "<interface type='network'><mac address='{mac}'/>\
         <source network='qos0' portid='{port}'/><model type='virtio'/>{extra}</interface>"
    )
}

/// `<bandwidth>` of `kib` KiB/s each way.
fn bandwidth(kib: u64) -> String {
    format!("<bandwidth><inbound average='{kib}'/><outbound average='{kib}'/></bandwidth>")
}

/// update-device --live of VM `i`'s NIC to `extra`.
fn update(d: &TestDaemon, i: usize, extra: &str) {
    let (s, v) = post_json(
        d,
        &format!("/v1/domains/{}/devices/update", VMS[i].0),
        &json!({ "xml": nic(i, extra), "live": true }),
    );
    assert_eq!(s, 200, "update {} to {extra}: {v}\n{}", VMS[i].0, d.log());
}

/// The switch's view of VM `i`'s port.
fn switch_port(control: &str, i: usize) -> Value {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(control).unwrap();
    s.write_all(b"{\"cmd\":\"list-ports\"}\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let prefix = format!("{}-", VMS[i].0);
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str().unwrap().starts_with(&prefix))
        .unwrap_or_else(|| panic!("no port {prefix}* in {v}"))
        .clone()
}

/// Whether `addr` answers a ping from the guest (`tries` attempts of one second).
async fn pings(con: &mut SerialConsole, addr: &str, tries: u32) -> bool {
    let cmd = format!(
        "i=0; ok=1; while [ $i -lt {tries} ]; do if ping -c 1 -W 1 {addr} >/dev/null; then \
         ok=0; break; fi; i=$((i+1)); done; [ $ok = 0 ]"
    );
    let (_, rc) = con.run(&cmd, CMD).await.unwrap();
    rc == 0
}

async fn assert_pings(con: &mut SerialConsole, from: &str, addr: &str) {
    assert!(pings(con, addr, 15).await, "{from} cannot ping {addr}");
}

async fn assert_no_ping(con: &mut SerialConsole, from: &str, addr: &str) {
    assert!(!pings(con, addr, 3).await, "{from} pings {addr}");
}

/// Runs iperf3 in the guest on `con` to the server at `to` and measures the rate on the host:
/// the bytes `counter` of pa's switch port (`rx_bytes`: from pa, `tx_bytes`: to pa) moved
/// over 4 s of the host's clock, after 2.5 s of warm-up. The guests' own clocks cannot be
/// trusted for that under TCG (a run whose guest clock went 4x fast measured 22% of every
/// rate with iperf3's own count); iperf3's last lines are returned to be shown.
async fn measure(con: &mut SerialConsole, control: &str, to: &str, counter: &str) -> (f64, String) {
    let (out, rc) = con
        .run(
            &format!("iperf3 -c {to} -t 120 -i 1 -f m > /tmp/ip.log 2>&1 & echo $! > /tmp/ip.pid"),
            CMD,
        )
        .await
        .unwrap();
    assert_eq!(rc, 0, "{out}");
    let bytes = || {
        switch_port(control, 0)["counters"][counter]
            .as_u64()
            .unwrap()
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (b0, t0) = (bytes(), Instant::now());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (b1, t1) = (bytes(), Instant::now());
    let (log, _) = con
        .run(
            "kill $(cat /tmp/ip.pid); sleep 1; tail -n 3 /tmp/ip.log",
            CMD,
        )
        .await
        .unwrap();
    let mbits = (b1 - b0) as f64 * 8.0 / (t1 - t0).as_secs_f64() / 1e6;
    (mbits, log)
}

#[test]
fn switch_port_rate_vlan_and_isolation_with_live_updates() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let vswitch = common::vswitch();
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        virtnet_testkit::ip("link set lo up");
        let tmp = virtnet_testkit::traversable_tempdir();
        assert!(vswitch.is_file());
        let d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let v = common::e2e::define_and_start_network(&d, NET_XML, "qos0");
        let control = v["control"].as_str().unwrap().to_string();

        // 1 Mbit/s = 125000 B/s = 122 KiB/s (the switch counts Ethernet frame bytes, as the
        // buckets do).
        let rates: [(u64, f64); 3] = [(122, 1.0), (1221, 10.0), (12207, 100.0)];
        let mut serials = Vec::new();
        for (i, (vm, mac, ip)) in VMS.iter().enumerate() {
            let serial = tmp.path().join(format!("{vm}.sock"));
            let extra = if i == 0 {
                bandwidth(rates[0].0)
            } else {
                String::new()
            };
            let mut dom = TestDomain::new(vm, &serial).nic(
                &format!(
                    "<interface type='network'><mac address='{mac}'/><source network='qos0'/>\
                     <model type='virtio'/>{extra}</interface>"
                ),
                mac,
                Some(&format!("{ip}/24")),
            );
            dom.shared_memory = true;
            let (s, v) = d.define(&dom.xml(guest));
            assert_eq!(s, 201, "{v}");
            serials.push(serial);
        }
        let d = Arc::new(d);

        runtime().block_on(async {
            let mut cons = Vec::new();
            for ((vm, _, _), serial) in VMS.iter().zip(&serials) {
                let d2 = d.clone();
                let vm = vm.to_string();
                let started = tokio::task::spawn_blocking(move || start(&d2, &vm));
                let con = SerialConsole::connect(serial, Duration::from_secs(30));
                let (con, started) = tokio::join!(con, started);
                started.unwrap();
                cons.push(con.unwrap());
            }
            for (c, (_, mac, _)) in cons.iter_mut().zip(VMS) {
                c.wait_ready(BOOT).await.unwrap();
                c.wait_nic_up(mac, CMD).await.unwrap();
            }
            assert_pings(&mut cons[0], "pa", VMS[1].2).await;
            assert_pings(&mut cons[2], "pc", VMS[0].2).await;

            // (a) Rate, each direction, changed live between the rates.
            for c in cons.iter_mut().take(2) {
                let (out, rc) = c.run("iperf3 -s -D", CMD).await.unwrap();
                assert_eq!(rc, 0, "iperf3 -s: {out}");
            }
            let mut measured = Vec::new();
            for (k, (kib, want)) in rates.iter().enumerate() {
                if k > 0 {
                    update(&d, 0, &bandwidth(*kib));
                }
                let (out, out_log) = measure(&mut cons[0], &control, VMS[1].2, "rx_bytes").await;
                let (inb, inb_log) = measure(&mut cons[1], &control, VMS[0].2, "tx_bytes").await;
                eprintln!("net_policy: iperf3 pa -> pb:\n{out_log}\niperf3 pb -> pa:\n{inb_log}");
                let drops = &switch_port(&control, 0)["counters"]["drops"];
                eprintln!(
                    "net_policy: {want} Mbit/s: outbound {out:.2}, inbound {inb:.2} (pa's port \
                     so far: rate_limited {}, rx_no_buffer {})",
                    drops["rate_limited"], drops["rx_no_buffer"]
                );
                measured.push((*want, out, inb));
            }
            let (_, xml) = d.get("/v1/domains/pa/xml");
            let xml = xml["xml"].as_str().unwrap_or_default().replace('"', "'");
            assert!(
                xml.contains("average='12207'"),
                "the live XML shows the new bandwidth: {xml}"
            );
            let p = &switch_port(&control, 0);
            assert_eq!(p["policy"]["inbound"]["average_kib"], 12207, "{p}");
            for (want, out, inb) in &measured {
                for (dir, got) in [("outbound", out), ("inbound", inb)] {
                    assert!(
                        (got - want).abs() <= want * 0.1,
                        "{dir} {got:.2} Mbit/s, configured {want} (all: {measured:?})"
                    );
                }
            }
            update(&d, 0, "");

            // (b) VLANs: pa, pb in 10, pc in 20.
            let tag = |id: u16| format!("<vlan><tag id='{id}'/></vlan>");
            update(&d, 0, &tag(10));
            update(&d, 1, &tag(10));
            update(&d, 2, &tag(20));
            assert_pings(&mut cons[0], "pa", VMS[1].2).await;
            assert_no_ping(&mut cons[0], "pa", VMS[2].2).await;
            assert_no_ping(&mut cons[2], "pc", VMS[1].2).await;
            assert_no_ping(&mut cons[2], "pc", "10.50.0.1").await;
            let p = &switch_port(&control, 2);
            assert_eq!(p["policy"]["vlan"]["tags"], json!([20]), "{p}");
            assert_eq!(p["counters"]["drops"]["vlan_not_allowed"], 0, "{p}");
            // pc a trunk of 10 and 20 whose native VLAN 10 travels untagged.
            update(
                &d,
                2,
                "<vlan trunk='yes'><tag id='10' nativeMode='untagged'/><tag id='20'/></vlan>",
            );
            assert_pings(&mut cons[2], "pc", VMS[0].2).await;

            // (c) Isolation: pa and pb isolated, pc not.
            let iso = "<port isolated='yes'/>";
            update(&d, 0, iso);
            update(&d, 1, iso);
            update(&d, 2, "");
            assert_no_ping(&mut cons[0], "pa", VMS[1].2).await;
            assert_pings(&mut cons[0], "pa", VMS[2].2).await;
            assert_pings(&mut cons[1], "pb", VMS[2].2).await;
            assert_pings(&mut cons[1], "pb", "10.50.0.1").await;
            assert_no_ping(&mut cons[1], "pb", VMS[0].2).await;
        });

        for (vm, _, _) in VMS {
            let (s, v) = d.post(&format!("/v1/domains/{vm}/destroy"));
            assert_eq!(s, 200, "{v}");
        }
        let (s, v) = d.post("/v1/networks/qos0/destroy");
        assert_eq!(s, 200, "{v}");
    });
}
