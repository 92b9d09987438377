//! Multi-queue NICs on a switch network end to end (real virtnetd, QEMU 7.2 under TCG, the
//! test guest, the real `virtnet-vswitch`, in a private network namespace): a NIC with
//! `<driver queues='2'/>` at start and one with `queues='3'` hot-plugged get switch ports with
//! that many queue pairs, QEMU's netdev and device carry the queues (`mq`, and `vectors=0`
//! under TCG), and the guest's virtio-net driver sees a multi-queue device (VIRTIO_NET_F_MQ).
//!
//! With more than one queue pair QEMU 7.2 gives each pair its own vhost-user device on the
//! one socket, and the second sends VHOST_USER_ADD_MEM_REG for the regions the first mapped
//! already; the switch's relay answers those repeats itself (vhost-net/src/shim.rs), so the
//! port connects with multi-queue negotiated. Without that the switch dropped the connection
//! and QEMU fell back to userspace virtio with no traffic; the test checks the connection.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::e2e::{post_json, start, BOOT, CMD};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{runtime, with_netns, SerialConsole, TestDomain};

/// VIRTIO_NET_F_MQ.
const MQ_BIT: usize = 22;

fn nic(mac: &str, queues: u32) -> String {
    format!(
        "<interface type='network'><mac address='{mac}'/><source network='mq0'/>\
         <model type='virtio'/><driver queues='{queues}'/></interface>"
    )
}

/// The switch's port whose name starts with `prefix` (its own view, control socket).
fn switch_port(control: &str, prefix: &str) -> Value {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(control).unwrap();
    s.write_all(b"{\"cmd\":\"list-ports\"}\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no port {prefix}* in {v}"))
        .clone()
}

/// QEMU's command line (`-netdev`/`-device` JSON arguments), as one string per argument.
fn qemu_args(pid: u64) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Whether the guest's virtio-net driver for `ifname` acknowledged VIRTIO_NET_F_MQ.
async fn guest_has_mq(con: &mut SerialConsole, ifname: &str) -> String {
    let (out, rc) = con
        .run(&format!("cat /sys/class/net/{ifname}/device/features"), CMD)
        .await
        .unwrap();
    assert_eq!(rc, 0, "{out}");
    out.lines()
        .map(str::trim)
        .find(|l| l.len() > MQ_BIT && l.chars().all(|c| c == '0' || c == '1'))
        .unwrap_or_else(|| panic!("no feature bits in {out:?}"))
        .to_string()
}

#[test]
fn multiqueue_network_nics_at_start_and_hotplug() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let vswitch = common::vswitch();
    let guest = virtnet_testkit::guest();
    // Not root: with_netns prints why and skips.
    let _ = with_netns(move || {
        virtnet_testkit::ip("link set lo up");
        let tmp = tempfile::tempdir().unwrap();
        assert!(vswitch.is_file());
        let d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let (s, v) = d.call(
            "POST",
            "/v1/networks",
            Some("application/xml"),
            "<network><name>mq0</name><virtualport type='virtnet-vswitch'/></network>",
        );
        assert_eq!(s, 201, "{v}");
        let (s, v) = d.post("/v1/networks/mq0/start");
        assert_eq!(s, 200, "{v}\n{}", d.log());
        let control = v["control"].as_str().unwrap().to_string();

        let (mac1, mac2) = ("52:54:00:40:00:01", "52:54:00:40:00:02");
        let serial = tmp.path().join("mq.sock");
        let mut dom =
            TestDomain::new("mq", &serial).nic(&nic(mac1, 2), mac1, Some("10.40.0.11/24"));
        dom.shared_memory = true;
        dom = dom.ip(mac2, "10.40.0.12/24");
        let (s, v) = d.define(&dom.xml(guest));
        assert_eq!(s, 201, "{v}");
        let tmp_run = tmp.path().join("run");
        let d = Arc::new(d);

        runtime().block_on(async {
            let d2 = d.clone();
            let started = tokio::task::spawn_blocking(move || start(&d2, "mq"));
            let con = SerialConsole::connect(&serial, Duration::from_secs(30));
            let (con, pid) = tokio::join!(con, started);
            let mut con = con.unwrap();
            let pid = pid.unwrap();

            // The switch port has 2 queue pairs; QEMU's netdev and device carry them.
            let port = switch_port(&control, "mq-525400400001");
            assert_eq!(port["queues"], 2, "{port}");
            let args = qemu_args(pid);
            assert!(
                args.iter()
                    .any(|a| a.contains("\"type\":\"vhost-user\"") && a.contains("\"queues\":2")),
                "{args:?}"
            );
            assert!(
                args.iter()
                    .any(|a| a.contains("\"mac\":\"52:54:00:40:00:01\"")
                        && a.contains("\"mq\":true")
                        && a.contains("\"vectors\":0")),
                "{args:?}"
            );

            con.wait_ready(BOOT).await.unwrap();
            let up = con.wait_nic_up(mac1, CMD).await.unwrap();
            let ifname = up.split_whitespace().nth(3).unwrap().to_string();
            let bits = guest_has_mq(&mut con, &ifname).await;
            assert_eq!(&bits[MQ_BIT..=MQ_BIT], "1", "guest features {bits}");
            let port = switch_port(&control, "mq-525400400001");
            let logs = || {
                let run = tmp_run.clone();
                let mut out = String::new();
                let out_ = std::process::Command::new("find")
                    .arg(&run)
                    .args(["-name", "*.log"])
                    .output()
                    .unwrap();
                for f in String::from_utf8_lossy(&out_.stdout).lines() {
                    out += &format!(
                        "--- {f}\n{}\n",
                        std::fs::read_to_string(f).unwrap_or_default()
                    );
                }
                out
            };
            {
                assert_eq!(port["connected"], true, "{port}\n{}", logs());
                let acked = u64::from_str_radix(
                    port["features"].as_str().unwrap().trim_start_matches("0x"),
                    16,
                )
                .unwrap();
                assert_ne!(acked & (1 << MQ_BIT), 0, "switch saw features {port}");
                assert!(port["ready_queues"].as_u64().unwrap() >= 1, "{port}");
            }

            // Hot-plug: a NIC with 3 queue pairs.
            let (s, v) = post_json(
                &d,
                "/v1/domains/mq/devices",
                &json!({ "xml": nic(mac2, 3), "live": true }),
            );
            assert_eq!(s, 200, "{v}\n{}", d.log());
            let port = switch_port(&control, "mq-525400400002");
            assert_eq!(port["queues"], 3, "{port}");
            let up = con.wait_nic_up(mac2, CMD).await.unwrap();
            let ifname = up.split_whitespace().nth(3).unwrap().to_string();
            let bits = guest_has_mq(&mut con, &ifname).await;
            assert_eq!(&bits[MQ_BIT..=MQ_BIT], "1", "guest features {bits}");
            let port = switch_port(&control, "mq-525400400002");
            assert_eq!(port["connected"], true, "{port}\n{}", logs());
            let (s, v) = d.get("/v1/networks/mq0");
            assert_eq!(s, 200);
            let mut queues: Vec<u64> = v["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["queues"].as_u64().unwrap())
                .collect();
            queues.sort();
            assert_eq!(queues, [2, 3], "{v}");
        });

        let (s, v) = d.post("/v1/domains/mq/destroy");
        assert_eq!(s, 200, "{v}");
        let (s, v) = d.post("/v1/networks/mq0/destroy");
        assert_eq!(s, 200, "{v}");
        drop(d);
    });
}
