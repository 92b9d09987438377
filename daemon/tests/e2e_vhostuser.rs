//! One owner per vhost-user socket, with real QEMU: 20 live attaches racing for one socket
//! across two running VMs (10 each) give one winner; the others are refused naming it, and
//! nothing of theirs is left in QEMU (no chardev, no netdev) or in the registry. A second NIC
//! on the socket is refused in the owner VM and in the other one. Moving the NIC to another
//! socket needs an explicit replug, which keeps its MAC, alias and PCI address (the guest sees
//! the link go down and up) and frees the old socket. virtnet-vswitch is the back end (its
//! ports listen: QEMU connects, `mode='client'`).

mod common;

use std::sync::{Arc, Barrier};

use common::e2e::{
    chardevs, destroy_leaving_nothing, net_info, post_json, ready_console, start, CMD,
};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{runtime, vhostuser_nic, with_netns, TestDomain, VSwitch, VsPort};

/// A vhost-user NIC on `path`; the back end (the switch) listens there.
fn vhost_nic(mac: &str, path: &std::path::Path) -> String {
    vhostuser_nic(mac, path, "client")
}

fn live_iface(d: &TestDaemon, vm: &str, mac: &str) -> String {
    let (_, v) = d.get(&format!("/v1/domains/{vm}/xml"));
    let xml = v["xml"].as_str().unwrap();
    let at = xml
        .find(&format!("<mac address='{mac}'/>"))
        .expect("the NIC is live");
    let start = xml[..at].rfind("<interface").unwrap();
    let end = at + xml[at..].find("</interface>").unwrap();
    xml[start..end].to_string()
}

#[test]
fn vhost_user_socket_has_one_owner_live_and_replug_moves_it() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let tmp = virtnet_testkit::traversable_tempdir();
        let (p1, p2) = (tmp.path().join("vu1.sock"), tmp.path().join("vu2.sock"));
        let sw_dir = virtnet_testkit::traversable_tempdir();
        let ports = [
            VsPort::new("p1", &p1, "server"),
            VsPort::new("p2", &p2, "server"),
        ];
        let sw = VSwitch::start(sw_dir.path(), &ports, None);
        let d = Arc::new(TestDaemon::start_with(tmp.path(), Some(&qemu)));
        let mut serials = Vec::new();
        for vm in ["va", "vb"] {
            let serial = tmp.path().join(format!("{vm}.sock"));
            let mut dom = TestDomain::new(vm, &serial);
            dom.shared_memory = true;
            assert_eq!(d.define(&dom.xml(guest)).0, 201);
            start(&d, vm);
            serials.push(serial);
        }
        let base: Vec<(Vec<String>, String)> = ["va", "vb"]
            .iter()
            .map(|vm| (chardevs(&d, vm), net_info(&d, vm)))
            .collect();

        // 20 racing live attaches on one socket, 10 per VM.
        let barrier = Arc::new(Barrier::new(20));
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (d, b, p1) = (d.clone(), barrier.clone(), p1.clone());
                std::thread::spawn(move || {
                    let vm = if i % 2 == 0 { "va" } else { "vb" };
                    let mac = format!("52:54:00:00:08:{i:02x}");
                    b.wait();
                    let r = post_json(
                        &d,
                        &format!("/v1/domains/{vm}/devices"),
                        &json!({ "xml": vhost_nic(&mac, &p1), "live": true }),
                    );
                    (vm, mac, r)
                })
            })
            .collect();
        let results: Vec<(&str, String, (u16, Value))> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter(|r| r.2 .0 == 200).collect();
        assert_eq!(winners.len(), 1, "{results:?}\n{}", d.log());
        let (winner, mac) = (winners[0].0, winners[0].1.clone());
        let loser = if winner == "va" { "vb" } else { "va" };
        let alias = winners[0].2 .1["interface"]["alias"]
            .as_str()
            .unwrap()
            .to_string();
        for (_, _, (s, v)) in results.iter().filter(|r| r.2 .0 != 200) {
            assert_eq!(*s, 409, "{v}");
            assert_eq!(v["error"]["kind"], "resource_in_use", "{v}");
            let m = v["error"]["message"].as_str().unwrap();
            assert!(
                m.contains(&format!("VM '{winner}'")) && m.contains(&mac),
                "{m}"
            );
        }
        // Nothing of the losers in QEMU: the winner has one chardev and netdev more, the
        // other VM none.
        let (wi, li) = if winner == "va" { (0, 1) } else { (1, 0) };
        let mut want = base[wi].0.clone();
        want.push(format!("char{alias}"));
        want.sort();
        assert_eq!(chardevs(&d, winner), want);
        assert_eq!(net_info(&d, winner).matches("type=vhost-user").count(), 1);
        assert_eq!(chardevs(&d, loser), base[li].0);
        assert_eq!(net_info(&d, loser), base[li].1);
        // Nor in the registry: the socket belongs to the winner's NIC only.
        let (s, v) = d.define(&common::domain_xml(
            "vc",
            &vhost_nic("52:54:00:00:08:99", &p1),
        ));
        assert_eq!(s, 409, "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("VM '{winner}'")));
        // A second NIC on the socket: refused in the owner VM and in the other one.
        for vm in [winner, loser] {
            let (s, v) = post_json(
                &d,
                &format!("/v1/domains/{vm}/devices"),
                &json!({ "xml": vhost_nic("52:54:00:00:08:98", &p1), "live": true }),
            );
            assert_eq!(s, 409, "{vm}: {v}");
            assert_eq!(v["error"]["kind"], "resource_in_use");
        }

        runtime().block_on(async {
            let mut con = ready_console(&serials[wi]).await;
            con.wait_nic_up(&mac, CMD).await.unwrap();
            assert_eq!(sw.port("p1")["connected"], true, "the winner's NIC is on p1");
            let before = live_iface(&d, winner, &mac);
            let upd = |replug: bool| {
                post_json(
                    &d,
                    &format!("/v1/domains/{winner}/devices/update"),
                    &json!({ "xml": vhost_nic(&mac, &p2), "live": true, "replug": replug, "timeout_secs": 30 }),
                )
            };
            // Without --replug: refused, saying why and what to do.
            let (s, v) = upd(false);
            assert_eq!(s, 400, "{v}");
            let m = v["error"]["message"].as_str().unwrap();
            assert!(m.contains("--replug") && m.contains("hotswap"), "{m}");
            assert_eq!(live_iface(&d, winner, &mac), before);
            // With it: same MAC, alias and guest address on the new socket; a link flap.
            let seen = con.lines().len();
            let (s, v) = upd(true);
            assert_eq!(s, 200, "{v}\n{}", d.log());
            assert_eq!(v["replugged"], true);
            let after = live_iface(&d, winner, &mac);
            assert_eq!(after, before.replace(&p1.display().to_string(), &p2.display().to_string()));
            let (down, _) = con
                .wait_line_from(seen, |l| l.starts_with("virtnet-guest: nic down") && l.contains(&mac), CMD)
                .await
                .unwrap();
            con.wait_line_from(down, |l| l.starts_with("virtnet-guest: nic up") && l.contains(&mac), CMD)
                .await
                .unwrap();
        });
        // The old socket is free, the new one taken.
        let (s, v) = post_json(
            &d,
            &format!("/v1/domains/{loser}/devices"),
            &json!({ "xml": vhost_nic("52:54:00:00:08:97", &p1), "live": true }),
        );
        assert_eq!(s, 200, "{v}");
        let (s, _) = d.define(&common::domain_xml(
            "vc",
            &vhost_nic("52:54:00:00:08:99", &p2),
        ));
        assert_eq!(s, 409);
        for vm in ["va", "vb"] {
            destroy_leaving_nothing(&d, vm);
        }
        // Stopped VMs hold nothing: both sockets are free.
        let (s, v) = d.define(&common::domain_xml(
            "vc",
            &format!(
                "{}{}",
                vhost_nic("52:54:00:00:08:99", &p1),
                vhost_nic("52:54:00:00:08:9a", &p2)
            ),
        ));
        assert_eq!(s, 201, "{v}");
    });
}
