//! `/metrics` end to end: real QEMU (TCG) guests in a private network namespace, one on a
//! bridge (tap counters), one on a switch network (switch port counters); virtnetd's
//! Prometheus text is scraped on the API socket and on `--metrics-listen`, parsed with a real
//! Prometheus parser (python3-prometheus-client's `text_string_to_metric_families`), and the
//! guest's NIC counters rise by at least the N pings the guest sends.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::e2e::{destroy_leaving_nothing, ready_console};
use common::TestDaemon;
use serde_json::Value;
use virtnet_testkit::{bridge_nic, ip, with_netns, TestDomain};

const PINGS: u64 = 10;

/// The exposition parsed by the Prometheus client library's parser: every sample as
/// `{"name", "labels", "value"}`. Fails the test if the text does not parse.
fn parse(text: &str) -> Vec<Value> {
    const PY: &str = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = []\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       out.append({'family': f.name, 'type': f.type, 'name': s.name, 'labels': s.labels, 'value': s.value})\n\
        print(json.dumps(out))\n";
    // Debian's python, where the package is (not a python3 earlier on PATH).
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup installs it with python3-prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused the text:\n{text}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The one sample named `name` whose labels include `labels`.
fn value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Value> = samples
        .iter()
        .filter(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0]["value"].as_f64().unwrap()
}

fn scrape(d: &TestDaemon) -> Vec<Value> {
    let (s, text) = common::http(&d.socket, "GET", "/metrics", &[], b"");
    assert_eq!(s, 200, "{text}");
    parse(&text)
}

/// A raw HTTP GET over TCP; the status line and body.
fn tcp_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to --metrics-listen");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[test]
fn nic_counters_rise_with_guest_pings() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        ip("link add br0 type bridge");
        ip("addr add 10.0.7.1/24 dev br0");
        ip("link set br0 up");
        let tmp = tempfile::tempdir().unwrap();
        let listen = "127.0.0.1:9860";
        let d = TestDaemon::start_with_args(tmp.path(), Some(&qemu), &["--metrics-listen", listen]);
        let serial = tmp.path().join("serial.sock");
        let mac = "52:54:00:00:07:02";
        let xml = TestDomain::new("metrics", &serial)
            .nic(&bridge_nic(mac, "br0"), mac, Some("10.0.7.2/24"))
            .xml(guest);
        assert_eq!(d.define(&xml).0, 201);

        // Before the start: one VM shut off, no NIC series, no start recorded.
        let before = scrape(&d);
        let doms = |s: &[Value], st| value(s, "virtnet_domains", &[("state", st)]);
        assert_eq!(doms(&before, "shut_off"), 1.0);
        assert_eq!(doms(&before, "running"), 0.0);
        assert!(!before
            .iter()
            .any(|s| s["family"] == "virtnet_nic_tx_packets"));
        let starts = |s: &[Value]| {
            value(
                s,
                "virtnet_operation_duration_seconds_count",
                &[("op", "start"), ("outcome", "ok")],
            )
        };
        assert_eq!(starts(&before), 0.0);

        let (s, v) = d.post("/v1/domains/metrics/start");
        assert_eq!(s, 200, "{v}\n{}", d.log());
        let rt = virtnet_testkit::runtime();
        let mut con = rt.block_on(ready_console(&serial));
        rt.block_on(con.wait_nic_up(mac, Duration::from_secs(120)))
            .unwrap();

        let nic = [
            ("domain", "metrics"),
            ("mac", mac),
            ("type", "bridge"),
            ("source", "br0"),
        ];
        let up = scrape(&d);
        assert_eq!(doms(&up, "running"), 1.0);
        assert_eq!(starts(&up), 1.0);
        let tx0 = value(&up, "virtnet_nic_tx_packets_total", &nic);
        let rx0 = value(&up, "virtnet_nic_rx_packets_total", &nic);
        let txb0 = value(&up, "virtnet_nic_tx_bytes_total", &nic);
        let alias = up
            .iter()
            .find(|s| s["name"] == "virtnet_nic_tx_packets_total")
            .map(|s| s["labels"]["alias"].clone());
        assert!(alias.is_some(), "an alias label");

        let (out, rc) = rt
            .block_on(con.run(
                &format!("ping -c {PINGS} -i 0.2 -W 5 10.0.7.1"),
                Duration::from_secs(60),
            ))
            .unwrap();
        assert_eq!(rc, 0, "the guest's pings: {out}");

        // Scraped on --metrics-listen this time: the same families.
        let (status, text) = tcp_get(listen, "/metrics");
        assert!(status.contains(" 200 "), "{status}");
        let after = parse(&text);
        let tx1 = value(&after, "virtnet_nic_tx_packets_total", &nic);
        let rx1 = value(&after, "virtnet_nic_rx_packets_total", &nic);
        let txb1 = value(&after, "virtnet_nic_tx_bytes_total", &nic);
        assert!(tx1 - tx0 >= PINGS as f64, "tx {tx0} → {tx1}");
        assert!(rx1 - rx0 >= PINGS as f64, "rx {rx0} → {rx1}");
        // An ICMP echo of 56 bytes of data is a 98-byte frame.
        assert!(
            txb1 - txb0 >= (PINGS * 98) as f64,
            "tx bytes {txb0} → {txb1}"
        );
        assert_eq!(value(&after, "virtnet_nic_tx_errors_total", &nic), 0.0);
        // Only /metrics is served on TCP.
        assert!(tcp_get(listen, "/v1/domains").0.contains(" 404 "));

        destroy_leaving_nothing(&d, "metrics");
        let down = scrape(&d);
        assert_eq!(doms(&down, "running"), 0.0);
        assert!(!down
            .iter()
            .any(|s| s["name"] == "virtnet_nic_tx_packets_total"));
    });
}

/// A NIC on a switch network: its counters come from the switch port (with the switch's drop
/// reasons), and the switch's health is reported.
#[test]
fn switch_port_counters_rise_with_guest_pings() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let vswitch = common::vswitch();
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        assert!(vswitch.is_file());
        let tmp = virtnet_testkit::traversable_tempdir();
        let d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let net = "<network><name>sw0</name><virtualport type='virtnet-vswitch'/>\
            <uplink dev='sw0-up'><ip address='10.21.0.1' prefix='24'/></uplink></network>";
        assert_eq!(
            d.call("POST", "/v1/networks", Some("application/xml"), net)
                .0,
            201
        );
        let (s, v) = d.post("/v1/networks/sw0/start");
        assert_eq!(s, 200, "{v}\n{}", d.log());

        let mac = "52:54:00:21:00:02";
        let nic = format!(
            "<interface type='network'><mac address='{mac}'/><source network='sw0'/>\
             <model type='virtio'/></interface>"
        );
        let serial = tmp.path().join("serial.sock");
        let mut dom = TestDomain::new("sw", &serial).nic(&nic, mac, Some("10.21.0.2/24"));
        dom.shared_memory = true;
        assert_eq!(d.define(&dom.xml(guest)).0, 201);
        let d = std::sync::Arc::new(d);
        let rt = virtnet_testkit::runtime();
        let mut con = rt.block_on(async {
            // The console is connected while the VM starts (QEMU drops output meanwhile).
            let d2 = d.clone();
            let started = tokio::task::spawn_blocking(move || common::e2e::start(&d2, "sw"));
            let con = virtnet_testkit::SerialConsole::connect(&serial, Duration::from_secs(30));
            let (con, started) = tokio::join!(con, started);
            started.unwrap();
            let mut con = con.unwrap();
            con.wait_ready(common::e2e::BOOT).await.unwrap();
            con.wait_nic_up(mac, common::e2e::CMD).await.unwrap();
            // The switch learns the guest; the first pings may go before the port is ready.
            let (out, rc) = con
                .run(
                    "i=0; while [ $i -lt 20 ]; do ping -c 1 -W 1 10.21.0.1 >/dev/null && break; \
                     i=$((i+1)); done",
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
            assert_eq!(rc, 0, "{out}");
            con
        });

        // Shown as libvirt shows it: type network, source the network.
        let labels = [
            ("domain", "sw"),
            ("mac", mac),
            ("type", "network"),
            ("source", "sw0"),
        ];
        let up = scrape(&d);
        assert_eq!(value(&up, "virtnet_switch_up", &[("network", "sw0")]), 1.0);
        assert_eq!(
            value(&up, "virtnet_switch_restarts_total", &[("network", "sw0")]),
            0.0
        );
        // Every drop reason of the VM's port is listed.
        let reasons = up
            .iter()
            .filter(|s| {
                s["name"] == "virtnet_switch_port_drops_total" && s["labels"]["domain"] == "sw"
            })
            .count();
        assert_eq!(
            reasons,
            virtnet_vswitch_control::DropReason::ALL.len(),
            "{up:?}"
        );
        let tx0 = value(&up, "virtnet_nic_tx_packets_total", &labels);
        let rx0 = value(&up, "virtnet_nic_rx_packets_total", &labels);
        assert!(tx0 >= 1.0, "the warm-up ping was counted");

        let (out, rc) = rt
            .block_on(con.run(
                &format!("ping -c {PINGS} -i 0.2 -W 5 10.21.0.1"),
                Duration::from_secs(60),
            ))
            .unwrap();
        assert_eq!(rc, 0, "the guest's pings: {out}");
        let after = scrape(&d);
        let tx1 = value(&after, "virtnet_nic_tx_packets_total", &labels);
        let rx1 = value(&after, "virtnet_nic_rx_packets_total", &labels);
        assert!(tx1 - tx0 >= PINGS as f64, "tx {tx0} → {tx1}");
        assert!(rx1 - rx0 >= PINGS as f64, "rx {rx0} → {rx1}");

        drop(con);
        destroy_leaving_nothing(&d, "sw");
        assert_eq!(d.post("/v1/networks/sw0/destroy").0, 200);
        let down = scrape(&d);
        assert!(!down.iter().any(|s| s["name"] == "virtnet_switch_up"));
    });
}
