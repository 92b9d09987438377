//! Switch networks end to end (real virtnetd, QEMU 7.2 under TCG, the test guest, the real
//! `virtnet-vswitch`, in a private network namespace):
//!
//! - `net-define` / `net-start` a `virtnet-vswitch` network with an uplink tap (10.20.0.1/24);
//! - the owner registry holds the sockets the daemon chose;
//! - two guests with `<interface type='network'><source network='sw0'/>` ping each other;
//! - a third guest, started without NICs, gets a network NIC hot-plugged and pings both;
//! - a guest pings the host's address on the uplink tap;
//! - the switch is SIGKILLed: virtnetd restarts it with the same ports and the pings resume
//!   (QEMU not restarted);
//! - `net-destroy` is refused while VMs are on the network; after the VMs stop and the
//!   network is destroyed nothing is left: no switch process, tap, socket or file.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::e2e::{post_json, start, BOOT, CMD};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{links, runtime, with_netns, SerialConsole, TestDomain};

const NET_XML: &str = "<network><name>sw0</name><virtualport type='virtnet-vswitch'/>\
    <uplink dev='sw0-up'><ip address='10.20.0.1' prefix='24'/></uplink></network>";

fn net_nic(mac: &str) -> String {
    format!(
        "<interface type='network'><mac address='{mac}'/><source network='sw0'/>\
         <model type='virtio'/></interface>"
    )
}

fn net_info(d: &TestDaemon) -> Value {
    let (s, v) = d.get("/v1/networks/sw0");
    assert_eq!(s, 200, "{v}");
    v
}

/// The network's switch runs confined (`virtnet-switch`, no capability, NoNewPrivs, seccomp,
/// QEMU's group as its only supplementary group), its directory is
/// `virtnet-switch:virtnet-qemu 2770` and its control socket owner-only.
fn assert_switch_confined(d: &TestDaemon, base: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let pid = net_info(d)["pid"].as_i64().unwrap() as u32;
    let c = virtnet_testkit::assert_confined(pid, "the network's switch");
    let user = virtnet_host::lookup_user("virtnet-switch")
        .unwrap()
        .unwrap();
    let qemu = virtnet_host::lookup_user("virtnet-qemu").unwrap().unwrap();
    assert_eq!(c.uids, vec![user.uid; 4], "{c:?}");
    assert_eq!(c.groups, vec![qemu.gid], "{c:?}");
    let dir = std::fs::metadata(base.join("run/networks/sw0")).unwrap();
    assert_eq!(
        (dir.uid(), dir.gid(), dir.mode() & 0o7777),
        (user.uid, qemu.gid, 0o2770)
    );
    let control = std::fs::metadata(base.join("run/networks/sw0/control.sock")).unwrap();
    assert_eq!(control.mode() & 0o777, 0o600);
    // The uplink tap came from virtnetd as an fd: the switch never opened it.
    let argv = virtnet_testkit::leak::process_argv(pid).join(" ");
    assert!(argv.contains("--uplink-fd "), "{argv}");
}

/// The switch's own view (control socket): port name → counters.
fn switch_ports(control: &str) -> Value {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(control).unwrap();
    s.write_all(b"{\"cmd\":\"list-ports\"}\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap()
}

fn pid_alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Pings `addr` from the guest until one answer (up to `tries` seconds).
async fn guest_ping(con: &mut SerialConsole, addr: &str, tries: u32) {
    let cmd = format!(
        "i=0; while [ $i -lt {tries} ]; do ping -c 1 -W 1 {addr} >/dev/null && break; \
         i=$((i+1)); done; ping -c 2 -W 2 {addr}"
    );
    let (out, rc) = con
        .run(&cmd, Duration::from_secs(u64::from(tries) * 2 + 30))
        .await
        .unwrap();
    assert_eq!(rc, 0, "ping {addr}: {out}");
}

#[test]
fn switch_network_guests_ping_hotplug_uplink_restart_and_nothing_left() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let vswitch = common::vswitch();
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        virtnet_testkit::ip("link set lo up");
        let tmp = virtnet_testkit::traversable_tempdir();
        assert!(vswitch.is_file());
        let d = TestDaemon::start_with(tmp.path(), Some(&qemu));

        // The network.
        let v = common::e2e::define_and_start_network(&d, NET_XML, "sw0");
        assert_eq!(v["state"], "active");
        assert!(links().contains(&"sw0-up".to_string()), "{:?}", links());
        assert_switch_confined(&d, tmp.path());

        // Without shared memory: refused with conf's validation message.
        let serial = tmp.path().join("bad.sock");
        let bad = TestDomain::new("bad", &serial).nic(
            &net_nic("52:54:00:20:00:09"),
            "52:54:00:20:00:09",
            None,
        );
        assert_eq!(d.define(&bad.xml(guest)).0, 201);
        let (s, v) = d.post("/v1/domains/bad/start");
        assert_eq!(s, 400, "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("'interface' requires shared memory"), "{m}");
        assert!(net_info(&d)["ports"].as_array().unwrap().is_empty());

        let vms = [
            ("va", "52:54:00:20:00:01", "10.20.0.11/24"),
            ("vb", "52:54:00:20:00:02", "10.20.0.12/24"),
            ("vc", "52:54:00:20:00:03", "10.20.0.13/24"),
        ];
        let mut serials = Vec::new();
        for (i, (vm, mac, ip)) in vms.iter().enumerate() {
            let serial = tmp.path().join(format!("{vm}.sock"));
            let mut dom = TestDomain::new(vm, &serial);
            dom.shared_memory = true;
            if i < 2 {
                dom = dom.nic(&net_nic(mac), mac, Some(ip));
            } else {
                // The third guest gets its NIC hot-plugged; its address is known already.
                dom.ips.push((mac.to_string(), ip.to_string()));
            }
            let (s, v) = d.define(&dom.xml(guest));
            assert_eq!(s, 201, "{v}");
            serials.push(serial);
        }
        let d = Arc::new(d);

        runtime().block_on(async {
            // Each console is connected while its VM starts (QEMU drops output while no
            // client is connected).
            let mut cons = Vec::new();
            for ((vm, _, _), serial) in vms.iter().zip(&serials) {
                let d2 = d.clone();
                let vm = vm.to_string();
                let started = tokio::task::spawn_blocking(move || start(&d2, &vm));
                let con = SerialConsole::connect(serial, Duration::from_secs(30));
                let (con, started) = tokio::join!(con, started);
                started.unwrap();
                cons.push(con.unwrap());
            }
            let info = net_info(&d);
            assert_eq!(info["ports"].as_array().unwrap().len(), 2, "{info}");
            // Resolved at start: shown as defined.
            assert_shown_as_network(&d, "va", "52:54:00:20:00:01", "va-525400200001");
            let control = info["control"].as_str().unwrap().to_string();
            for c in cons.iter_mut() {
                c.wait_ready(BOOT).await.unwrap();
            }
            // The owner registry covers the sockets the daemon chose: another VM's plain
            // vhost-user NIC on one of them is refused, naming the holder.
            let taken = info["ports"][0]["socket"].as_str().unwrap().to_string();
            let (s, v) = d.define(&common::domain_xml(
                "vx",
                &common::vhostuser_nic("52:54:00:20:00:99", &taken),
            ));
            assert_eq!(s, 409, "{v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains("VM 'va'"),
                "{v}"
            );
            for (i, (_, mac, _)) in vms.iter().take(2).enumerate() {
                cons[i].wait_nic_up(mac, CMD).await.unwrap();
            }
            // Two guests on one switch.
            guest_ping(&mut cons[0], "10.20.0.12", 20).await;
            guest_ping(&mut cons[1], "10.20.0.11", 20).await;
            // The host through the uplink tap.
            guest_ping(&mut cons[0], "10.20.0.1", 20).await;
            let (ok, out) = virtnet_testkit::ping("10.20.0.12", 2);
            assert!(ok, "host -> guest over the uplink: {out}");

            // Hot-plug: the third guest's NIC joins the switch.
            let (s, v) = post_json(
                &d,
                "/v1/domains/vc/devices",
                &json!({ "xml": net_nic(vms[2].1), "live": true }),
            );
            assert_eq!(s, 200, "{v}\n{}", d.log());
            cons[2].wait_nic_up(vms[2].1, CMD).await.unwrap();
            guest_ping(&mut cons[2], "10.20.0.11", 20).await;
            guest_ping(&mut cons[2], "10.20.0.12", 20).await;
            let ports = switch_ports(&control);
            let vc_port = ports["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"].as_str().unwrap().starts_with("vc-"))
                .expect("vc's port on the switch")
                .clone();
            assert!(
                vc_port["counters"]["rx_packets"].as_u64().unwrap() > 0,
                "{vc_port}"
            );

            // Kill the switch: virtnetd restarts it with its ports; pings resume, QEMU stays.
            let old = net_info(&d)["pid"].as_i64().unwrap();
            let qemu_pids: Vec<Value> = ["va", "vb", "vc"]
                .iter()
                .map(|vm| d.get(&format!("/v1/domains/{vm}")).1["pid"].clone())
                .collect();
            // SAFETY: kill(2) on the switch's pid.
            unsafe { libc::kill(old as i32, libc::SIGKILL) };
            common::e2e::wait_until("the switch restarted", Duration::from_secs(20), || {
                let i = net_info(&d);
                i["pid"].as_i64().is_some_and(|p| p != old) && i["restarts"] == 1
            });
            let info = net_info(&d);
            assert_eq!(info["ports"].as_array().unwrap().len(), 3, "{info}");
            // The restarted switch is confined as the first was.
            assert_switch_confined(&d, tmp.path());
            guest_ping(&mut cons[0], "10.20.0.12", 30).await;
            guest_ping(&mut cons[2], "10.20.0.11", 30).await;
            guest_ping(&mut cons[1], "10.20.0.1", 30).await;
            let now: Vec<Value> = ["va", "vb", "vc"]
                .iter()
                .map(|vm| d.get(&format!("/v1/domains/{vm}")).1["pid"].clone())
                .collect();
            assert_eq!(now, qemu_pids, "QEMU was not restarted");

            // Unplug the hot-plugged NIC (named by its type as defined, as virsh users do):
            // its port goes.
            let (s, v) = post_json(
                &d,
                "/v1/domains/vc/devices/detach",
                &json!({ "type": "network", "mac": vms[2].1, "live": true, "timeout_secs": 30 }),
            );
            assert_eq!(s, 200, "{v}\n{}", d.log());
            let info = net_info(&d);
            assert_eq!(info["ports"].as_array().unwrap().len(), 2, "{info}");
        });

        // In use: net-destroy refused.
        let (s, v) = d.post("/v1/networks/sw0/destroy");
        assert_eq!(s, 409, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("va"),
            "{v}"
        );
        let pid = net_info(&d)["pid"].as_i64().unwrap();
        for vm in ["va", "vb", "vc"] {
            let (s, v) = d.post(&format!("/v1/domains/{vm}/destroy"));
            assert_eq!(s, 200, "{v}");
        }
        assert!(net_info(&d)["ports"].as_array().unwrap().is_empty());
        let (s, v) = d.post("/v1/networks/sw0/destroy");
        assert_eq!(s, 200, "{v}");
        // Nothing left: process, tap, run dir, status.
        assert!(!pid_alive(pid), "switch {pid} still runs");
        assert!(!links().contains(&"sw0-up".to_string()), "{:?}", links());
        let run = tmp.path().join("run/networks");
        let left: Vec<_> = std::fs::read_dir(&run)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let (s, v) = d.call("DELETE", "/v1/networks/sw0", None, "");
        assert_eq!(s, 200, "{v}");
        drop(d);
    });
}

/// A network NIC of running VM `vm` is shown as virsh shows it, not as the vhost-user NIC it
/// runs as: `domiflist` says type `network`, source the network's name; the live XML keeps
/// `type='network'` and `<source network='sw0'/>`, adds the switch port (`portid`) and reads
/// back through conf as the same XML.
fn assert_shown_as_network(d: &TestDaemon, vm: &str, mac: &str, port: &str) {
    let (s, v) = d.get(&format!("/v1/domains/{vm}/interfaces"));
    assert_eq!(s, 200, "{v}");
    let rows = v["interfaces"].as_array().unwrap();
    let row = rows
        .iter()
        .find(|r| r["mac"] == mac)
        .expect("the NIC's row");
    assert_eq!(
        (row["type"].as_str(), row["source"].as_str()),
        (Some("network"), Some("sw0")),
        "{v}"
    );
    let (s, v) = d.get(&format!("/v1/domains/{vm}/xml"));
    assert_eq!(s, 200, "{v}");
    let xml = v["xml"].as_str().unwrap();
    assert!(!xml.contains("vhostuser"), "{xml}");
    assert!(xml.contains("<interface type='network'>"), "{xml}");
    assert!(
        xml.contains(&format!("<source network='sw0' portid='{port}'/>")),
        "{xml}"
    );
    let parsed = virtnet_conf::Domain::parse(xml).expect("the live XML reads back");
    assert_eq!(parsed.to_xml(), xml);
}

/// Found by the soak test: `attach --persistent` of a network NIC claimed the socket the
/// daemon picked for the running VM in the definition's scope too (where the NIC has no
/// socket: it is `type='network'`), so after the VM stopped the path stayed held by a
/// definition that does not name it (until undefine or a daemon restart).
#[test]
fn persistent_network_attach_leaves_no_socket_claim_after_stop() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let vswitch = common::vswitch();
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let tmp = virtnet_testkit::traversable_tempdir();
        assert!(vswitch.is_file());
        let d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        common::e2e::define_and_start_network(&d, NET_XML, "sw0");
        let mut dom = TestDomain::new("va", tmp.path().join("va.sock"));
        dom.shared_memory = true;
        assert_eq!(d.define(&dom.xml(guest)).0, 201);
        start(&d, "va");
        let mac = "52:54:00:20:01:01";
        let (s, v) = post_json(
            &d,
            "/v1/domains/va/devices",
            &json!({ "xml": net_nic(mac), "persistent": true }),
        );
        assert_eq!(s, 200, "{v}\n{}", d.log());
        // The attach answer (virtnet's message) names the network, as domiflist does.
        assert_eq!(v["interface"]["type"], "network", "{v}");
        assert_eq!(v["interface"]["source"], "sw0", "{v}");
        assert_shown_as_network(&d, "va", mac, "va-525400200101");
        let socket = net_info(&d)["ports"][0]["socket"]
            .as_str()
            .unwrap()
            .to_string();
        // While va runs its NIC holds the socket...
        let vx = common::domain_xml("vx", &common::vhostuser_nic("52:54:00:20:01:99", &socket));
        let (s, v) = d.define(&vx);
        assert_eq!(s, 409, "{v}");
        // ...and once it stops, nothing does: its definition's NIC is type='network'.
        let (s, v) = d.post("/v1/domains/va/destroy");
        assert_eq!(s, 200, "{v}");
        let (s, v) = d.define(&vx);
        assert_eq!(
            s, 201,
            "the stopped VM's definition still holds {socket}: {v}"
        );
        drop(d);
    });
}
