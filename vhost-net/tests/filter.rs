//! A port's anti-spoofing filter inside the switch, against vhost-user frontends in the test
//! process: a filtered guest's legitimate frames reach another port; its forged source MAC,
//! source IP, ARP reply and other ethertypes are dropped, counted by reason, and never teach
//! the MAC table; the incoming direction keeps other ethertypes from it; address learning
//! is reported by list-ports; a filter without a usable MAC is refused.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;

use common::*;
use virtnet_vhost_net::vnet_hdr::VnetHdr;
use virtnet_vhost_net::{DropReason, PortConfig, Switch, SwitchConfig};
use virtnet_vswitch_control::{FilterPart, PortFilter, PortPolicy};

const IP_A: [u8; 4] = [10, 0, 0, 1];
const IP_B: [u8; 4] = [10, 0, 0, 2];
const IP_C: [u8; 4] = [10, 0, 0, 3];

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ICMP echo request `src` → `dst` (checksums are not the filter's business).
fn ping(dst_mac: [u8; 6], src_mac: [u8; 6], src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    ip.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
    eth(dst_mac, src_mac, 0x0800, &ip)
}

fn arp_reply(src_mac: [u8; 6], sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 2];
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa);
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa);
    eth(tha, src_mac, 0x0806, &a)
}

fn clean_traffic(mac: [u8; 6], ips: &[[u8; 4]]) -> PortPolicy {
    PortPolicy {
        filter: Some(PortFilter {
            mac: mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            parts: vec![
                FilterPart::NoMacSpoofing,
                FilterPart::NoIpSpoofing,
                FilterPart::AllowDhcp,
                FilterPart::NoArpSpoofing,
                FilterPart::AllowArp,
                FilterPart::NoOtherL2Traffic,
            ],
            ips: ips.iter().map(|a| Ipv4Addr::from(*a)).collect(),
            learn: ips.is_empty(),
        }),
        ..PortPolicy::default()
    }
}

fn add(
    sw: &Switch,
    dir: &Path,
    name: &str,
    policy: PortPolicy,
) -> (TestGuest, std::os::unix::net::UnixListener) {
    let (l, path) = listen(dir, name);
    let cfg = PortConfig {
        policy,
        ..PortConfig::new(name, &path)
    };
    sw.add_port(cfg).unwrap();
    let mut g = TestGuest::new(accept(&l), LINUX_LIKE, 1, 2048);
    g.post_rx(0, 128);
    wait_for(&format!("port {name} ready"), || {
        sw.list_ports()
            .iter()
            .any(|p| p.name == name && p.ready_queues >= 1)
    });
    (g, l)
}

fn drops(sw: &Switch, port: &str, reason: DropReason) -> u64 {
    sw.port_counters(port).unwrap().drop_count(reason)
}

#[test]
fn forged_frames_from_a_filtered_port_are_dropped_and_counted_legitimate_ones_pass() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Switch::new(SwitchConfig::default());
    let (mut a, _la) = add(&sw, dir.path(), "a", clean_traffic(mac(1), &[IP_A]));
    let (mut b, _lb) = add(&sw, dir.path(), "b", PortPolicy::default());
    let hdr = VnetHdr::default();

    // b is known, then a's legitimate ping and ARP reply reach it.
    b.send(0, &hdr, &ping(mac(1), mac(2), IP_B, IP_A));
    assert_eq!(a.recv(0).frame, ping(mac(1), mac(2), IP_B, IP_A), "IPv4 in");
    let good = ping(mac(2), mac(1), IP_A, IP_B);
    a.send(0, &hdr, &good);
    assert_eq!(b.recv(0).frame, good);
    let good_arp = arp_reply(mac(1), mac(1), IP_A, mac(2), IP_B);
    a.send(0, &hdr, &good_arp);
    assert_eq!(b.recv(0).frame, good_arp);

    // Forged source MAC: dropped, counted, and the MAC table does not learn it.
    a.send(0, &hdr, &ping([0xff; 6], mac(9), IP_A, IP_B));
    // Forged source IP.
    a.send(0, &hdr, &ping(mac(2), mac(1), IP_C, IP_B));
    // ARP reply claiming b's address (poisoning b's neighbours), and one naming b's MAC.
    a.send(0, &hdr, &arp_reply(mac(1), mac(1), IP_B, mac(2), IP_B));
    a.send(0, &hdr, &arp_reply(mac(1), mac(2), IP_A, mac(2), IP_B));
    // Another ethertype.
    a.send(0, &hdr, &frame([0xff; 6], mac(1), 60, 1));
    a.wait_tx_done(0);
    b.expect_nothing(0);
    assert_eq!(drops(&sw, "a", DropReason::SpoofedMac), 1);
    assert_eq!(drops(&sw, "a", DropReason::SpoofedIp), 1);
    assert_eq!(drops(&sw, "a", DropReason::SpoofedArp), 2);
    assert_eq!(drops(&sw, "a", DropReason::L2NotAllowed), 1);
    assert!(
        !sw.mac_table().iter().any(|e| e.mac == "52:54:00:12:34:09"),
        "a forged MAC was learned: {:?}",
        sw.mac_table()
    );

    // Incoming: another ethertype to a is dropped on a's port; b's port counts nothing.
    b.send(0, &hdr, &frame(mac(1), mac(2), 60, 2));
    b.wait_tx_done(0);
    a.expect_nothing(0);
    assert_eq!(drops(&sw, "a", DropReason::L2NotAllowedIn), 1);
    let pb = sw.port_counters("b").unwrap();
    assert_eq!(pb.total_drops(), 0, "{pb:?}");

    // Fixed addresses: nothing learned; the reasons appear by name in list-ports.
    let pa = sw.list_ports().into_iter().find(|p| p.name == "a").unwrap();
    assert_eq!(pa.learned_ip, None);
    assert_eq!(pa.counters.drops["spoofed_arp"], 2);
    assert_eq!(pa.counters.drops["l2_not_allowed_in"], 1);
}

#[test]
fn a_learning_port_is_held_to_the_first_address_it_uses_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Switch::new(SwitchConfig::default());
    let (mut c, _lc) = add(&sw, dir.path(), "c", clean_traffic(mac(3), &[]));
    let (mut b, _lb) = add(&sw, dir.path(), "b", PortPolicy::default());
    let hdr = VnetHdr::default();
    let info = |sw: &Switch| sw.list_ports().into_iter().find(|p| p.name == "c").unwrap();
    assert_eq!(info(&sw).learned_ip, None);

    let first = ping([0xff; 6], mac(3), IP_C, IP_B);
    c.send(0, &hdr, &first);
    assert_eq!(b.recv(0).frame, first);
    assert_eq!(info(&sw).learned_ip, Some(Ipv4Addr::from(IP_C)));

    c.send(0, &hdr, &ping([0xff; 6], mac(3), IP_A, IP_B));
    c.send(0, &hdr, &arp_reply(mac(3), mac(3), IP_A, mac(2), IP_B));
    c.wait_tx_done(0);
    b.expect_nothing(0);
    assert_eq!(drops(&sw, "c", DropReason::SpoofedIp), 1);
    assert_eq!(drops(&sw, "c", DropReason::SpoofedArp), 1);
    let again = arp_reply(mac(3), mac(3), IP_C, mac(2), IP_B);
    c.send(0, &hdr, &again);
    assert_eq!(b.recv(0).frame, again);
    assert_eq!(info(&sw).learned_ip, Some(Ipv4Addr::from(IP_C)));

    // The filter goes with the port; a new port of the same name learns afresh.
    sw.del_port("c").unwrap();
    drop(c);
    let again = dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let (_c, _lc2) = add(&sw, &again, "c", clean_traffic(mac(3), &[]));
    assert_eq!(info(&sw).learned_ip, None);
}

#[test]
fn a_filter_without_the_guests_mac_is_refused_at_add_port() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Switch::new(SwitchConfig::default());
    let mut policy = clean_traffic(mac(1), &[IP_A]);
    policy.filter.as_mut().unwrap().mac = String::new();
    let cfg = PortConfig {
        policy,
        ..PortConfig::new("a", dir.path().join("a.sock"))
    };
    let e = sw.add_port(cfg).unwrap_err().to_string();
    assert!(e.contains("port 'a'") && e.contains("unicast MAC"), "{e}");
    assert!(sw.list_ports().is_empty());
}
