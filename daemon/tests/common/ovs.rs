//! Helpers of the Open vSwitch end-to-end tests (a private OVS of `virtnet_testkit::ovs` in the
//! test's network namespace, bridge `br-int`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use virtnet_testkit::ovs::Ovs;
use virtnet_testkit::{ip, links, require, Need};

use super::e2e::{alive, post_json, wait_until};
use super::TestDaemon;

/// The QEMU to use when the end-to-end tests run here and OVS is installed; None (skip) else.
pub fn ovs_qemu() -> Option<PathBuf> {
    let qemu = virtnet_testkit::e2e_qemu()?;
    require(&[Need::Binary("ovs-vswitchd"), Need::Binary("ovsdb-server")]).then_some(qemu)
}

/// Starts OVS in `dir` with bridge `br-int` and the host's side on it: internal port `port`
/// (in VLAN `tag` when given) with address `addr` (`10.0.13.1/24`), up.
pub fn br_int_with_host_port(dir: &Path, port: &str, tag: Option<u16>, addr: &str) -> Ovs {
    let ovs = Ovs::start(None, dir);
    ovs.add_bridge("br-int");
    let tag = tag.map(|t| format!("tag={t}"));
    let mut args = vec!["add-port", "br-int", port];
    args.extend(tag.as_deref());
    args.extend(["--", "set", "Interface", port, "type=internal"]);
    ovs.vsctl(&args);
    ip(&format!("addr add {addr} dev {port}"));
    ip(&format!("link set {port} up"));
    ovs
}

/// `xml` (a domain) with `<uuid>uuid</uuid>` after its name.
pub fn with_uuid(xml: &str, uuid: &str) -> String {
    xml.replacen("</name>", &format!("</name><uuid>{uuid}</uuid>"), 1)
}

/// The tap of the NIC with `mac` (`virtnet domiflist`'s interface column).
pub fn tap_of(d: &TestDaemon, vm: &str, mac: &str) -> String {
    let (s, v) = d.get(&format!("/v1/domains/{vm}/interfaces"));
    assert_eq!(s, 200, "{v}");
    v["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mac"] == mac)
        .and_then(|r| r["interface"].as_str())
        .unwrap_or_else(|| panic!("no interface {mac}: {v}"))
        .to_string()
}

/// The live XML of `vm`.
pub fn live_xml(d: &TestDaemon, vm: &str) -> String {
    let (s, v) = d.get(&format!("/v1/domains/{vm}/xml"));
    assert_eq!(s, 200, "{v}");
    v["xml"].as_str().unwrap().to_string()
}

/// The `<interface>` of `mac` in domain XML `xml`.
pub fn nic_of<'a>(xml: &'a str, mac: &str) -> &'a str {
    let at = xml
        .find(&format!("<mac address='{mac}'/>"))
        .expect("the NIC");
    let start = xml[..at].rfind("<interface").unwrap();
    let end = at + xml[at..].find("</interface>").unwrap();
    &xml[start..end]
}

/// The interfaceid of the NIC with `mac` in domain XML `xml`.
pub fn interfaceid_of(xml: &str, mac: &str) -> String {
    let nic = nic_of(xml, mac);
    let i = nic
        .find("interfaceid='")
        .unwrap_or_else(|| panic!("no interfaceid: {nic}"));
    nic[i + 13..].split('\'').next().unwrap().to_string()
}

/// Detaches the NIC `xml` names from running `vm` (live, 30 s for the guest); its tap `tap`
/// is then no port of br-int and no link.
pub fn detach_leaving_no_port(d: &TestDaemon, ovs: &Ovs, vm: &str, xml: &str, tap: &str) {
    let (s, v) = post_json(
        d,
        &format!("/v1/domains/{vm}/devices/detach"),
        &json!({ "xml": xml, "live": true, "timeout_secs": 30 }),
    );
    assert_eq!(s, 200, "{v}\n{}", d.log());
    assert!(
        !ovs.ports("br-int").contains(&tap.to_string()),
        "{:?}",
        ovs.all_ports()
    );
    assert!(!links().contains(&tap.to_string()), "tap {tap} left behind");
}

/// The interfaceid generated for `vm`'s NIC `mac` (hot-plugged without one, tap `tap`): in
/// the live XML, a UUID, the port's iface-id, the same on a second look (kept).
pub fn generated_interfaceid(d: &TestDaemon, ovs: &Ovs, vm: &str, mac: &str, tap: &str) -> String {
    let live = live_xml(d, vm);
    let generated = interfaceid_of(&live, mac);
    assert_eq!(generated.len(), 36, "{live}");
    assert_eq!(
        ovs.get("Interface", tap, "external_ids:iface-id"),
        generated
    );
    assert_eq!(interfaceid_of(&live_xml(d, vm), mac), generated);
    generated
}

/// Destroys `vm` (QEMU `pid`, NIC tap `tap`): no leftovers, QEMU gone, OVS back to only
/// `host_port`, the tap gone.
pub fn destroy_leaving_host_port(
    d: &TestDaemon,
    ovs: &Ovs,
    vm: &str,
    pid: u64,
    tap: &str,
    host_port: &str,
) {
    let (s, v) = d.post(&format!("/v1/domains/{vm}/destroy"));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["leftovers"], json!([]), "{v}");
    wait_until("QEMU to be gone", Duration::from_secs(15), || !alive(pid));
    assert_eq!(ovs.all_ports(), [host_port]);
    assert!(!links().contains(&tap.to_string()));
}
