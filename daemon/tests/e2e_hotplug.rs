//! NIC hot-plug end to end: the real daemon, real QEMU (TCG), the test guest, a private
//! network namespace.
//!
//! - A bridge NIC plugged into a running guest comes up (`nic up`) and answers ping; its link
//!   can be set down and up with update-device; unplugged, the guest reports `nic down` and the
//!   host tap is gone.
//! - Failures at plug steps (a bridge that does not exist, a tap name in use, a netdev id or a
//!   PCI slot QEMU has already) leave nothing: no fd set, getfd name, chardev, netdev, device,
//!   tap, or QEMU fd.
//! - A guest that does not release a NIC (vCPUs paused): the detach answers "pending", the
//!   removal shows in domiflist, a second detach is refused, and the removal completes by
//!   itself when the guest lets go.
//! - 100 attach/detach cycles leave QEMU's and the daemon's fd counts where they were.
//! - The daemon killed (-9) while a VM with a hot-plugged NIC runs: restarted, it lists the
//!   VM and both NICs, and detaching the hot-plugged NIC cleans up its tap.

mod common;

use std::path::Path;
use std::time::Duration;

use common::e2e::{
    destroy_leaving_nothing, fd_count, getfd_name_exists, post_json, qemu_objects, qmp,
    ready_console, start, wait_until, CMD,
};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{
    add_bridge, bridge_nic, ip, links, ping, runtime, with_netns, SerialConsole, TestDomain,
};

/// Runs `f` in a private network namespace holding bridge `br0` (with the address `br0_addr`
/// when given) and a virtnetd using the e2e QEMU, its state in a temporary dir (passed to
/// `f`); stops the daemon afterwards. Returns at once (the test is skipped) when there is no
/// QEMU or no root.
fn with_daemon(
    br0_addr: Option<&'static str>,
    f: impl FnOnce(&mut TestDaemon, &Path) + Send + 'static,
) {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let _ = virtnet_testkit::guest();
    with_netns(move || {
        add_bridge("br0", br0_addr);
        let tmp = tempfile::tempdir().unwrap();
        let mut d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        f(&mut d, tmp.path());
        d.stop();
    });
}

fn attach(d: &TestDaemon, vm: &str, xml: &str) -> (u16, Value) {
    post_json(
        d,
        &format!("/v1/domains/{vm}/devices"),
        &json!({ "xml": xml, "live": true }),
    )
}

fn detach(d: &TestDaemon, vm: &str, mac: &str, timeout: u64) -> (u16, Value) {
    post_json(
        d,
        &format!("/v1/domains/{vm}/devices/detach"),
        &json!({
            "xml": format!("<interface type='bridge'><mac address='{mac}'/><source bridge='x'/></interface>"),
            "live": true,
            "timeout_secs": timeout,
        }),
    )
}

fn iface_rows(d: &TestDaemon, vm: &str) -> Vec<Value> {
    let (s, v) = d.get(&format!("/v1/domains/{vm}/interfaces"));
    assert_eq!(s, 200, "{v}");
    v["interfaces"].as_array().unwrap().clone()
}

fn row_of(d: &TestDaemon, vm: &str, mac: &str) -> Option<Value> {
    iface_rows(d, vm).into_iter().find(|r| r["mac"] == mac)
}

/// A domain for the test guest whose cmdline gives each MAC of `ips` its address, without NICs.
fn guest_domain(name: &str, serial: &Path, ips: &[(&str, &str)]) -> String {
    ips.iter()
        .fold(TestDomain::new(name, serial), |dom, (m, a)| dom.ip(m, a))
        .xml(virtnet_testkit::guest())
}

/// Waits until the guest reports the NIC with `mac` gone.
async fn wait_nic_down(con: &mut SerialConsole, mac: &str) {
    con.wait_line(
        |l| l.starts_with("virtnet-guest: nic down ") && l.contains(mac),
        CMD,
    )
    .await
    .unwrap();
}

/// Everything a failed plug could leave, to compare before and after.
fn leftovers(
    d: &TestDaemon,
    vm: &str,
    pid: u64,
) -> (Value, Vec<String>, String, Vec<String>, Vec<String>, usize) {
    let (fdsets, chardevs, net, devs) = qemu_objects(d, vm);
    (fdsets, chardevs, net, devs, links(), fd_count(pid))
}

#[test]
fn bridge_nic_plugged_pings_faults_leave_nothing_and_unplug_cleans_up() {
    with_daemon(Some("10.0.4.1/24"), |d, base| {
        let serial = base.join("serial.sock");
        let (mac, mac2) = ("52:54:00:00:04:02", "52:54:00:00:04:03");
        let xml = guest_domain(
            "hp",
            &serial,
            &[(mac, "10.0.4.2/24"), (mac2, "10.0.4.3/24")],
        );
        assert_eq!(d.define(&xml).0, 201);
        let pid = start(d, "hp");
        runtime().block_on(async {
            let mut con = ready_console(&serial).await;

            // Plug: the guest sees the NIC and answers ping over it.
            let (s, v) = attach(d, "hp", &bridge_nic(mac, "br0"));
            assert_eq!(s, 200, "{v}\n{}", d.log());
            let tap = v["interface"]["interface"].as_str().unwrap().to_string();
            let alias = v["interface"]["alias"].as_str().unwrap().to_string();
            assert!(ip(&format!("-d link show {tap}")).contains("master br0"));
            let up = con.wait_nic_up(mac, CMD).await.unwrap();
            assert!(up.ends_with("10.0.4.2/24"), "{up}");
            common::e2e::wait_ping("10.0.4.2", CMD);
            assert_eq!(row_of(d, "hp", mac).unwrap()["alias"], alias.as_str());
            let (_, x) = d.get("/v1/domains/hp/xml");
            assert!(x["xml"].as_str().unwrap().contains(&format!("<alias name='{alias}'/>")));
            let (_, x) = d.get("/v1/domains/hp/xml?inactive=true");
            assert!(
                !x["xml"].as_str().unwrap().contains(&format!("<mac address='{mac}'/>")),
                "live only"
            );

            // update-device: link down, then up.
            let upd = |state: &str| {
                post_json(
                    d,
                    "/v1/domains/hp/devices/update",
                    &json!({"xml": format!("<interface type='bridge'><mac address='{mac}'/><source bridge='br0'/><link state='{state}'/></interface>"), "live": true}),
                )
            };
            let (s, v) = upd("down");
            assert_eq!(s, 200, "{v}");
            assert!(!ping("10.0.4.2", 2).0, "answers with its link down");
            assert_eq!(row_of(d, "hp", mac).unwrap()["link"], "down");
            assert_eq!(upd("up").0, 200);
            common::e2e::wait_ping("10.0.4.2", CMD);

            // Bad input on the running VM: refused before anything changes.
            let (_, live_before) = d.get("/v1/domains/hp/xml");
            let status_before = std::fs::read(base.join("run/hp.json")).unwrap();
            let objects_before = leftovers(d, "hp", pid);
            for (xml, status, kind) in [
                ("<interface type='bridge'", 400, "invalid_xml"),
                (
                    "<interface type='udp'><mac address='52:54:00:00:04:09'/><source address='127.0.0.1' port='5555'><local address='127.0.0.1' port='5556'/></source></interface>",
                    400,
                    "not_hotpluggable",
                ),
                ("<disk type='file' device='disk'/>", 400, "not_hotpluggable"),
            ] {
                let (s, v) = attach(d, "hp", xml);
                assert_eq!((s, v["error"]["kind"].as_str()), (status, Some(kind)), "{xml}: {v}");
            }
            let (s, v) = detach(d, "hp", "52:54:00:00:04:99", 5);
            assert_eq!(s, 404, "{v}");
            assert_eq!(v["error"]["kind"], "no_such_interface");
            let (s, v) = attach(d, "nope", &bridge_nic("52:54:00:00:04:09", "br0"));
            assert_eq!((s, v["error"]["kind"].as_str()), (404, Some("no_such_vm")), "{v}");
            let (s, v) = d.call("POST", "/v1/domains/hp/devices", Some("application/json"), "{\"xml\": ");
            assert_eq!(s, 400, "{v}");
            assert_eq!(d.get("/v1/domains/hp/xml").1, live_before);
            assert_eq!(std::fs::read(base.join("run/hp.json")).unwrap(), status_before);
            assert_eq!(leftovers(d, "hp", pid), objects_before);

            // Failures at plug steps leave nothing behind. A host object the XML names that
            // is missing or taken is the user's error (409 `refused`), not a daemon fault.
            let check = |what: &str, xml: &str, expect_in_message: &str| {
                let before = leftovers(d, "hp", pid);
                let (s, v) = attach(d, "hp", xml);
                assert_eq!(s, 409, "{what}: {v}");
                assert_eq!(v["error"]["kind"], "refused", "{what}: {v}");
                let m = v["error"]["message"].as_str().unwrap();
                assert!(m.contains(expect_in_message), "{what}: {m}");
                eprintln!("{what}: {m}");
                assert_eq!(leftovers(d, "hp", pid), before, "{what} left something");
                assert!(row_of(d, "hp", "52:54:00:00:04:09").is_none());
                m.to_string()
            };
            check(
                "a bridge that does not exist",
                &bridge_nic("52:54:00:00:04:09", "nobr0"),
                "nobr0",
            );
            ip("tuntap add dev busy0 mode tap");
            let busy_links = links();
            check(
                "a tap name in use",
                "<interface type='bridge'><mac address='52:54:00:00:04:09'/><source bridge='br0'/>\
                 <target dev='busy0'/><model type='virtio'/></interface>",
                "busy0",
            );
            assert_eq!(links(), busy_links, "the existing tap stays");
            ip("link del busy0");
            let before = leftovers(d, "hp", pid);
            qmp(d, "hp", "netdev_add", json!({"type": "user", "id": "hostua-dup"})).unwrap();
            let with_blocker = leftovers(d, "hp", pid);
            let (s, v) = attach(
                d,
                "hp",
                "<interface type='bridge'><mac address='52:54:00:00:04:09'/><source bridge='br0'/>\
                 <model type='virtio'/><alias name='ua-dup'/></interface>",
            );
            // QEMU refused the id the user's alias gives (GenericError on netdev_add) and
            // nothing was left behind: the user's to fix.
            assert_eq!(s, 409, "netdev_add fails: {v}");
            assert_eq!(v["error"]["kind"], "refused", "QEMU refused the user's NIC: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains("netdev_add"), "{v}");
            assert_eq!(leftovers(d, "hp", pid), with_blocker, "a failed netdev_add left something");
            assert!(!getfd_name_exists(d, "hp", "tapfd-ua-dup"));
            qmp(d, "hp", "netdev_del", json!({"id": "hostua-dup"})).unwrap();
            assert_eq!(leftovers(d, "hp", pid), before);
            qmp(
                d,
                "hp",
                "device_add",
                json!({"driver": "virtio-serial-pci", "id": "blocker", "addr": "0x1e"}),
            )
            .unwrap();
            let with_blocker = leftovers(d, "hp", pid);
            let (s, v) = attach(
                d,
                "hp",
                "<interface type='bridge'><mac address='52:54:00:00:04:09'/><source bridge='br0'/>\
                 <model type='virtio'/><address type='pci' domain='0x0000' bus='0x00' slot='0x1e' function='0x0'/></interface>",
            );
            // The guest PCI slot the user asked for is taken: the user's to fix.
            assert_eq!((s, v["error"]["kind"].as_str()), (409, Some("refused")), "device_add fails: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains("device_add"), "{v}");
            assert_eq!(leftovers(d, "hp", pid), with_blocker, "a failed device_add left something");
            assert!(!getfd_name_exists(d, "hp", "tapfd-net1"));

            // Unplug: the guest reports the removal, the tap goes.
            let (s, v) = detach(d, "hp", mac, 20);
            assert_eq!(s, 200, "{v}\n{}", d.log());
            assert_eq!(v["pending"], false);
            wait_nic_down(&mut con, mac).await;
            assert!(!links().contains(&tap), "tap {tap} left behind");
            assert!(row_of(d, "hp", mac).is_none());
            assert!(!ping("10.0.4.2", 1).0);

            // A guest that does not let go (vCPUs paused): the removal stays pending.
            let (s, v) = attach(d, "hp", &bridge_nic(mac2, "br0"));
            assert_eq!(s, 200, "{v}");
            let tap2 = v["interface"]["interface"].as_str().unwrap().to_string();
            con.wait_nic_up(mac2, CMD).await.unwrap();
            qmp(d, "hp", "stop", json!({})).unwrap();
            let (s, v) = detach(d, "hp", mac2, 1);
            assert_eq!(s, 202, "{v}");
            assert_eq!(v["pending"], true);
            assert!(v["message"].as_str().unwrap().contains("pending"), "{v}");
            assert_eq!(row_of(d, "hp", mac2).unwrap()["removal_pending"], true);
            let status: Value = serde_json::from_str(
                &std::fs::read_to_string(base.join("run/hp.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(
                status["pending_detaches"]["pending"][0]["plan"]["mac"], mac2,
                "the live status records the pending detach: {status}"
            );
            let (s, v) = detach(d, "hp", mac2, 1);
            assert_eq!(s, 409, "{v}");
            assert_eq!(v["error"]["kind"], "removal_pending", "{v}");
            assert!(links().contains(&tap2), "the tap stays while QEMU has the NIC");
            qmp(d, "hp", "cont", json!({})).unwrap();
            wait_until("the pending removal to complete", Duration::from_secs(30), || {
                row_of(d, "hp", mac2).is_none()
            });
            assert!(!links().contains(&tap2), "tap {tap2} left behind");
            destroy_leaving_nothing(d, "hp");
        });
    });
}

#[test]
fn hundred_attach_detach_cycles_keep_fd_counts() {
    with_daemon(None, |d, base| {
        let serial = base.join("serial.sock");
        assert_eq!(d.define(&guest_domain("cyc", &serial, &[])).0, 201);
        let pid = start(d, "cyc");
        runtime().block_on(ready_console(&serial));
        let mac = "52:54:00:00:05:02";
        let cycle = |n: usize| {
            let (s, v) = attach(d, "cyc", &bridge_nic(mac, "br0"));
            assert_eq!(s, 200, "cycle {n}: {v}");
            let (s, v) = detach(d, "cyc", mac, 30);
            assert_eq!(s, 200, "cycle {n}: {v}");
        };
        // One cycle first: what is opened once (and kept) is not a leak.
        cycle(0);
        let links_before = links();
        let (q0, d0) = (fd_count(pid), fd_count(u64::from(d.pid())));
        for n in 1..=100 {
            cycle(n);
        }
        assert_eq!(links(), links_before);
        assert_eq!(fd_count(pid), q0, "QEMU's fds");
        assert_eq!(fd_count(u64::from(d.pid())), d0, "the daemon's fds");
        assert_eq!(d.post("/v1/domains/cyc/destroy").0, 200);
    });
}

#[test]
fn daemon_killed_with_a_hotplugged_nic_recovers_and_detaches() {
    with_daemon(Some("10.0.7.1/24"), |d, base| {
        let serial = base.join("serial.sock");
        let (boot_mac, mac) = ("52:54:00:00:07:02", "52:54:00:00:07:03");
        let dom = TestDomain::new("rec", &serial)
            .nic(&bridge_nic(boot_mac, "br0"), boot_mac, Some("10.0.7.2/24"))
            .ip(mac, "10.0.7.3/24");
        assert_eq!(d.define(&dom.xml(virtnet_testkit::guest())).0, 201);
        let pid = start(d, "rec");
        runtime().block_on(async {
            let mut con = ready_console(&serial).await;
            let (s, v) = attach(d, "rec", &bridge_nic(mac, "br0"));
            assert_eq!(s, 200, "{v}");
            let tap = v["interface"]["interface"].as_str().unwrap().to_string();
            con.wait_nic_up(mac, CMD).await.unwrap();

            d.kill9();
            assert!(common::e2e::alive(pid));
            d.restart();
            let (_, info) = d.get("/v1/domains/rec");
            assert_eq!(info["state"], "running", "{info}\n{}", d.log());
            let (_, list) = d.get("/v1/domains");
            assert_eq!(list["domains"][0]["state"], "running");
            let rows = iface_rows(d, "rec");
            assert_eq!(rows.len(), 2, "{rows:?}");
            assert_eq!(rows[1]["mac"], mac);
            assert_eq!(rows[1]["interface"], tap.as_str());
            common::e2e::wait_ping("10.0.7.3", CMD);

            let (s, v) = detach(d, "rec", mac, 20);
            assert_eq!(s, 200, "{v}\n{}", d.log());
            wait_nic_down(&mut con, mac).await;
            assert!(!links().contains(&tap), "tap {tap} left behind");
            common::e2e::wait_ping("10.0.7.2", CMD);
            destroy_leaving_nothing(d, "rec");
            assert_eq!(links(), vec!["br0".to_string(), "lo".to_string()]);
        });
    });
}
