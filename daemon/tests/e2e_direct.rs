//! `type='direct'` (macvtap) NIC hot-plug end to end: the real daemon, real QEMU (TCG), the
//! test guest, a private network namespace with a veth pair (the macvtap sits on `veth0`, the
//! host side of the test talks through `veth1`).
//!
//! - Failures leave nothing: a source device that does not exist (refused naming it), a MAC
//!   another macvtap on the same lower device already has (the created macvtap is deleted),
//!   and a `netdev_add` QEMU refuses (after the macvtap was made and its fd passed with
//!   `getfd`): no macvtap, no fd set, no `getfd` name, no netdev, no device, no extra fd in
//!   QEMU.
//! - A bridge-mode macvtap plugged into the running guest comes up (`nic up`), answers ping
//!   and pings the peer; unplugged (after `DEVICE_DELETED`) the guest reports `nic down`, the
//!   macvtap is gone from the host and QEMU holds no fd for it.
//! - A passthrough macvtap takes over the lower device's MAC; unplugged, `veth0` has its own
//!   MAC back.

mod common;

use std::time::Duration;

use common::e2e::{fd_count, getfd_name_exists, post_json, qemu_objects, qmp, start, BOOT, CMD};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{
    ip, link_details, links, ping, runtime, with_netns, SerialConsole, TestDomain,
};

/// A `type='direct'` interface on `dev`.
fn direct_nic(mac: &str, dev: &str, mode: &str, extra: &str) -> String {
    format!(
        "<interface type='direct'><mac address='{mac}'/><source dev='{dev}' mode='{mode}'/>\
         <model type='virtio'/>{extra}</interface>"
    )
}

fn attach(d: &TestDaemon, vm: &str, xml: &str) -> (u16, Value) {
    post_json(
        d,
        &format!("/v1/domains/{vm}/devices"),
        &json!({ "xml": xml, "live": true }),
    )
}

fn detach(d: &TestDaemon, vm: &str, mac: &str) -> (u16, Value) {
    post_json(
        d,
        &format!("/v1/domains/{vm}/devices/detach"),
        &json!({
            "xml": direct_nic(mac, "veth0", "bridge", ""),
            "live": true,
            "timeout_secs": 30,
        }),
    )
}

fn row_of(d: &TestDaemon, vm: &str, mac: &str) -> Option<Value> {
    let (s, v) = d.get(&format!("/v1/domains/{vm}/interfaces"));
    assert_eq!(s, 200, "{v}");
    v["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mac"] == mac)
        .cloned()
}

/// The MAC of link `name` (`ip -o link show`).
fn mac_of(name: &str) -> String {
    let out = ip(&format!("-o link show dev {name}"));
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {out}"))
        .to_string()
}

/// Everything a plug could leave, to compare before and after: QEMU's fd sets, chardevs,
/// netdevs and devices, the namespace's links, QEMU's open fds.
type Leftovers = (Value, Vec<String>, String, Vec<String>, Vec<String>, usize);

fn leftovers(d: &TestDaemon, vm: &str, pid: u64) -> Leftovers {
    let (fdsets, chardevs, net, devs) = qemu_objects(d, vm);
    (fdsets, chardevs, net, devs, links(), fd_count(pid))
}

/// `getfd` names a direct NIC plugged as `netN` or `alias` could have left.
fn no_getfd_names(d: &TestDaemon, vm: &str, ids: &[&str]) {
    for id in ids {
        let name = format!("tapfd-{id}");
        assert!(
            !getfd_name_exists(d, vm, &name),
            "QEMU still has fd '{name}'"
        );
    }
}

#[test]
fn direct_nic_plugged_pings_faults_leave_nothing_and_unplug_removes_the_macvtap() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let _ = virtnet_testkit::guest();
    with_netns(move || {
        ip("link add veth0 type veth peer name veth1");
        ip("addr add 10.0.8.1/24 dev veth1");
        ip("link set veth0 up");
        ip("link set veth1 up");
        let veth0_mac = mac_of("veth0");
        let tmp = tempfile::tempdir().unwrap();
        let mut d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let serial = tmp.path().join("serial.sock");
        let (mac, mac2, bad) = (
            "52:54:00:00:08:02",
            "52:54:00:00:08:03",
            "52:54:00:00:08:09",
        );
        let mut dom = TestDomain::new("dir", &serial);
        dom.ips = vec![
            (mac.into(), "10.0.8.2/24".into()),
            (mac2.into(), "10.0.8.3/24".into()),
        ];
        assert_eq!(d.define(&dom.xml(virtnet_testkit::guest())).0, 201);
        let pid = start(&d, "dir");
        runtime().block_on(async {
            let mut con = SerialConsole::connect(&serial, Duration::from_secs(10))
                .await
                .unwrap();
            con.wait_ready(BOOT).await.unwrap();
            let clean = leftovers(&d, "dir", pid);

            // Failures leave nothing behind. A lower device the XML names that is missing, or
            // a MAC already on it, is the user's error (409 `refused`), not a daemon fault.
            let check = |what: &str, xml: &str, expect_in_message: &[&str]| {
                let before = leftovers(&d, "dir", pid);
                let (s, v) = attach(&d, "dir", xml);
                assert_eq!(s, 409, "{what}: {v}");
                assert_eq!(v["error"]["kind"], "refused", "{what}: {v}");
                let m = v["error"]["message"].as_str().unwrap();
                eprintln!("{what}: {m}");
                for e in expect_in_message {
                    assert!(m.contains(e), "{what}: {m}");
                }
                assert_eq!(leftovers(&d, "dir", pid), before, "{what} left something");
                assert!(row_of(&d, "dir", bad).is_none(), "{what}");
                no_getfd_names(&d, "dir", &["net0", "net1"]);
            };
            check(
                "a source device that does not exist",
                &direct_nic(bad, "nosuch0", "bridge", ""),
                &[
                    "host device 'nosuch0' does not exist",
                    "<source dev='nosuch0'/>",
                ],
            );
            assert_eq!(leftovers(&d, "dir", pid), clean);

            // Another macvtap on veth0 already has the MAC: ours is made, cannot come up, and
            // is deleted again; the other one stays.
            ip(&format!(
                "link add link veth0 name busymv0 address {bad} type macvtap mode bridge"
            ));
            ip("link set busymv0 up");
            let with_busy = links();
            check(
                "a MAC already on another macvtap of veth0",
                &direct_nic(bad, "veth0", "bridge", ""),
                &["already used by another macvtap", bad],
            );
            assert_eq!(links(), with_busy, "the other macvtap stays, ours is gone");
            ip("link del busymv0");
            assert_eq!(leftovers(&d, "dir", pid), clean);

            // QEMU refuses netdev_add (its id is taken) after the macvtap was made and its fd
            // passed: the fd is closed in QEMU and the macvtap deleted.
            qmp(
                &d,
                "dir",
                "netdev_add",
                json!({"type": "user", "id": "hostua-dup"}),
            )
            .unwrap();
            let (s, v) = attach(
                &d,
                "dir",
                &direct_nic(bad, "veth0", "bridge", "<alias name='ua-dup'/>"),
            );
            // QEMU refused the id the user's alias gives: the user's to fix.
            assert_eq!(
                (s, v["error"]["kind"].as_str()),
                (409, Some("refused")),
                "netdev_add fails: {v}"
            );
            let m = v["error"]["message"].as_str().unwrap();
            assert!(m.contains("netdev_add"), "{m}");
            no_getfd_names(&d, "dir", &["ua-dup"]);
            qmp(&d, "dir", "netdev_del", json!({"id": "hostua-dup"})).unwrap();
            assert_eq!(
                leftovers(&d, "dir", pid),
                clean,
                "a failed netdev_add left something"
            );

            // Plug a bridge-mode macvtap: the guest sees the NIC, answers and pings the peer.
            let (s, v) = attach(&d, "dir", &direct_nic(mac, "veth0", "bridge", ""));
            assert_eq!(s, 200, "{v}\n{}", d.log());
            let mv = v["interface"]["interface"].as_str().unwrap().to_string();
            let alias = v["interface"]["alias"].as_str().unwrap().to_string();
            let details = link_details(&mv).expect("the macvtap exists");
            assert!(details.contains("macvtap mode bridge"), "{details}");
            assert!(details.contains(&format!("{mv}@veth0")), "{details}");
            assert!(details.contains(mac), "{details}");
            let up = con.wait_nic_up(mac, CMD).await.unwrap();
            assert!(up.ends_with("10.0.8.2/24"), "{up}");
            common::e2e::wait_ping("10.0.8.2", CMD);
            let (out, rc) = con.run("ping -c 3 -W 2 10.0.8.1", CMD).await.unwrap();
            assert_eq!(rc, 0, "guest ping through the macvtap failed:\n{out}");
            assert_eq!(row_of(&d, "dir", mac).unwrap()["alias"], alias.as_str());
            let (fdsets, ..) = qemu_objects(&d, "dir");
            assert_eq!(fdsets, clean.0, "getfd passes a named fd, not an fd set");
            assert!(fd_count(pid) > clean.5, "QEMU holds the macvtap's fd");

            // Unplug: DEVICE_DELETED, the guest reports the removal, the macvtap goes and
            // QEMU holds nothing for it.
            let (s, v) = detach(&d, "dir", mac);
            assert_eq!(s, 200, "{v}\n{}", d.log());
            assert_eq!(v["pending"], false, "{v}");
            con.wait_line(
                |l| l.starts_with("virtnet-guest: nic down ") && l.contains(mac),
                CMD,
            )
            .await
            .unwrap();
            assert!(!links().contains(&mv), "macvtap {mv} left behind");
            assert!(row_of(&d, "dir", mac).is_none());
            no_getfd_names(&d, "dir", &[alias.as_str()]);
            assert_eq!(
                leftovers(&d, "dir", pid),
                clean,
                "the unplug left something"
            );
            assert!(!ping("10.0.8.2", 1).0);

            // Passthrough: the macvtap (and so veth0) takes the guest's MAC; unplugged, veth0
            // gets its own back.
            let (s, v) = attach(&d, "dir", &direct_nic(mac2, "veth0", "passthrough", ""));
            assert_eq!(s, 200, "{v}\n{}", d.log());
            let mv2 = v["interface"]["interface"].as_str().unwrap().to_string();
            let details = link_details(&mv2).expect("the macvtap exists");
            assert!(details.contains("macvtap mode passthru"), "{details}");
            let up = con.wait_nic_up(mac2, CMD).await.unwrap();
            assert!(up.ends_with("10.0.8.3/24"), "{up}");
            common::e2e::wait_ping("10.0.8.3", CMD);
            let (s, v) = detach(&d, "dir", mac2);
            assert_eq!(s, 200, "{v}\n{}", d.log());
            assert_eq!(v["pending"], false, "{v}");
            assert!(!links().contains(&mv2), "macvtap {mv2} left behind");
            assert_eq!(mac_of("veth0"), veth0_mac, "veth0's own MAC is back");
            assert_eq!(
                leftovers(&d, "dir", pid),
                clean,
                "the unplug left something"
            );

            let (s, v) = d.post("/v1/domains/dir/destroy");
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["leftovers"], json!([]), "{v}");
            assert_eq!(links(), ["lo", "veth0", "veth1"]);
        });
        d.stop();
    });
}
