//! Open vSwitch ports end to end (issue 13 part 1): a real virtnetd (`--ovsdb` naming a
//! private OVS in the test's network namespace: ovsdb-server + ovs-vswitchd on the userspace
//! datapath, `virtnet_testkit::ovs`), QEMU 7.2 under TCG, the test guest.
//!
//! - A guest with `<interface type='bridge'><source bridge='br-int'/><virtualport
//!   type='openvswitch'>` and `<vlan><tag id='42'/>`: its tap is a port of br-int with
//!   libvirt's external_ids (the interfaceid given; vm-id the domain's UUID), tag 42; the host
//!   pings it from an OVS internal port in VLAN 42 (so the tag is applied both ways).
//! - A second OVS NIC hot-plugged without an interfaceid: one is generated, kept in the live
//!   XML and set as its iface-id; detaching it removes its port and tap.
//! - A start on a bridge OVS does not have fails naming it and leaves no port and no tap.
//! - destroy removes the port; after virtnetd and QEMU are killed (kill -9), the restarted
//!   virtnetd's recovery removes it; a port of the VM no record holds is swept at startup,
//!   another manager's port is not.

mod common;

use std::time::Duration;

use common::e2e::{post_json, ready_console, start, wait_ping};
use common::ovs::{
    br_int_with_host_port, destroy_leaving_host_port, detach_leaving_no_port,
    generated_interfaceid, ovs_qemu, tap_of, with_uuid,
};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::ovs::Ovs;
use virtnet_testkit::{ip, links, with_netns, TestDomain};

const MAC: &str = "52:54:00:00:0d:02";
const MAC2: &str = "52:54:00:00:0d:03";
const IFACE_ID: &str = "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f";
const UUID: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";
const CMD: Duration = Duration::from_secs(60);

fn ovs_nic(mac: &str, bridge: &str, params: &str, extra: &str) -> String {
    format!(
        "<interface type='bridge'><mac address='{mac}'/><source bridge='{bridge}'/>\
         <model type='virtio'/><virtualport type='openvswitch'>{params}</virtualport>\
         {extra}</interface>"
    )
}

fn external_ids(ovs: &Ovs, tap: &str) -> Vec<(String, String)> {
    [
        "iface-id",
        "attached-mac",
        "vm-id",
        "iface-status",
        "port-profile",
    ]
    .iter()
    .map(|k| {
        let v = ovs
            .vsctl_status(&["get", "Interface", tap, &format!("external_ids:{k}")])
            .unwrap_or_default();
        (k.to_string(), v.trim_matches('"').to_string())
    })
    .collect()
}

fn wait_gone(ovs: &Ovs, what: &str) {
    common::e2e::wait_until(what, Duration::from_secs(15), || {
        ovs.all_ports().iter().all(|p| p == "h42")
    });
}

#[test]
fn ovs_port_external_ids_ping_hotplug_and_stop() {
    let Some(qemu) = ovs_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let tmp = virtnet_testkit::traversable_tempdir();
        let ovs_dir = tempfile::tempdir().unwrap();
        // The host's side: an internal port in VLAN 42 with an address.
        let ovs = br_int_with_host_port(ovs_dir.path(), "h42", Some(42), "10.0.13.1/24");
        let db = ovs.db();
        let mut d = TestDaemon::start_with_args(tmp.path(), Some(&qemu), &["--ovsdb", &db]);

        // A bridge OVS does not have: the start fails naming it; no port, no tap left.
        let links_before = links();
        let bad = with_uuid(
            &TestDomain::new("bad", tmp.path().join("bad.sock"))
                .nic(&ovs_nic(MAC, "br-nope", "", ""), MAC, None)
                .xml(guest),
            UUID,
        );
        assert_eq!(d.define(&bad).0, 201);
        let (s, v) = d.post("/v1/domains/bad/start");
        assert_eq!(s, 409, "{v}\n{}", d.log());
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("'br-nope' is not an Open vSwitch bridge")
                && m.contains("ovs-vsctl add-br br-nope"),
            "{m}"
        );
        assert_eq!(links(), links_before);
        assert_eq!(ovs.all_ports(), ["h42"]);
        assert_eq!(d.call("DELETE", "/v1/domains/bad", None, "").0, 200);

        let serial = tmp.path().join("ovs.sock");
        let params = format!("<parameters interfaceid='{IFACE_ID}' profileid='menial'/>");
        let xml = with_uuid(
            &TestDomain::new("ovs", &serial)
                .nic(
                    &ovs_nic(MAC, "br-int", &params, "<vlan><tag id='42'/></vlan>"),
                    MAC,
                    Some("10.0.13.2/24"),
                )
                .ip(MAC2, "10.0.14.2/24")
                .xml(guest),
            UUID,
        );
        assert_eq!(d.define(&xml).0, 201);
        let rt = virtnet_testkit::runtime();
        let pid = rt.block_on(async {
            let pid = start(&d, "ovs");
            let mut con = ready_console(&serial).await;
            con.wait_nic_up(MAC, CMD).await.unwrap();
            let tap = tap_of(&d, "ovs", MAC);
            let mut ports = ovs.ports("br-int");
            ports.sort();
            assert_eq!(ports, ["h42".to_string(), tap.clone()]);
            assert_eq!(
                external_ids(&ovs, &tap),
                [
                    ("iface-id", IFACE_ID),
                    ("attached-mac", MAC),
                    ("vm-id", UUID),
                    ("iface-status", "active"),
                    ("port-profile", "menial"),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string()))
            );
            assert_eq!(ovs.get("Port", &tap, "tag"), "42");
            // Guest <-> host through OVS, in VLAN 42 on both sides.
            wait_ping("10.0.13.2", CMD);

            // Hot-plug a second OVS NIC without an interfaceid (no VLAN: untagged).
            let (s, v) = post_json(
                &d,
                "/v1/domains/ovs/devices",
                &json!({ "xml": ovs_nic(MAC2, "br-int", "", ""), "live": true }),
            );
            assert_eq!(s, 200, "{v}\n{}", d.log());
            let tap2 = v["interface"]["interface"].as_str().unwrap().to_string();
            con.wait_nic_up(MAC2, CMD).await.unwrap();
            // Generated, and kept (the same on a second look).
            generated_interfaceid(&d, &ovs, "ovs", MAC2, &tap2);
            assert_eq!(ovs.get("Port", &tap2, "tag"), "[]");
            let nic2 = format!(
                "<interface type='bridge'><mac address='{MAC2}'/><source bridge='br-int'/>\
                 </interface>"
            );
            detach_leaving_no_port(&d, &ovs, "ovs", &nic2, &tap2);
            wait_ping("10.0.13.2", CMD);
            pid
        });

        // destroy: the port goes with the tap.
        let tap = tap_of(&d, "ovs", MAC);
        destroy_leaving_host_port(&d, &ovs, "ovs", pid, &tap, "h42");

        // Crash: virtnetd and QEMU killed; the restarted virtnetd's recovery removes the port.
        let pid = start(&d, "ovs");
        let tap = tap_of(&d, "ovs", MAC);
        assert!(ovs.ports("br-int").contains(&tap));
        d.kill9();
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        common::e2e::wait_until("QEMU to die", Duration::from_secs(15), || {
            !common::e2e::alive(pid)
        });
        d.restart();
        wait_gone(&ovs, "recovery to remove the port");
        let (_, info): (u16, Value) = d.get("/v1/domains/ovs");
        assert_eq!(info["state"], "shut_off", "{info}\n{}", d.log());

        // A port of this VM no record holds and whose tap is gone (a crash between adding it
        // and recording it) is removed when virtnetd starts; another manager's port (a VM
        // virtnet does not know) stays, and so does one of this VM whose tap exists (the VM
        // running under another virtnetd of this host).
        ip("tuntap add dev live0 mode tap");
        for (port, vm) in [
            ("stale0", UUID),
            ("other0", "0b2d64da-3d0e-431e-a32a-4b3e3e6b1a7e"),
            ("live0", UUID),
        ] {
            ovs.vsctl(&[
                "add-port",
                "br-int",
                port,
                "--",
                "set",
                "Interface",
                port,
                &format!("external_ids:vm-id={vm}"),
            ]);
        }
        d.stop();
        d.restart();
        common::e2e::wait_until(
            "the sweep to remove stale0",
            Duration::from_secs(15),
            || {
                let mut p = ovs.all_ports();
                p.sort();
                p == ["h42", "live0", "other0"]
            },
        );
        assert!(d
            .log()
            .contains("removed an Open vSwitch port left by a crash"));
        ovs.vsctl(&["del-port", "br-int", "live0"]);
        ip("link del live0");
        d.stop();
        drop(ovs);
    });
}
