//! The validation layer through the API: define refuses what virtnet cannot run with the
//! element's line:col (as `virtnet validate` does); USB hostdev NICs are kept by define and
//! `attach --config` but refused at start (before QEMU is even looked at) and at live attach
//! (with QEMU running: nothing reaches it).

mod common;

use std::path::Path;

use common::e2e::{destroy_leaving_nothing, post_json, qemu_objects, start};
use common::{domain_xml, TestDaemon};
use serde_json::json;
use virtnet_testkit::with_netns;

const USB_NIC: &str = "<interface type='hostdev' managed='yes'>\n      \
    <mac address='52:54:00:00:0b:01'/>\n      <source>\n        <vendor id='0x0b95'/>\n        \
    <product id='0x1790'/>\n      </source>\n    </interface>";

const USB_BY_ADDRESS: &str = "<interface type='hostdev'><mac address='52:54:00:00:0b:02'/>\
    <source><address type='usb' bus='1' device='4'/></source></interface>";

fn assert_unsupported_usb(s: u16, v: &serde_json::Value) {
    assert_eq!(
        (s, v["error"]["kind"].as_str()),
        (400, Some("unsupported_configuration")),
        "{v}"
    );
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("unsupported configuration: interface 52:54:00:00:0b:0")
            && m.contains("<hostdev mode='subsystem' type='usb'>"),
        "{m}"
    );
}

#[test]
fn usb_hostdev_nic_is_defined_but_not_started() {
    let dir = tempfile::tempdir().unwrap();
    // A QEMU that does not exist: the refusal must come before QEMU is looked at.
    let d = TestDaemon::start_with(dir.path(), Some(Path::new("/nonexistent/qemu")));
    let (s, v) = d.define(&domain_xml("u", USB_NIC));
    assert_eq!(s, 201, "{v}");
    let (_, v) = d.get("/v1/domains/u/xml?inactive=true");
    let xml = v["xml"].as_str().unwrap();
    assert!(
        xml.contains("<vendor id='0x0b95'/>") && xml.contains("<product id='0x1790'/>"),
        "{xml}"
    );
    // attach --config keeps one too.
    let (s, v) = post_json(
        &d,
        "/v1/domains/u/devices",
        &json!({ "xml": USB_BY_ADDRESS, "config": true }),
    );
    assert_eq!(s, 200, "{v}");

    let before = d.store_files();
    let (s, v) = d.post("/v1/domains/u/start");
    assert_unsupported_usb(s, &v);
    // Line:col of the first NIC's <source> in the stored definition.
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.split(':').next().unwrap().parse::<u32>().is_ok(), "{m}");
    assert_eq!(d.store_files(), before, "nothing written");
    assert!(!dir.path().join("run/u").exists(), "no run directory");
    let (_, v) = d.get("/v1/domains/u");
    assert_eq!(v["state"], "shut_off", "{v}");
    assert!(!d.log().contains("cannot use QEMU"), "QEMU was not probed");
}

#[test]
fn define_refuses_what_cannot_run_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    let nic = "<interface type='user'><mac address='52:54:00:00:0c:01'/>\n      \
               <backend type='passt'/></interface>";
    let (s, v) = d.define(&domain_xml("p", nic));
    assert_eq!(
        (s, v["error"]["kind"].as_str()),
        (400, Some("invalid_xml")),
        "{v}"
    );
    // Line 8 of the document, column 16: <backend>'s type attribute.
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.starts_with(
            "invalid domain XML: 8:16: unsupported configuration: interface \
                       52:54:00:00:0c:01 (type='user'): the passt back end"
        ),
        "{m}"
    );
    assert!(d.names().is_empty(), "nothing defined");
}

/// Issue 10's findings through the API: a bridge NIC's `<vlan>` and a MidoNet
/// `<virtualport>` are refused at define with their line:col and what to do instead, and by
/// `attach --config`; nothing is stored.
#[test]
fn define_refuses_settings_nothing_enforces() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    let nic = |extra: &str| {
        format!(
            "<interface type='bridge'><mac address='52:54:00:00:0e:01'/>\n      \
             <source bridge='br0'/>{extra}</interface>"
        )
    };
    for (extra, col, says) in [
        (
            "<vlan><tag id='42'/></vlan>",
            29,
            "<vlan> is not applied on type='bridge': virtnet does no VLANs on Linux bridges",
        ),
        (
            "<virtualport type='midonet'/>",
            29,
            "MidoNet ports need a MidoNet agent",
        ),
    ] {
        let (s, v) = d.define(&domain_xml("b", &nic(extra)));
        assert_eq!(
            (s, v["error"]["kind"].as_str()),
            (400, Some("invalid_xml")),
            "{v}"
        );
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.starts_with(&format!(
                "invalid domain XML: 8:{col}: unsupported configuration: interface \
                 52:54:00:00:0e:01 (type='bridge'): "
            )) && m.contains(says),
            "{m}"
        );
    }
    assert!(d.names().is_empty(), "nothing defined");
    let user = "<interface type='user'><mac address='52:54:00:00:0e:02'/></interface>";
    assert_eq!(d.define(&domain_xml("b", user)).0, 201);
    let before = d.store_files();
    let (s, v) = post_json(
        &d,
        "/v1/domains/b/devices",
        &json!({ "xml": nic("<vlan><tag id='42'/></vlan>"), "config": true }),
    );
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("<vlan> is not applied"),
        "{v}"
    );
    assert_eq!(d.store_files(), before, "nothing changed");
}

#[test]
fn usb_hostdev_nic_live_attach_is_refused_before_qemu_sees_it() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    with_netns(move || {
        let dir = tempfile::tempdir().unwrap();
        let d = TestDaemon::start_with(dir.path(), Some(&qemu));
        let user = "<interface type='user'><mac address='52:54:00:00:0b:09'/></interface>";
        assert_eq!(d.define(&domain_xml("l", user)).0, 201);
        start(&d, "l");
        let before = (
            qemu_objects(&d, "l"),
            d.store_files(),
            d.get("/v1/domains/l/xml"),
        );
        for nic in [USB_NIC, USB_BY_ADDRESS] {
            let (s, v) = post_json(
                &d,
                "/v1/domains/l/devices",
                &json!({ "xml": nic, "live": true }),
            );
            assert_unsupported_usb(s, &v);
        }
        // A vhost-user NIC QEMU would listen on, with a rate limit nothing would apply: its
        // resolved form cannot be told from a switch port, so the NIC as given is checked as
        // define checks it.
        let vhost = "<interface type='vhostuser'><mac address='52:54:00:00:0b:0a'/>\
                     <source type='unix' path='/tmp/virtnet-api-validate.sock' mode='server'/>\
                     <model type='virtio'/><bandwidth><inbound average='100'/></bandwidth>\
                     </interface>";
        let (s, v) = post_json(
            &d,
            "/v1/domains/l/devices",
            &json!({ "xml": vhost, "live": true }),
        );
        assert_eq!(s, 400, "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("<bandwidth> is not enforced on type='vhostuser'"),
            "{m}"
        );
        let after = (
            qemu_objects(&d, "l"),
            d.store_files(),
            d.get("/v1/domains/l/xml"),
        );
        assert_eq!(
            after, before,
            "nothing changed in QEMU, the store or the live XML"
        );
        destroy_leaving_nothing(&d, "l");
        println!("live attach refused with QEMU running");
    });
}

/// domif-setlink and update-device go through the same update rules: a hostdev NIC has no
/// link virtnet can set (and a definition holding it down is refused at define).
#[test]
fn hostdev_link_is_not_changeable() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    let vf = "<interface type='hostdev' managed='yes'><mac address='52:54:00:00:0d:01'/>\
              <source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' \
              function='0x1'/></source>{LINK}</interface>";
    let (s, v) = d.define(&domain_xml(
        "h",
        &vf.replace("{LINK}", "<link state='down'/>"),
    ));
    assert_eq!(
        (s, v["error"]["kind"].as_str()),
        (400, Some("invalid_xml")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hostdev NIC"),
        "{v}"
    );
    assert_eq!(d.define(&domain_xml("h", &vf.replace("{LINK}", ""))).0, 201);
    let before = d.store_files();
    let (s, v) = d.call(
        "POST",
        "/v1/domains/h/interfaces/52:54:00:00:0d:01/link",
        Some("application/json"),
        "{\"state\": \"down\"}",
    );
    assert_eq!(
        (s, v["error"]["kind"].as_str()),
        (400, Some("not_hotpluggable")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("link state of a hostdev NIC"),
        "{v}"
    );
    let (s, v) = post_json(
        &d,
        "/v1/domains/h/devices/update",
        &json!({ "xml": "<interface type='hostdev' managed='yes'><mac address='52:54:00:00:0d:01'/>\
                         <source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' \
                         function='0x1'/></source><link state='down'/></interface>" }),
    );
    assert_eq!(
        (s, v["error"]["kind"].as_str()),
        (400, Some("not_hotpluggable")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("link state of a hostdev NIC"),
        "{v}"
    );
    assert_eq!(d.store_files(), before, "nothing changed");
}

/// Enforce or refuse: tuning virtnet's cgroup does not enforce (pinning, min_guarantee) is
/// refused at define with its line:col; what it enforces is kept in libvirt's form.
#[test]
fn define_refuses_unenforced_tuning_and_keeps_enforced_tuning() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    let with = |tune: &str| domain_xml("t", "").replace("<os>", &format!("{tune}\n  <os>"));
    for (tune, at, what) in [
        (
            "<cputune>\n    <vcpupin vcpu='0' cpuset='1'/></cputune>",
            "6:5",
            "<cputune><vcpupin>: CPU pinning is not enforced",
        ),
        (
            "<memtune><min_guarantee unit='MiB'>64</min_guarantee></memtune>",
            "5:12",
            "<memtune><min_guarantee> cannot be enforced for QEMU",
        ),
    ] {
        let (s, v) = d.define(&with(tune));
        assert_eq!(s, 400, "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.starts_with(&format!(
                "invalid domain XML: {at}: unsupported configuration: domain 't': {what}"
            )),
            "{m}"
        );
    }
    assert!(d.names().is_empty(), "nothing defined");
    let (s, v) = d.define(&with(
        "<memtune><hard_limit unit='MiB'>512</hard_limit></memtune>\
         <cputune><shares>2048</shares></cputune>",
    ));
    assert_eq!(s, 201, "{v}");
    let (_, v) = d.get("/v1/domains/t/xml?inactive=true");
    let xml = v["xml"].as_str().unwrap();
    assert!(
        xml.contains("<memtune>\n    <hard_limit unit='KiB'>524288</hard_limit>\n  </memtune>")
            && xml.contains("<cputune>\n    <shares>2048</shares>\n  </cputune>"),
        "{xml}"
    );
}

/// An Open vSwitch port defined without an `interfaceid` gets one at define (as libvirt
/// does), shown in the stored definition and kept when that definition is defined again.
#[test]
fn define_assigns_an_open_vswitch_interfaceid_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(dir.path());
    let nic = "<interface type='bridge'><mac address='52:54:00:00:0e:05'/>\
               <source bridge='br-int'/><virtualport type='openvswitch'/></interface>";
    assert_eq!(d.define(&domain_xml("o", nic)).0, 201);
    let xml = |d: &TestDaemon| {
        let (s, v) = d.get("/v1/domains/o/xml");
        assert_eq!(s, 200, "{v}");
        v["xml"].as_str().unwrap().to_string()
    };
    let first = xml(&d);
    let id = first
        .split("interfaceid='")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap_or_else(|| panic!("no interfaceid: {first}"))
        .to_string();
    assert_eq!(id.len(), 36, "{first}");
    assert_eq!(d.define(&first).0, 200, "redefined");
    assert!(
        xml(&d).contains(&format!("interfaceid='{id}'")),
        "{}",
        xml(&d)
    );
    // A malformed one is refused at its line.
    let bad = nic.replace(
        "<virtualport type='openvswitch'/>",
        "<virtualport type='openvswitch'><parameters interfaceid='x'/></virtualport>",
    );
    let (s, v) = d.define(&domain_xml("p", &bad));
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("a UUID"),
        "{v}"
    );
}
