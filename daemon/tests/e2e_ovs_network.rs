//! libvirt's Open vSwitch network end to end: `<network><forward mode='bridge'/><bridge
//! name='br-int'/><virtualport type='openvswitch'/>` and `<interface type='network'>` on it, with
//! a real virtnetd (`--ovsdb` naming a private OVS in the test's network namespace,
//! `virtnet_testkit::ovs`), QEMU 7.2 under TCG, the test guest, and the real virsh over RPC.
//!
//! - net-start of a network whose bridge OVS does not have is refused naming it (HTTP and
//!   virsh), the network stays inactive, nothing is added to OVS.
//! - virsh net-start / net-info: active, `Bridge: br-int` (virNetworkGetBridgeName);
//!   net-dumpxml and dumpxml show libvirt's forms.
//! - A guest's `<interface type='network'><source network='ovs'/>` with its own interfaceid:
//!   its tap is a br-int port with libvirt's external_ids (iface-id kept, vm-id the domain's
//!   UUID, attached-mac, iface-status); live XML shows `type='network'` with `<source
//!   network='ovs' bridge='br-int'/>`; the host pings the guest through OVS.
//! - A second one hot-plugged in port group `blue` without interfaceid: one is generated (the
//!   live XML's = the port's iface-id), the group's VLAN is the port's tag; detached by its
//!   network form, its port and tap go.
//! - net-destroy while the VM runs is allowed (as libvirt does for a bridge-forward network):
//!   the port stays, a new NIC is refused until net-start; the network stays active across a
//!   virtnetd restart; VM destroy removes its port and tap: nothing left.

mod common;

use std::time::Duration;

use common::e2e::{post_json, ready_console, start, wait_ping};
use common::ovs::{
    br_int_with_host_port, destroy_leaving_host_port, detach_leaving_no_port,
    generated_interfaceid, live_xml, nic_of, ovs_qemu, tap_of, with_uuid,
};
use common::virsh::{virsh_err, virsh_ok};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{require, with_netns, Need, TestDomain};

const MAC: &str = "52:54:00:00:0e:02";
const MAC2: &str = "52:54:00:00:0e:03";
const IFACE_ID: &str = "5b2e1b0e-7c4c-4f4a-9a57-3f4d2b1c0e11";
const UUID: &str = "d1a5fdbd-edaf-9455-926a-d65c16db1810";
const CMD: Duration = Duration::from_secs(60);

const NET: &str = "<network><name>ovs</name><forward mode='bridge'/><bridge name='br-int'/>\
    <virtualport type='openvswitch'/><portgroup name='blue'><vlan><tag id='42'/></vlan>\
    </portgroup></network>";

fn net_nic(mac: &str, source: &str, extra: &str) -> String {
    format!(
        "<interface type='network'><mac address='{mac}'/>{source}<model type='virtio'/>\
         {extra}</interface>"
    )
}

fn net_state(d: &TestDaemon, name: &str) -> Value {
    let (s, v) = d.get(&format!("/v1/networks/{name}"));
    assert_eq!(s, 200, "{v}");
    v
}

#[test]
fn ovs_network_nics_are_ovs_ports_hotplug_virsh_and_nothing_left() {
    let Some(qemu) = ovs_qemu() else {
        return;
    };
    if !require(&[Need::Binary("virsh")]) {
        return;
    }
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let tmp = virtnet_testkit::traversable_tempdir();
        let ovs_dir = tempfile::tempdir().unwrap();
        let ovs = br_int_with_host_port(ovs_dir.path(), "h0", None, "10.0.15.1/24");
        let db = ovs.db();
        let mut d = TestDaemon::start_with_args(tmp.path(), Some(&qemu), &["--ovsdb", &db]);

        // A network on a bridge OVS does not have: refused, inactive, nothing added.
        let nope = NET
            .replace("<name>ovs</name>", "<name>nope</name>")
            .replace("br-int", "br-nope");
        let (s, v) = d.call("POST", "/v1/networks", Some("application/xml"), &nope);
        assert_eq!(s, 201, "{v}");
        let (s, v) = d.post("/v1/networks/nope/start");
        assert_eq!(s, 409, "{v}\n{}", d.log());
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("Open vSwitch has no bridge 'br-nope'")
                && m.contains("ovs-vsctl add-br br-nope"),
            "{m}"
        );
        assert_eq!(net_state(&d, "nope")["state"], "inactive");
        let err = virsh_err(&d, &["net-start", "nope"]);
        assert!(err.contains("no bridge 'br-nope'"), "{err}");
        assert_eq!(net_state(&d, "nope")["state"], "inactive");
        assert_eq!(ovs.all_ports(), ["h0"]);
        assert!(!tmp.path().join("run/networks/nope.active").exists());

        // The Open vSwitch network, started through virsh.
        let (s, v) = d.call("POST", "/v1/networks", Some("application/xml"), NET);
        assert_eq!(s, 201, "{v}");
        virsh_ok(&d, &["net-start", "ovs"]);
        let out = virsh_ok(&d, &["net-info", "ovs"]);
        assert!(
            out.lines()
                .any(|l| l.starts_with("Bridge:") && l.ends_with("br-int")),
            "{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with("Active:") && l.ends_with("yes")),
            "{out}"
        );
        let info = net_state(&d, "ovs");
        assert_eq!(info["state"], "active", "{info}");
        assert_eq!(info["bridge"], "br-int", "{info}");
        assert_eq!(info["pid"], Value::Null, "no process: {info}");

        let serial = tmp.path().join("ovsnet.sock");
        let own = format!(
            "<virtualport type='openvswitch'><parameters interfaceid='{IFACE_ID}'/></virtualport>"
        );
        let xml = with_uuid(
            &TestDomain::new("vm", &serial)
                .nic(
                    &net_nic(MAC, "<source network='ovs'/>", &own),
                    MAC,
                    Some("10.0.15.2/24"),
                )
                .ip(MAC2, "10.0.16.2/24")
                .xml(guest),
            UUID,
        );
        assert_eq!(d.define(&xml).0, 201, "{}", d.log());
        let rt = virtnet_testkit::runtime();
        let pid = rt.block_on(async {
            let pid = start(&d, "vm");
            let mut con = ready_console(&serial).await;
            con.wait_nic_up(MAC, CMD).await.unwrap();
            let tap = tap_of(&d, "vm", MAC);
            let mut ports = ovs.ports("br-int");
            ports.sort();
            assert_eq!(ports, ["h0".to_string(), tap.clone()]);
            for (k, want) in [
                ("iface-id", IFACE_ID),
                ("attached-mac", MAC),
                ("vm-id", UUID),
                ("iface-status", "active"),
            ] {
                let got = ovs.get("Interface", &tap, &format!("external_ids:{k}"));
                assert_eq!(got.trim_matches('"'), want, "{k}");
            }
            let live = live_xml(&d, "vm");
            let nic = nic_of(&live, MAC);
            assert!(
                nic.starts_with("<interface type='network'>")
                    && nic.contains("<source network='ovs' bridge='br-int'/>")
                    && nic.contains(&format!("interfaceid='{IFACE_ID}'")),
                "{nic}"
            );
            // libvirt's tools see libvirt's shapes: the live NIC and the network.
            let out = virsh_ok(&d, &["dumpxml", "vm"]);
            assert!(
                nic_of(&out, MAC).contains("<source network='ovs' bridge='br-int'/>"),
                "{out}"
            );
            let out = virsh_ok(&d, &["net-dumpxml", "ovs"]);
            assert!(
                out.contains("<forward mode='bridge'/>")
                    && out.contains("<bridge name='br-int'/>")
                    && out.contains("<virtualport type='openvswitch'/>"),
                "{out}"
            );
            wait_ping("10.0.15.2", CMD);

            // Hot-plug a second one in port group blue, without interfaceid.
            let (s, v) = post_json(
                &d,
                "/v1/domains/vm/devices",
                &json!({
                    "xml": net_nic(MAC2, "<source network='ovs' portgroup='blue'/>", ""),
                    "live": true,
                }),
            );
            assert_eq!(s, 200, "{v}\n{}", d.log());
            let tap2 = v["interface"]["interface"].as_str().unwrap().to_string();
            con.wait_nic_up(MAC2, CMD).await.unwrap();
            let generated = generated_interfaceid(&d, &ovs, "vm", MAC2, &tap2);
            assert_ne!(generated, IFACE_ID);
            assert_eq!(ovs.get("Port", &tap2, "tag"), "42");
            let live = live_xml(&d, "vm");
            let nic2 = nic_of(&live, MAC2);
            assert!(
                nic2.contains("<source network='ovs' portgroup='blue' bridge='br-int'/>")
                    && nic2.contains("<tag id='42'/>"),
                "{nic2}"
            );
            // Detached by its network form.
            let by_network = format!(
                "<interface type='network'><mac address='{MAC2}'/><source network='ovs'/>\
                 </interface>"
            );
            detach_leaving_no_port(&d, &ovs, "vm", &by_network, &tap2);
            wait_ping("10.0.15.2", CMD);
            pid
        });

        // net-destroy while the VM runs: allowed (libvirt), the port stays; a new NIC cannot
        // join until the network is started again.
        let tap = tap_of(&d, "vm", MAC);
        let (s, v) = d.post("/v1/networks/ovs/destroy");
        assert_eq!(s, 200, "{v}");
        assert_eq!(net_state(&d, "ovs")["state"], "inactive");
        assert!(ovs.ports("br-int").contains(&tap));
        let (s, v) = post_json(
            &d,
            "/v1/domains/vm/devices",
            &json!({
                "xml": net_nic(MAC2, "<source network='ovs'/>", ""),
                "live": true,
            }),
        );
        assert_eq!(s, 409, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("inactive"),
            "{v}"
        );
        let (s, v) = d.post("/v1/networks/ovs/start");
        assert_eq!(s, 200, "{v}");
        // Still active, and the NIC still shown on it, after a virtnetd restart.
        d.stop();
        d.restart();
        assert_eq!(net_state(&d, "ovs")["state"], "active");
        assert!(
            nic_of(&live_xml(&d, "vm"), MAC).contains("<source network='ovs' bridge='br-int'/>"),
            "{}",
            live_xml(&d, "vm")
        );

        // Destroy: the port and tap go; nothing of the VM left on OVS.
        destroy_leaving_host_port(&d, &ovs, "vm", pid, &tap, "h0");
        let nics = std::fs::read_to_string(tmp.path().join("run/networks/ovs-nics.json"))
            .unwrap_or_default();
        assert!(!nics.contains(MAC), "{nics}");
        let (s, v) = d.post("/v1/networks/ovs/destroy");
        assert_eq!(s, 200, "{v}");
        d.stop();
        drop(ovs);
    });
}
