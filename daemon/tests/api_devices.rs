//! The device endpoints against the definition (no QEMU needed): attach, detach, update and
//! chardev-change with `config`, the owner registry at attach and update time (also 20 racing
//! attaches), and bad input that must change nothing.

mod common;

use std::sync::{Arc, Barrier};

use common::{domain_xml, vhostuser_nic, TestDaemon};
use serde_json::{json, Value};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn post_json(d: &TestDaemon, path: &str, body: &Value) -> (u16, Value) {
    d.call("POST", path, Some("application/json"), &body.to_string())
}

fn inactive_xml(d: &TestDaemon, name: &str) -> String {
    let (s, v) = d.get(&format!("/v1/domains/{name}/xml?inactive=true"));
    assert_eq!(s, 200, "{v}");
    v["xml"].as_str().unwrap().to_string()
}

const SERIALS: &str = "<serial type='pty'/><serial type='file'><source path='/tmp/vn-s1.log'/>\
                       <target port='1'/></serial>";

#[test]
fn config_attach_detach_update_and_chardev_change() {
    let dir = tmp();
    let d = TestDaemon::start(dir.path());
    let sock = |n: &str| dir.path().join(n).display().to_string();
    let (s, v) = d.define(&domain_xml(
        "a",
        &format!(
            "{}{SERIALS}",
            vhostuser_nic("52:54:00:00:0a:01", &sock("a.sock"))
        ),
    ));
    assert_eq!(s, 201, "{v}");

    // Not running: the default is the definition.
    let nic = format!(
        "<interface type='vhostuser'><source type='unix' path='{}' mode='client'/></interface>",
        sock("b.sock")
    );
    let (s, v) = post_json(&d, "/v1/domains/a/devices", &json!({ "xml": nic }));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["live"], false);
    assert_eq!(v["config"], true);
    let mac = v["interface"]["mac"].as_str().unwrap().to_string();
    assert!(mac.starts_with("52:54:00:"), "a MAC was assigned: {v}");
    let xml = inactive_xml(&d, "a");
    assert!(xml.contains(&sock("b.sock")), "{xml}");
    assert!(xml.matches("<address type='pci'").count() >= 2, "{xml}");
    // The stored file is the new definition.
    let stored = std::fs::read_to_string(dir.path().join("state/domains/a.xml")).unwrap();
    assert_eq!(stored, xml);

    // A live change needs a running VM.
    let before = d.store_files();
    let (s, v) = post_json(
        &d,
        "/v1/domains/a/devices",
        &json!({ "xml": "<interface type='user'/>", "live": true }),
    );
    assert_eq!(
        (s, v["error"]["kind"].as_str()),
        (409, Some("invalid_state")),
        "{v}"
    );
    assert_eq!(d.store_files(), before);

    // update-device: the socket moves (no replug needed in the definition); the old path is
    // free afterwards, the new one taken.
    let upd = format!(
        "<interface type='vhostuser'><mac address='{mac}'/>\
         <source type='unix' path='{}' mode='client'/><link state='down'/></interface>",
        sock("c.sock")
    );
    let (s, v) = post_json(&d, "/v1/domains/a/devices/update", &json!({ "xml": upd }));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["changed"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["replugged"], false);
    let xml = inactive_xml(&d, "a");
    assert!(
        xml.contains(&sock("c.sock")) && !xml.contains(&sock("b.sock")),
        "{xml}"
    );
    assert!(xml.contains("<link state='down'/>"), "{xml}");
    let (s, v) = d.define(&domain_xml(
        "b",
        &vhostuser_nic("52:54:00:00:0b:01", &sock("b.sock")),
    ));
    assert_eq!(s, 201, "the old socket is free: {v}");
    let (s, v) = d.define(&domain_xml(
        "c",
        &vhostuser_nic("52:54:00:00:0c:01", &sock("c.sock")),
    ));
    assert_eq!(s, 409, "the new socket is taken: {v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("VM 'a'"),
        "{v}"
    );

    // update-device refuses what it cannot change, naming it.
    let (s, v) = post_json(
        &d,
        "/v1/domains/a/devices/update",
        &json!({ "xml": format!("<interface type='vhostuser'><mac address='{mac}'/><source type='unix' path='{}' mode='client'/><mtu size='9000'/></interface>", sock("c.sock")) }),
    );
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("<mtu>"),
        "{v}"
    );

    // chardev-change on the definition.
    let (s, v) = post_json(
        &d,
        "/v1/domains/a/chardevs/serial1",
        &json!({ "type": "unix", "path": sock("s1.sock") }),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["device"], "serial1");
    let xml = inactive_xml(&d, "a");
    assert!(
        xml.contains(&format!("<source mode='bind' path='{}'/>", sock("s1.sock"))),
        "{xml}"
    );
    let (s, v) = post_json(
        &d,
        "/v1/domains/a/chardevs/serial9",
        &json!({ "type": "pty" }),
    );
    assert_eq!(s, 404, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("serial0, serial1"),
        "{v}"
    );

    // detach-interface by type and MAC; then the socket is free again.
    let (s, v) = post_json(
        &d,
        "/v1/domains/a/devices/detach",
        &json!({ "type": "vhostuser", "mac": mac }),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["pending"], false);
    assert!(!inactive_xml(&d, "a").contains(&mac));
    let (s, v) = d.define(&domain_xml(
        "c",
        &vhostuser_nic("52:54:00:00:0c:01", &sock("c.sock")),
    ));
    assert_eq!(s, 201, "{v}");
}

#[test]
fn device_bad_input_changes_nothing() {
    let dir = tmp();
    let d = TestDaemon::start(dir.path());
    let p = dir.path().join("a.sock").display().to_string();
    let (s, _) = d.define(&domain_xml(
        "a",
        &format!(
            "{}<interface type='bridge'><mac address='52:54:00:00:0a:02'/><source bridge='br0'/></interface>\
             <interface type='bridge'><mac address='52:54:00:00:0a:03'/><source bridge='br0'/></interface>",
            vhostuser_nic("52:54:00:00:0a:01", &p)
        ),
    ));
    assert_eq!(s, 201);
    let before = d.store_files();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/domains/a/devices", json!({"xml": "<interface type='user'"}).to_string(), 400, "invalid_xml"),
        ("/v1/domains/a/devices", json!({"xml": "<disk type='file'/>"}).to_string(), 400, "not_hotpluggable"),
        ("/v1/domains/a/devices", json!({"xml": "<interface type='bogus'/>"}).to_string(), 400, "invalid_xml"),
        ("/v1/domains/nope/devices", json!({"xml": "<interface type='user'/>"}).to_string(), 404, "no_such_vm"),
        // Invalid in this domain: a MAC it has already.
        ("/v1/domains/a/devices", json!({"xml": "<interface type='user'><mac address='52:54:00:00:0a:02'/></interface>"}).to_string(), 400, "invalid_xml"),
        // A second NIC of this VM on its vhost-user socket.
        ("/v1/domains/a/devices", json!({"xml": vhostuser_nic("52:54:00:00:0a:09", &p)}).to_string(), 409, "resource_in_use"),
        ("/v1/domains/a/devices", "{\"xml\": 5}".to_string(), 400, "bad_request"),
        ("/v1/domains/a/devices", json!({"xml": "<interface type='user'/>", "live": "yes"}).to_string(), 400, "bad_request"),
        ("/v1/domains/a/devices", json!({"xml": "<interface type='user'/>", "bogus": 1}).to_string(), 400, "bad_request"),
        ("/v1/domains/a/devices", "not json".to_string(), 400, "bad_request"),
        ("/v1/domains/a/devices/detach", json!({"xml": "<interface type='user'><mac address='52:54:00:99:99:99'/></interface>"}).to_string(), 404, "no_such_interface"),
        ("/v1/domains/a/devices/detach", json!({"type": "bridge"}).to_string(), 409, "ambiguous_interface"),
        ("/v1/domains/a/devices/detach", json!({"type": "bridge", "xml": "<interface/>"}).to_string(), 400, "bad_request"),
        ("/v1/domains/a/devices/detach", json!({"type": "nope"}).to_string(), 400, "bad_request"),
        ("/v1/domains/a/devices/detach", json!({"type": "bridge", "mac": "52:54:00:00:0a:02", "timeout_secs": 100000}).to_string(), 400, "bad_request"),
        ("/v1/domains/a/devices/update", json!({"xml": "<interface type='bridge'><mac address='52:54:00:00:0a:02'/><source bridge='br1'/></interface>"}).to_string(), 400, "not_hotpluggable"),
        ("/v1/domains/a/chardevs/serial0", json!({"type": "file"}).to_string(), 400, "bad_request"),
        ("/v1/domains/a/chardevs/serial0", json!({"type": "file", "path": "relative"}).to_string(), 400, "bad_request"),
        ("/v1/domains/a/chardevs/serial0", json!({"type": "tape"}).to_string(), 400, "bad_request"),
        ("/v1/domains/a/chardevs/serial0", json!({"type": "pty"}).to_string(), 404, "no_such_device"),
    ];
    for (path, body, status, kind) in cases {
        let (s, v) = d.call("POST", path, Some("application/json"), &body);
        assert_eq!(s, status, "{path} {body}: {v}");
        assert_eq!(v["error"]["kind"], kind, "{path} {body}: {v}");
        assert_eq!(d.store_files(), before, "{path} {body} changed the store");
    }
    // No body, and a body of the wrong media type.
    let (s, _) = d.post("/v1/domains/a/devices");
    assert_eq!(s, 400);
    let (s, _) = d.call(
        "POST",
        "/v1/domains/a/devices",
        Some("application/xml"),
        "<interface type='user'/>",
    );
    assert_eq!(s, 415);
    assert_eq!(d.store_files(), before);
}

/// 20 attaches racing for one vhost-user socket, 10 per VM: one wins, the others are refused
/// naming the owner, and nothing of theirs is stored.
#[test]
fn twenty_racing_attaches_one_owner() {
    let dir = tmp();
    let d = Arc::new(TestDaemon::start(dir.path()));
    for n in ["a", "b"] {
        let (s, v) = d.define(&domain_xml(n, ""));
        assert_eq!(s, 201, "{v}");
    }
    let p = dir.path().join("race.sock").display().to_string();
    let barrier = Arc::new(Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (d, b, p) = (d.clone(), barrier.clone(), p.clone());
            std::thread::spawn(move || {
                let vm = if i % 2 == 0 { "a" } else { "b" };
                let nic = vhostuser_nic(&format!("52:54:00:00:0d:{i:02x}"), &p);
                b.wait();
                let r = post_json(
                    &d,
                    &format!("/v1/domains/{vm}/devices"),
                    &json!({ "xml": nic }),
                );
                (vm, r)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<_> = results.iter().filter(|(_, (s, _))| *s == 200).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0].0;
    for (_, (s, v)) in results.iter().filter(|(_, (s, _))| *s != 200) {
        assert_eq!(*s, 409, "{v}");
        assert_eq!(v["error"]["kind"], "resource_in_use", "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(&format!("VM '{winner}'")), "{m}");
    }
    let count: usize = ["a", "b"]
        .iter()
        .map(|n| inactive_xml(&d, n).matches(&p).count())
        .sum();
    assert_eq!(count, 1, "exactly one stored NIC uses the socket");
}

/// update-device of a bridge NIC's `<bandwidth>` in the definition: set, changed, removed;
/// on a vhost-user NIC refused naming it.
#[test]
fn config_update_of_bandwidth() {
    let dir = tmp();
    let d = TestDaemon::start(dir.path());
    let mac = "52:54:00:00:0a:21";
    let nic = |bw: &str| {
        format!(
            "<interface type='bridge'><mac address='{mac}'/><source bridge='br0'/>\
             <model type='virtio'/>{bw}</interface>"
        )
    };
    assert_eq!(d.define(&domain_xml("bwc", &nic(""))).0, 201);
    let bw = "<bandwidth><inbound average='122' burst='32'/><outbound average='1221'/></bandwidth>";
    let (s, v) = post_json(
        &d,
        "/v1/domains/bwc/devices/update",
        &json!({ "xml": nic(bw), "config": true }),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["changed"],
        json!(["bandwidth inbound average 122 burst 32, outbound average 1221"]),
        "{v}"
    );
    let x = inactive_xml(&d, "bwc");
    assert!(x.contains("<inbound average='122' burst='32'/>"), "{x}");
    let (s, v) = post_json(
        &d,
        "/v1/domains/bwc/devices/update",
        &json!({ "xml": nic(""), "config": true }),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["changed"], json!(["bandwidth removed"]), "{v}");
    assert!(!inactive_xml(&d, "bwc").contains("bandwidth"));
    let sock = dir.path().join("v.sock").display().to_string();
    assert_eq!(
        d.define(&domain_xml(
            "vu",
            &vhostuser_nic("52:54:00:00:0a:22", &sock)
        ))
        .0,
        201
    );
    let (s, v) = post_json(
        &d,
        "/v1/domains/vu/devices/update",
        &json!({ "xml": format!(
            "<interface type='vhostuser'><mac address='52:54:00:00:0a:22'/>\
             <source type='unix' path='{sock}' mode='client'/><model type='virtio'/>\
             <bandwidth><inbound average='100'/></bandwidth></interface>"
        ), "config": true }),
    );
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("<bandwidth>"),
        "{v}"
    );
}
