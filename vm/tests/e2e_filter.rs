//! `<filterref filter='clean-traffic'>` on bridge and ethernet NICs end to end (real QEMU 7.2 under TCG,
//! the test guest, each test in its own network namespace): the guest forges its source MAC,
//! its source IP and ARP sender addresses ([`virtnet_testkit::spoof`]); each forged frame is
//! dropped (the host's stack never sees it: no echo request counted, no neighbour learnt) and
//! counted by the filter's named counters; legitimate traffic passes; the table goes with a
//! detach and with the VM's stop. The same forgeries over an unfiltered NIC of the same guest
//! do reach the host (the control: the forgeries are real).

mod common;

use common::hotplug::{boot_live, detach_done, guest_ifname, iface};
use common::{env, scratch, BOOT, CMD};
use virtnet_host::nwfilter::{self, table_name, DropCounter, FilterStatus};
use virtnet_testkit::spoof::{arp_from, forge_mac, icmp_echo_requests, neighbour, ping_from};
use virtnet_testkit::{add_bridge, bridge_nic, ip, runtime, with_netns, Snapshot, TestDomain};
use virtnet_vm::exec::{self, HotplugOptions};
use virtnet_vm::{plan_attach, plan_detach, StopMode};

fn filtered_nic(mac: &str, bridge: &str, ip: Option<&str>) -> String {
    let param = ip.map_or(String::new(), |ip| {
        format!("<parameter name='IP' value='{ip}'/>")
    });
    format!(
        "<interface type='bridge'><mac address='{mac}'/><source bridge='{bridge}'/>\
         <model type='virtio'/><filterref filter='clean-traffic'>{param}</filterref>\
         </interface>"
    )
}

fn status(table: &str) -> FilterStatus {
    nwfilter::status(table)
        .unwrap()
        .unwrap_or_else(|| panic!("no table {table}"))
}

fn dropped(table: &str, c: DropCounter) -> u64 {
    status(table).dropped.get(c.name()).copied().unwrap_or(0)
}

#[test]
fn forged_mac_ip_and_arp_are_dropped_and_counted_and_the_table_goes_at_stop() {
    let Some(env) = env() else { return };
    if !virtnet_testkit::require(&[virtnet_testkit::Need::Binary(virtnet_host::nft::NFT)]) {
        return;
    }
    with_netns(move || {
        add_bridge("br0", Some("10.0.1.1/24"));
        let (tmp, serial) = scratch();
        let mac = "52:54:00:00:31:02";
        let dom = TestDomain::new("filter1", &serial).nic(
            &filtered_nic(mac, "br0", Some("10.0.1.2")),
            mac,
            Some("10.0.1.2/24"),
        );
        runtime().block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let (host, vm, mut con, _live) = boot_live(&env, &dom, tmp.path()).await;
            let tap = vm.resources().nics[0].name.clone();
            let table = table_name("filter1", &tap);
            assert!(nwfilter::status(&table).unwrap().is_some(), "no table");
            let dev = guest_ifname(&con.wait_nic_up(mac, BOOT).await.unwrap());

            // Legitimate traffic passes, and nothing of it is counted as forged.
            let (out, rc) = con.run("ping -c 3 -W 2 10.0.1.1", CMD).await.unwrap();
            assert_eq!(rc, 0, "legitimate ping:\n{out}");
            let st = status(&table);
            for c in [
                DropCounter::MacSpoofing,
                DropCounter::IpSpoofing,
                DropCounter::ArpSpoofing,
            ] {
                assert_eq!(st.dropped.get(c.name()), Some(&0), "{st:?}");
            }

            // A foreign source IP: dropped before the host's stack, counted.
            let echoes = icmp_echo_requests();
            let rc = ping_from(&mut con, &dev, "10.0.1.99", "10.0.1.1", 3)
                .await
                .unwrap();
            assert_ne!(rc, 0, "a ping from a forged address got a reply");
            assert_eq!(
                icmp_echo_requests(),
                echoes,
                "forged pings reached the host"
            );
            assert_eq!(neighbour("10.0.1.99"), None);
            let ip_drops = dropped(&table, DropCounter::IpSpoofing);
            assert!(ip_drops >= 1, "{:?}", status(&table));

            // ARP naming a foreign sender address (poisoning): dropped, counted.
            let arp_before = dropped(&table, DropCounter::ArpSpoofing);
            let rc = arp_from(&mut con, &dev, "10.0.1.77", "10.0.1.1", 2)
                .await
                .unwrap();
            assert_ne!(rc, 0, "the host answered a forged ARP request");
            assert_eq!(
                neighbour("10.0.1.77"),
                None,
                "the host learnt a forged address"
            );
            assert!(
                dropped(&table, DropCounter::ArpSpoofing) >= arp_before + 2,
                "{:?}",
                status(&table)
            );

            // A foreign source MAC: every frame dropped, counted.
            let mac_before = dropped(&table, DropCounter::MacSpoofing);
            forge_mac(&mut con, &dev, "52:54:00:66:66:66")
                .await
                .unwrap();
            let (out, rc) = con.run("ping -c 3 -W 1 10.0.1.1", CMD).await.unwrap();
            assert_ne!(rc, 0, "a ping with a forged MAC got a reply:\n{out}");
            assert_eq!(
                icmp_echo_requests(),
                echoes,
                "forged frames reached the host"
            );
            let n = neighbour("10.0.1.2").unwrap_or_default();
            assert!(!n.contains("66:66:66"), "{n}");
            assert!(
                dropped(&table, DropCounter::MacSpoofing) >= mac_before + 3,
                "{:?}",
                status(&table)
            );

            // Its own MAC back: traffic passes again.
            forge_mac(&mut con, &dev, mac).await.unwrap();
            let (out, rc) = con.run("ping -c 2 -W 2 10.0.1.1", CMD).await.unwrap();
            assert_eq!(rc, 0, "ping with the MAC restored:\n{out}");
            eprintln!("filter counters: {:?}", status(&table));

            vm.stop(&host, StopMode::Destroy).await.unwrap();
            assert!(nwfilter::status(&table).unwrap().is_none(), "table left");
            assert!(nwfilter::tables().unwrap().is_empty());
            before.assert_no_leaks("a filtered VM stopped");
        });
    });
}

#[test]
fn a_hotplugged_nic_learns_its_first_address_and_its_table_goes_with_the_detach() {
    let Some(env) = env() else { return };
    if !virtnet_testkit::require(&[virtnet_testkit::Need::Binary(virtnet_host::nft::NFT)]) {
        return;
    }
    with_netns(move || {
        add_bridge("br0", Some("10.0.1.1/24"));
        add_bridge("br1", Some("10.0.2.1/24"));
        let (tmp, serial) = scratch();
        let (mac0, mac1) = ("52:54:00:00:32:01", "52:54:00:00:32:02");
        let dom = TestDomain::new("filter2", &serial)
            .nic(&bridge_nic(mac0, "br0"), mac0, Some("10.0.1.2/24"))
            .ip(mac1, "10.0.2.2/24");
        runtime().block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let (host, mut vm, mut con, mut live) = boot_live(&env, &dom, tmp.path()).await;
            let dev0 = guest_ifname(&con.wait_nic_up(mac0, BOOT).await.unwrap());

            // The control, over the unfiltered boot NIC: the forgeries do reach the host.
            let echoes = icmp_echo_requests();
            let rc = ping_from(&mut con, &dev0, "10.0.1.99", "10.0.1.1", 2)
                .await
                .unwrap();
            assert_eq!(
                rc, 0,
                "unfiltered, a ping from another address gets through"
            );
            assert!(icmp_echo_requests() > echoes);
            arp_from(&mut con, &dev0, "10.0.1.77", "10.0.1.1", 1)
                .await
                .unwrap();
            assert!(
                neighbour("10.0.1.77").is_some(),
                "unfiltered, the host learns a forged ARP sender"
            );

            let xml = filtered_nic(mac1, "br1", None);
            let ap = plan_attach(&live.domain, &iface(&xml), &env.caps)
                .unwrap_or_else(|e| panic!("{e}"));
            let nic = exec::attach(&ap, &host, vm.qmp(), &HotplugOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let tap = nic.host.nics[0].name.clone();
            let table = table_name("filter2", &tap);
            let dev1 = guest_ifname(&con.wait_nic_up(mac1, BOOT).await.unwrap());
            let (out, rc) = con
                .run(&format!("ping -c 3 -W 2 -I {dev1} 10.0.2.1"), CMD)
                .await
                .unwrap();
            assert_eq!(rc, 0, "legitimate ping over the filtered NIC:\n{out}");
            let st = status(&table);
            assert_eq!(st.learned, Some("10.0.2.2".parse().unwrap()), "{st:?}");

            let echoes = icmp_echo_requests();
            let rc = ping_from(&mut con, &dev1, "10.0.2.99", "10.0.2.1", 3)
                .await
                .unwrap();
            assert_ne!(rc, 0, "a ping from a second address got a reply");
            assert_eq!(
                icmp_echo_requests(),
                echoes,
                "forged pings reached the host"
            );
            let rc = arp_from(&mut con, &dev1, "10.0.2.77", "10.0.2.1", 2)
                .await
                .unwrap();
            assert_ne!(rc, 0);
            assert_eq!(neighbour("10.0.2.77"), None);
            let st = status(&table);
            assert_eq!(st.learned, Some("10.0.2.2".parse().unwrap()), "{st:?}");
            assert!(dropped(&table, DropCounter::IpSpoofing) >= 1, "{st:?}");
            assert!(dropped(&table, DropCounter::ArpSpoofing) >= 2, "{st:?}");
            eprintln!("filter counters: {st:?}");

            let live_iface = live.add(&nic);
            vm.add_resources(&nic.host);
            let dp = plan_detach(&live.domain, &live_iface, &live.held).unwrap();
            let report = detach_done(&dp, &host, vm.qmp(), &HotplugOptions::default()).await;
            vm.remove_resources(&report.released);
            assert!(
                nwfilter::status(&table).unwrap().is_none(),
                "table left at detach"
            );
            assert!(nwfilter::tables().unwrap().is_empty());

            vm.stop(&host, StopMode::Destroy).await.unwrap();
            before.assert_no_leaks("a filtered NIC plugged, unplugged, VM stopped");
        });
    });
}

/// A tap on no bridge (`type='ethernet'`, an existing tap with the host's address on it): the
/// filter hooks the tap itself (netdev family); forged frames never reach the host's stack;
/// the table goes at stop and the tap, not ours, stays.
#[test]
fn an_ethernet_tap_is_filtered_at_its_own_hooks() {
    let Some(env) = env() else { return };
    if !virtnet_testkit::require(&[virtnet_testkit::Need::Binary(virtnet_host::nft::NFT)]) {
        return;
    }
    with_netns(move || {
        ip("tuntap add dev tap-f mode tap vnet_hdr");
        ip("addr add 10.0.3.1/24 dev tap-f");
        ip("link set tap-f up");
        let (tmp, serial) = scratch();
        let mac = "52:54:00:00:33:02";
        let nic = format!(
            "<interface type='ethernet'><mac address='{mac}'/>\
             <target dev='tap-f' managed='no'/><model type='virtio'/>\
             <filterref filter='clean-traffic'><parameter name='IP' value='10.0.3.2'/>\
             </filterref></interface>"
        );
        let dom = TestDomain::new("filter3", &serial).nic(&nic, mac, Some("10.0.3.2/24"));
        runtime().block_on(async {
            let before = Snapshot::take(&[tmp.path()]);
            let (host, vm, mut con, _live) = boot_live(&env, &dom, tmp.path()).await;
            let table = table_name("filter3", "tap-f");
            assert_eq!(
                nwfilter::family_of(&table).unwrap(),
                Some(nwfilter::FilterFamily::Netdev)
            );
            let dev = guest_ifname(&con.wait_nic_up(mac, BOOT).await.unwrap());
            let (out, rc) = con.run("ping -c 3 -W 2 10.0.3.1", CMD).await.unwrap();
            assert_eq!(rc, 0, "legitimate ping:\n{out}");

            let echoes = icmp_echo_requests();
            let rc = ping_from(&mut con, &dev, "10.0.3.99", "10.0.3.1", 3)
                .await
                .unwrap();
            assert_ne!(rc, 0, "a ping from a forged address got a reply");
            let rc = arp_from(&mut con, &dev, "10.0.3.77", "10.0.3.1", 2)
                .await
                .unwrap();
            assert_ne!(rc, 0, "the host answered a forged ARP request");
            forge_mac(&mut con, &dev, "52:54:00:66:66:66")
                .await
                .unwrap();
            let (_, rc) = con.run("ping -c 2 -W 1 10.0.3.1", CMD).await.unwrap();
            assert_ne!(rc, 0, "a ping with a forged MAC got a reply");
            assert_eq!(
                icmp_echo_requests(),
                echoes,
                "forged frames reached the host"
            );
            assert_eq!(neighbour("10.0.3.77"), None);
            assert_eq!(neighbour("10.0.3.99"), None);
            let st = status(&table);
            eprintln!("filter counters: {st:?}");
            assert!(dropped(&table, DropCounter::IpSpoofing) >= 1, "{st:?}");
            assert!(dropped(&table, DropCounter::ArpSpoofing) >= 2, "{st:?}");
            assert!(dropped(&table, DropCounter::MacSpoofing) >= 2, "{st:?}");
            forge_mac(&mut con, &dev, mac).await.unwrap();
            let (out, rc) = con.run("ping -c 2 -W 2 10.0.3.1", CMD).await.unwrap();
            assert_eq!(rc, 0, "ping with the MAC restored:\n{out}");

            vm.stop(&host, StopMode::Destroy).await.unwrap();
            assert!(nwfilter::status(&table).unwrap().is_none(), "table left");
            assert!(virtnet_testkit::links().contains(&"tap-f".to_string()));
            before.assert_no_leaks("a filtered ethernet VM stopped");
        });
    });
}
