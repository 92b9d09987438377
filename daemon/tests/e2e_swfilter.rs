//! `<filterref filter='clean-traffic'>` on a switch network, end to end (real virtnetd, QEMU
//! 7.2 under TCG, the test guest, the real `virtnet-vswitch`, in a private network
//! namespace). Two guests on `sw0` (uplink tap 10.20.0.1/24 on the host side):
//!
//! - `fa` with `<parameter name='IP' value='10.20.0.11'/>`, `fl` without (address learning);
//! - legitimate pings pass: each guest to the host and to the other guest;
//! - `fl`'s port reports the address it used first (`learned_ip` in list-ports);
//! - each guest forges its source IP (ping from a foreign address), ARP with a foreign sender
//!   address (requests and replies) and its source MAC: the host receives none of it (no
//!   echo request counted, no neighbour entry for the forged address), and the switch counts
//!   each under its reason (`spoofed_ip`, `spoofed_arp`, `spoofed_mac`); with its MAC back,
//!   the guest's pings pass again;
//! - the switch is SIGKILLed: virtnetd restarts it with the ports and their filters (a forged
//!   ping is dropped and counted by the new switch);
//! - the filter goes with the port: detaching `fl`'s NIC and stopping `fa` remove their
//!   ports (and filters) from the switch; `fl`'s NIC hot-plugged again gets a new filter that
//!   learns afresh and drops a forged ping.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::e2e::{post_json, start, BOOT, CMD};
use common::TestDaemon;
use serde_json::{json, Value};
use virtnet_testkit::{runtime, spoof, with_netns, SerialConsole, TestDomain};

const NET_XML: &str = "<network><name>sw0</name><virtualport type='virtnet-vswitch'/>\
    <uplink dev='sw0-up'><ip address='10.20.0.1' prefix='24'/></uplink></network>";
const HOST: &str = "10.20.0.1";

fn filtered_nic(mac: &str, ip: Option<&str>) -> String {
    let param = ip
        .map(|ip| format!("<parameter name='IP' value='{ip}'/>"))
        .unwrap_or_default();
    format!(
        "<interface type='network'><mac address='{mac}'/><source network='sw0'/>\
         <model type='virtio'/><filterref filter='clean-traffic'>{param}</filterref></interface>"
    )
}

fn net_info(d: &TestDaemon) -> Value {
    let (s, v) = d.get("/v1/networks/sw0");
    assert_eq!(s, 200, "{v}");
    v
}

/// The switch's port of `vm` as list-ports reports it (`None`: no such port).
fn switch_port(control: &str, vm: &str) -> Option<Value> {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(control).unwrap();
    s.write_all(b"{\"cmd\":\"list-ports\"}\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str().unwrap().starts_with(&format!("{vm}-")))
        .cloned()
}

fn drops(control: &str, vm: &str, reason: &str) -> u64 {
    let p = switch_port(control, vm).expect("the VM's port");
    p["counters"]["drops"][reason].as_u64().unwrap()
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

/// Forges, from guest `vm` (NIC `ifname`, MAC `mac`), its source IP, ARP sender address
/// (request and reply) and source MAC, with `forged` as the foreign address; checks each is
/// dropped (the host sees nothing) and counted by reason, and that the guest's own traffic
/// passes again after.
async fn forge_all(
    con: &mut SerialConsole,
    control: &str,
    vm: &str,
    (ifname, mac): (&str, &str),
    forged: &str,
) {
    // Source IP (right after a legitimate ping: the host's neighbour entry is fresh, so the
    // forged echo requests leave the guest at once).
    let before = spoof::icmp_echo_requests();
    guest_ping(con, HOST, 10).await;
    let echos = spoof::icmp_echo_requests();
    assert!(echos > before, "the host counts the guest's echo requests");
    let ip_before = drops(control, vm, "spoofed_ip");
    let rc = spoof::ping_from(con, ifname, forged, HOST, 3)
        .await
        .unwrap();
    assert_ne!(rc, 0, "{vm}: a ping from forged {forged} was answered");
    assert_eq!(
        spoof::icmp_echo_requests(),
        echos,
        "{vm}: forged pings reached the host"
    );
    assert!(
        drops(control, vm, "spoofed_ip") > ip_before,
        "{vm}: {:?}",
        switch_port(control, vm)
    );

    // ARP naming a foreign sender address: a request, then an unsolicited reply (-A).
    let arp_before = drops(control, vm, "spoofed_arp");
    let rc = spoof::arp_from(con, ifname, forged, HOST, 2).await.unwrap();
    assert_ne!(rc, 0, "{vm}: the host answered a forged ARP request");
    let (out, _) = con
        .run(
            &format!("arping -A -c 2 -I {ifname} -s {forged} {forged}"),
            CMD,
        )
        .await
        .unwrap();
    assert!(
        drops(control, vm, "spoofed_arp") >= arp_before + 4,
        "{vm}: {out}\n{:?}",
        switch_port(control, vm)
    );
    assert_eq!(
        spoof::neighbour(forged),
        None,
        "{vm}: the host learnt {forged}"
    );

    // Source MAC.
    let mac_before = drops(control, vm, "spoofed_mac");
    spoof::forge_mac(con, ifname, "52:54:00:20:00:66")
        .await
        .unwrap();
    let (out, rc) = con
        .run(&format!("ping -c 3 -W 1 {HOST}"), CMD)
        .await
        .unwrap();
    assert_ne!(rc, 0, "{vm}: a ping with a forged MAC was answered: {out}");
    assert!(
        drops(control, vm, "spoofed_mac") > mac_before,
        "{vm}: {:?}",
        switch_port(control, vm)
    );
    // Its own MAC back: legitimate traffic passes again.
    spoof::forge_mac(con, ifname, mac).await.unwrap();
    guest_ping(con, HOST, 20).await;
}

#[test]
fn clean_traffic_on_a_switch_port_drops_and_counts_forged_frames() {
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
        common::e2e::define_and_start_network(&d, NET_XML, "sw0");

        let vms = [
            ("fa", "52:54:00:20:00:01", "10.20.0.11", Some("10.20.0.11")),
            ("fl", "52:54:00:20:00:02", "10.20.0.12", None),
        ];
        let mut serials = Vec::new();
        for (vm, mac, ip, param) in vms {
            let serial = tmp.path().join(format!("{vm}.sock"));
            let mut dom = TestDomain::new(vm, &serial).nic(
                &filtered_nic(mac, param),
                mac,
                Some(&format!("{ip}/24")),
            );
            dom.shared_memory = true;
            let (s, v) = d.define(&dom.xml(guest));
            assert_eq!(s, 201, "{v}");
            serials.push(serial);
        }
        let d = Arc::new(d);

        runtime().block_on(async {
            let mut cons = Vec::new();
            for ((vm, _, _, _), serial) in vms.iter().zip(&serials) {
                let d2 = d.clone();
                let vm = vm.to_string();
                let started = tokio::task::spawn_blocking(move || start(&d2, &vm));
                let con = SerialConsole::connect(serial, Duration::from_secs(30));
                let (con, started) = tokio::join!(con, started);
                started.unwrap();
                cons.push(con.unwrap());
            }
            let control = net_info(&d)["control"].as_str().unwrap().to_string();
            let mut ifnames = Vec::new();
            for (i, (_, mac, _, _)) in vms.iter().enumerate() {
                cons[i].wait_ready(BOOT).await.unwrap();
                // `virtnet-guest: nic up IFNAME MAC`.
                let line = cons[i].wait_nic_up(mac, CMD).await.unwrap();
                let ifname = line
                    .split("nic up ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next());
                ifnames.push(ifname.expect("the NIC's name").to_string());
            }

            // Legitimate traffic: to the host and between the guests.
            guest_ping(&mut cons[0], HOST, 20).await;
            guest_ping(&mut cons[1], HOST, 20).await;
            guest_ping(&mut cons[0], "10.20.0.12", 20).await;
            guest_ping(&mut cons[1], "10.20.0.11", 20).await;
            let (ok, out) = virtnet_testkit::ping("10.20.0.11", 2);
            assert!(ok, "host -> fa: {out}");

            // Fixed address: nothing learned; learning: the address fl used.
            let fa = switch_port(&control, "fa").unwrap();
            assert_eq!(fa.get("learned_ip"), None, "{fa}");
            let fl = switch_port(&control, "fl").unwrap();
            assert_eq!(fl["learned_ip"], "10.20.0.12", "{fl}");

            forge_all(
                &mut cons[0],
                &control,
                "fa",
                (&ifnames[0], vms[0].1),
                "10.20.0.99",
            )
            .await;
            forge_all(
                &mut cons[1],
                &control,
                "fl",
                (&ifnames[1], vms[1].1),
                "10.20.0.98",
            )
            .await;
            // Still held to the address it used first.
            let fl = switch_port(&control, "fl").unwrap();
            assert_eq!(fl["learned_ip"], "10.20.0.12", "{fl}");
            // The guests still reach each other.
            guest_ping(&mut cons[1], "10.20.0.11", 20).await;

            // The switch is killed: virtnetd restarts it and adds the ports again, with their
            // filters (a forged ping is dropped and counted by the new switch).
            let old = net_info(&d)["pid"].as_i64().unwrap();
            // SAFETY: kill(2) on the switch's pid.
            unsafe { libc::kill(old as i32, libc::SIGKILL) };
            common::e2e::wait_until("the switch restarted", Duration::from_secs(20), || {
                let i = net_info(&d);
                i["pid"].as_i64().is_some_and(|p| p != old) && i["restarts"] == 1
            });
            guest_ping(&mut cons[0], HOST, 30).await;
            let echos = spoof::icmp_echo_requests();
            let rc = spoof::ping_from(&mut cons[0], &ifnames[0], "10.20.0.97", HOST, 2)
                .await
                .unwrap();
            assert_ne!(
                rc, 0,
                "a forged ping was answered after the switch restarted"
            );
            assert_eq!(spoof::icmp_echo_requests(), echos);
            assert!(
                drops(&control, "fa", "spoofed_ip") > 0,
                "{:?}",
                switch_port(&control, "fa")
            );

            // The filter goes with the port: detach fl's NIC.
            let (s, v) = post_json(
                &d,
                "/v1/domains/fl/devices/detach",
                &json!({ "type": "network", "mac": vms[1].1, "live": true, "timeout_secs": 30 }),
            );
            assert_eq!(s, 200, "{v}\n{}", d.log());
            assert!(switch_port(&control, "fl").is_none());

            // Hot-plugged again: a new port with a new filter, learning afresh.
            let (s, v) = post_json(
                &d,
                "/v1/domains/fl/devices",
                &json!({ "xml": filtered_nic(vms[1].1, None), "live": true }),
            );
            assert_eq!(s, 200, "{v}\n{}", d.log());
            cons[1].wait_nic_up(vms[1].1, CMD).await.unwrap();
            guest_ping(&mut cons[1], HOST, 30).await;
            let fl = switch_port(&control, "fl").unwrap();
            assert_eq!(fl["learned_ip"], "10.20.0.12", "{fl}");
            let rc = spoof::ping_from(&mut cons[1], &ifnames[1], "10.20.0.96", HOST, 2)
                .await
                .unwrap();
            assert_ne!(rc, 0, "a forged ping from the hot-plugged NIC was answered");
            assert!(
                drops(&control, "fl", "spoofed_ip") > 0,
                "{:?}",
                switch_port(&control, "fl")
            );
            // The live XML shows the hot-plugged NIC as defined, with its filter.
            for vm in ["fa", "fl"] {
                let (s, v) = d.get(&format!("/v1/domains/{vm}/xml"));
                assert_eq!(s, 200, "{v}");
                let xml = v["xml"].as_str().unwrap();
                assert!(
                    xml.contains("<interface type='network'>")
                        && xml.contains("<filterref filter='clean-traffic'")
                        && !xml.contains("vhostuser"),
                    "{xml}"
                );
            }
        });

        // And with the VM at stop.
        for vm in ["fa", "fl"] {
            let (s, v) = d.post(&format!("/v1/domains/{vm}/destroy"));
            assert_eq!(s, 200, "{v}");
        }
        let control = net_info(&d)["control"].as_str().unwrap().to_string();
        assert!(switch_port(&control, "fa").is_none());
        assert!(net_info(&d)["ports"].as_array().unwrap().is_empty());
        let (s, v) = d.post("/v1/networks/sw0/destroy");
        assert_eq!(s, 200, "{v}");
        let (s, v) = d.call("DELETE", "/v1/networks/sw0", None, "");
        assert_eq!(s, 200, "{v}");
        drop(d);
    });
}
