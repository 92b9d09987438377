//! A NIC the guest removes without a detach (found by the soak test: a guest-side eject left
//! QEMU's netdev, the tap and the live status behind): QEMU reports `DEVICE_DELETED` for a
//! device nobody asked virtnetd to remove; virtnetd finishes the removal as libvirt's
//! `processDeviceDeletedEvent` does: back end, tap and live definition, nothing left.
//! Real daemon, real QEMU (TCG), the test guest, a private network namespace.

mod common;

use std::time::Duration;

use common::e2e::{
    destroy_leaving_nothing, net_info, post_json, qmp, ready_console, start, wait_until, CMD,
};
use common::TestDaemon;
use serde_json::json;
use virtnet_testkit::{add_bridge, bridge_nic, links, runtime, with_netns, TestDomain};

#[test]
fn a_nic_the_guest_removes_on_its_own_leaves_nothing() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        add_bridge("br0", Some("10.0.14.1/24"));
        let tmp = tempfile::tempdir().unwrap();
        let mut d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let serial = tmp.path().join("serial.sock");
        let mac = "52:54:00:00:14:02";
        let xml = TestDomain::new("gr", &serial)
            .ip(mac, "10.0.14.2/24")
            .xml(guest);
        assert_eq!(d.define(&xml).0, 201);
        start(&d, "gr");
        runtime().block_on(async {
            let mut con = ready_console(&serial).await;
            let links_before = links();
            let (s, v) = post_json(
                &d,
                "/v1/domains/gr/devices",
                &json!({ "xml": bridge_nic(mac, "br0"), "live": true }),
            );
            assert_eq!(s, 200, "{v}\n{}", d.log());
            let tap = v["interface"]["interface"].as_str().unwrap().to_string();
            let alias = v["interface"]["alias"].as_str().unwrap().to_string();
            con.wait_nic_up(mac, CMD).await.unwrap();
            assert!(links().contains(&tap));

            // Removed behind virtnetd's back: QEMU asks the guest, the guest ejects it.
            qmp(&d, "gr", "device_del", json!({ "id": alias })).unwrap();
            wait_until(
                "virtnetd to finish the removal",
                Duration::from_secs(30),
                || {
                    let (_, v) = d.get("/v1/domains/gr/interfaces");
                    !v["interfaces"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["mac"] == mac)
                },
            );
            let net = net_info(&d, "gr");
            assert!(!net.contains(&format!("host{alias}")), "netdev left: {net}");
            assert_eq!(links(), links_before, "the tap {tap} is gone");
            let (_, x) = d.get("/v1/domains/gr/xml");
            let live = x["xml"].as_str().unwrap();
            assert!(
                !live.contains(&format!("<mac address='{mac}'/>")),
                "live XML keeps it: {live}"
            );
            let status = std::fs::read_to_string(tmp.path().join("run/gr.json")).unwrap();
            assert!(
                !status.contains(&tap),
                "the live status keeps the tap: {status}"
            );
            // The MAC is free again: the same NIC plugs again.
            let (s, v) = post_json(
                &d,
                "/v1/domains/gr/devices",
                &json!({ "xml": bridge_nic(mac, "br0"), "live": true }),
            );
            assert_eq!(s, 200, "{v}");
            let tap = v["interface"]["interface"].as_str().unwrap().to_string();
            let alias = v["interface"]["alias"].as_str().unwrap().to_string();
            con.wait_nic_up(mac, CMD).await.unwrap();

            // The guest ejects it while virtnetd is down (found by the 30-minute soak: a
            // restart at that moment left the netdev, the tap and the live status behind):
            // QEMU's monitor is free then, and the restarted virtnetd finishes the removal.
            let (_, info) = d.get("/v1/domains/gr");
            let monitor = info["qmp_socket"].as_str().unwrap().to_string();
            d.kill9();
            qmp_direct(&monitor, json!({"execute": "device_del", "arguments": {"id": alias}}));
            wait_until("the guest to eject the NIC", Duration::from_secs(30), || {
                let list = qmp_direct(
                    &monitor,
                    json!({"execute": "qom-list", "arguments": {"path": "/machine/peripheral"}}),
                );
                !list.as_array().unwrap().iter().any(|c| c["name"] == alias)
            });
            d.restart();
            wait_until(
                "the restarted virtnetd to finish the removal",
                Duration::from_secs(30),
                || {
                    let (_, v) = d.get("/v1/domains/gr/interfaces");
                    v["interfaces"]
                        .as_array()
                        .is_some_and(|rows| !rows.iter().any(|r| r["mac"] == mac))
                },
            );
            let net = net_info(&d, "gr");
            assert!(!net.contains(&format!("host{alias}")), "netdev left: {net}");
            assert!(!links().contains(&tap), "the tap {tap} is gone");
        });
        destroy_leaving_nothing(&d, "gr");
        d.stop();
    });
}

/// One QMP command on QEMU's monitor socket while virtnetd is not connected to it: its
/// `return`.
fn qmp_direct(socket: &str, command: serde_json::Value) -> serde_json::Value {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::os::unix::net::UnixStream::connect(socket).expect("QEMU's monitor");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut lines = BufReader::new(stream.try_clone().unwrap()).lines();
    let mut w = stream;
    lines.next().expect("greeting").unwrap();
    let mut ret = serde_json::Value::Null;
    for c in [json!({"execute": "qmp_capabilities"}), command] {
        writeln!(w, "{c}").unwrap();
        loop {
            let l = lines.next().expect("reply").unwrap();
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if v.get("event").is_some() {
                continue;
            }
            ret = v
                .get("return")
                .cloned()
                .unwrap_or_else(|| panic!("{c}: {v}"));
            break;
        }
    }
    ret
}
