//! Frame-level tests of each filter part, address learning and VLAN-tagged frames.

use std::net::Ipv4Addr;

use super::*;
use crate::testutil::frames::{arp, eth, icmp, ipv4, tagged, udp};

const ME: Mac = [0x52, 0x54, 0, 0, 0, 1];
const PEER: Mac = [0x52, 0x54, 0, 0, 0, 2];
const MY_IP: [u8; 4] = [10, 0, 0, 1];
const MY_IP2: [u8; 4] = [10, 0, 0, 11];
const OTHER_IP: [u8; 4] = [10, 0, 0, 2];
const BCAST: Mac = [0xff; 6];

fn filter(parts: &[FilterPart], ips: &[[u8; 4]], learn: bool) -> Filter {
    Filter::new(
        "p",
        &PortFilter {
            mac: "52:54:00:00:00:01".into(),
            parts: parts.to_vec(),
            ips: ips.iter().map(|a| Ipv4Addr::from(*a)).collect(),
            learn,
        },
    )
    .unwrap()
}

fn clean(ips: &[[u8; 4]]) -> Filter {
    filter(&all(), ips, ips.is_empty())
}

fn all() -> Vec<FilterPart> {
    vec![
        FilterPart::NoMacSpoofing,
        FilterPart::NoIpSpoofing,
        FilterPart::AllowDhcp,
        FilterPart::NoArpSpoofing,
        FilterPart::AllowArp,
        FilterPart::NoOtherL2Traffic,
    ]
}

fn ping(src_mac: Mac, src: [u8; 4]) -> Vec<u8> {
    eth(PEER, src_mac, 0x0800, &icmp(src, OTHER_IP))
}

fn arp_frame(op: u16, sha: Mac, spa: [u8; 4]) -> Vec<u8> {
    eth(BCAST, ME, 0x0806, &arp(op, sha, spa, [0; 6], OTHER_IP))
}

fn rarp_announce(mac: Mac) -> Vec<u8> {
    eth(BCAST, mac, 0x8035, &arp(3, mac, [0; 4], mac, [0; 4]))
}

fn dhcp_discover() -> Vec<u8> {
    eth(BCAST, ME, 0x0800, &udp([0; 4], [255; 4], 68, 67))
}

#[test]
fn no_mac_spoofing_drops_a_foreign_source_mac_of_any_ethertype() {
    let f = filter(&[FilterPart::NoMacSpoofing], &[], false);
    assert_eq!(
        f.from_guest(&ping(ME, OTHER_IP)),
        Ok(()),
        "only the MAC part"
    );
    assert_eq!(
        f.from_guest(&ping(PEER, MY_IP)),
        Err(DropReason::SpoofedMac)
    );
    assert_eq!(
        f.from_guest(&eth(BCAST, [0x52, 0x54, 0, 0, 0, 9], 0x86dd, &[0; 40])),
        Err(DropReason::SpoofedMac)
    );
    assert_eq!(f.from_guest(&eth(BCAST, ME, 0x86dd, &[0; 40])), Ok(()));
    // Incoming: no rule.
    assert_eq!(f.to_guest(&ping(PEER, OTHER_IP)), Ok(()));
}

#[test]
fn no_ip_spoofing_passes_its_addresses_and_dhcp_only() {
    let f = filter(&[FilterPart::NoIpSpoofing], &[MY_IP, MY_IP2], false);
    assert_eq!(f.from_guest(&ping(ME, MY_IP)), Ok(()));
    assert_eq!(f.from_guest(&ping(ME, MY_IP2)), Ok(()), "several IPs");
    assert_eq!(
        f.from_guest(&ping(ME, OTHER_IP)),
        Err(DropReason::SpoofedIp)
    );
    assert_eq!(f.from_guest(&dhcp_discover()), Ok(()), "DHCP from 0.0.0.0");
    // 0.0.0.0 other than a DHCP request.
    let not_dhcp = eth(BCAST, ME, 0x0800, &udp([0; 4], [255; 4], 68, 53));
    assert_eq!(f.from_guest(&not_dhcp), Err(DropReason::SpoofedIp));
    let unicast = eth(PEER, ME, 0x0800, &udp([0; 4], OTHER_IP, 68, 67));
    assert_eq!(f.from_guest(&unicast), Err(DropReason::SpoofedIp));
    assert_eq!(
        f.from_guest(&eth(PEER, ME, 0x0800, &icmp([0; 4], OTHER_IP))),
        Err(DropReason::SpoofedIp)
    );
    // Malformed IPv4 cannot be checked: dropped.
    assert_eq!(
        f.from_guest(&eth(PEER, ME, 0x0800, &[0x45, 0, 0])),
        Err(DropReason::SpoofedIp)
    );
    let mut v6 = icmp(MY_IP, OTHER_IP);
    v6[0] = 0x65;
    assert_eq!(
        f.from_guest(&eth(PEER, ME, 0x0800, &v6)),
        Err(DropReason::SpoofedIp)
    );
    // A forged MAC is not this part's business; ARP neither.
    assert_eq!(f.from_guest(&ping(PEER, MY_IP)), Ok(()));
    assert_eq!(f.from_guest(&arp_frame(2, ME, OTHER_IP)), Ok(()));
}

#[test]
fn no_arp_spoofing_checks_sender_mac_address_and_opcode() {
    let f = filter(&[FilterPart::NoArpSpoofing], &[MY_IP], false);
    assert_eq!(f.from_guest(&arp_frame(1, ME, MY_IP)), Ok(()), "request");
    assert_eq!(f.from_guest(&arp_frame(2, ME, MY_IP)), Ok(()), "reply");
    assert_eq!(f.from_guest(&arp_frame(1, ME, [0; 4])), Ok(()), "probe");
    assert_eq!(
        f.from_guest(&arp_frame(2, ME, OTHER_IP)),
        Err(DropReason::SpoofedArp),
        "reply claiming a foreign address"
    );
    assert_eq!(
        f.from_guest(&arp_frame(2, PEER, MY_IP)),
        Err(DropReason::SpoofedArp),
        "reply naming a foreign MAC"
    );
    for op in [3, 4, 8, 0] {
        assert_eq!(
            f.from_guest(&arp_frame(op, ME, MY_IP)),
            Err(DropReason::SpoofedArp),
            "opcode {op}"
        );
    }
    let short = eth(
        BCAST,
        ME,
        0x0806,
        &arp(1, ME, MY_IP, [0; 6], OTHER_IP)[..20],
    );
    assert_eq!(f.from_guest(&short), Err(DropReason::SpoofedArp));
    let mut bad_hlen = arp(1, ME, MY_IP, [0; 6], OTHER_IP);
    bad_hlen[4] = 8;
    assert_eq!(
        f.from_guest(&eth(BCAST, ME, 0x0806, &bad_hlen)),
        Err(DropReason::SpoofedArp)
    );
    // IPv4 is not this part's business.
    assert_eq!(f.from_guest(&ping(ME, OTHER_IP)), Ok(()));
    // Incoming ARP of any kind passes.
    assert_eq!(
        f.to_guest(&eth(
            BCAST,
            PEER,
            0x0806,
            &arp(2, PEER, OTHER_IP, ME, MY_IP)
        )),
        Ok(())
    );
}

#[test]
fn no_other_l2_traffic_lets_ipv4_arp_and_announce_self_through_both_ways() {
    let f = filter(&[FilterPart::NoOtherL2Traffic], &[], false);
    assert_eq!(f.from_guest(&ping(ME, OTHER_IP)), Ok(()));
    assert_eq!(f.from_guest(&arp_frame(1, ME, OTHER_IP)), Ok(()));
    assert_eq!(f.from_guest(&rarp_announce(ME)), Ok(()), "announce-self");
    let v6 = eth(BCAST, ME, 0x86dd, &[0x60; 40]);
    assert_eq!(f.from_guest(&v6), Err(DropReason::L2NotAllowed));
    // 802.3 length field (LLC, e.g. STP) and a RARP that is not QEMU's announce.
    assert_eq!(
        f.from_guest(&eth([1, 0x80, 0xc2, 0, 0, 0], ME, 38, &[0x42; 38])),
        Err(DropReason::L2NotAllowed)
    );
    let other_rarp = eth(BCAST, ME, 0x8035, &arp(3, PEER, [0; 4], PEER, [0; 4]));
    assert_eq!(f.from_guest(&other_rarp), Err(DropReason::L2NotAllowed));
    let rarp_reply = eth(BCAST, ME, 0x8035, &arp(4, ME, [0; 4], ME, [0; 4]));
    assert_eq!(f.from_guest(&rarp_reply), Err(DropReason::L2NotAllowed));

    // Incoming as libvirt: IPv4, ARP, the announce of its own MAC; nothing else.
    assert_eq!(f.to_guest(&ping(PEER, OTHER_IP)), Ok(()));
    assert_eq!(
        f.to_guest(&eth(
            BCAST,
            PEER,
            0x0806,
            &arp(1, PEER, OTHER_IP, [0; 6], MY_IP)
        )),
        Ok(())
    );
    assert_eq!(f.to_guest(&rarp_announce(ME)), Ok(()));
    assert_eq!(
        f.to_guest(&rarp_announce(PEER)),
        Err(DropReason::L2NotAllowedIn),
        "another guest's announce"
    );
    assert_eq!(
        f.to_guest(&eth(ME, PEER, 0x86dd, &[0x60; 40])),
        Err(DropReason::L2NotAllowedIn)
    );
}

#[test]
fn without_no_other_l2_traffic_other_ethertypes_pass_both_ways() {
    let f = filter(
        &[
            FilterPart::NoMacSpoofing,
            FilterPart::NoIpSpoofing,
            FilterPart::NoArpSpoofing,
        ],
        &[MY_IP],
        false,
    );
    let v6 = eth(BCAST, ME, 0x86dd, &[0x60; 40]);
    assert_eq!(f.from_guest(&v6), Ok(()));
    assert_eq!(f.to_guest(&v6), Ok(()));
    assert_eq!(
        f.from_guest(&rarp_announce(PEER)),
        Err(DropReason::SpoofedMac)
    );
}

#[test]
fn clean_traffic_with_ip_parameters() {
    let f = clean(&[MY_IP]);
    assert_eq!(f.from_guest(&ping(ME, MY_IP)), Ok(()));
    assert_eq!(f.from_guest(&dhcp_discover()), Ok(()));
    assert_eq!(f.from_guest(&arp_frame(2, ME, MY_IP)), Ok(()));
    assert_eq!(f.from_guest(&rarp_announce(ME)), Ok(()));
    assert_eq!(
        f.from_guest(&ping(PEER, MY_IP)),
        Err(DropReason::SpoofedMac)
    );
    assert_eq!(
        f.from_guest(&ping(ME, OTHER_IP)),
        Err(DropReason::SpoofedIp)
    );
    assert_eq!(
        f.from_guest(&arp_frame(2, ME, OTHER_IP)),
        Err(DropReason::SpoofedArp)
    );
    assert_eq!(
        f.from_guest(&eth(BCAST, ME, 0x86dd, &[0x60; 40])),
        Err(DropReason::L2NotAllowed)
    );
    // Fixed addresses: nothing is learned.
    assert_eq!(f.learned_ip(), None);
}

#[test]
fn without_ip_parameter_and_learning_no_address_passes() {
    let f = filter(&all(), &[], false);
    assert_eq!(f.from_guest(&ping(ME, MY_IP)), Err(DropReason::SpoofedIp));
    assert_eq!(f.from_guest(&dhcp_discover()), Ok(()));
    assert_eq!(f.learned_ip(), None);
}

#[test]
fn learning_takes_the_first_ipv4_source_and_holds_the_guest_to_it() {
    let f = clean(&[]);
    // DHCP from 0.0.0.0, multicast and broadcast sources teach nothing.
    assert_eq!(f.from_guest(&dhcp_discover()), Ok(()));
    assert_eq!(f.from_guest(&arp_frame(1, ME, [0; 4])), Ok(()), "probe");
    assert_eq!(
        f.from_guest(&ping(ME, [224, 0, 0, 1])),
        Err(DropReason::SpoofedIp)
    );
    assert_eq!(f.learned_ip(), None);
    // The first address used is learned...
    assert_eq!(f.from_guest(&ping(ME, MY_IP)), Ok(()));
    assert_eq!(f.learned_ip(), Some(Ipv4Addr::from(MY_IP)));
    assert_eq!(f.from_guest(&ping(ME, MY_IP)), Ok(()));
    assert_eq!(f.from_guest(&arp_frame(2, ME, MY_IP)), Ok(()));
    // ...and the guest is held to it.
    assert_eq!(
        f.from_guest(&ping(ME, OTHER_IP)),
        Err(DropReason::SpoofedIp)
    );
    assert_eq!(
        f.from_guest(&arp_frame(2, ME, OTHER_IP)),
        Err(DropReason::SpoofedArp)
    );
    assert_eq!(f.learned_ip(), Some(Ipv4Addr::from(MY_IP)));
}

#[test]
fn learning_from_an_arp_sender() {
    let f = clean(&[]);
    // A forged ARP (another MAC) teaches nothing.
    assert_eq!(
        f.from_guest(&arp_frame(1, PEER, OTHER_IP)),
        Err(DropReason::SpoofedArp)
    );
    assert_eq!(f.learned_ip(), None);
    assert_eq!(f.from_guest(&arp_frame(1, ME, MY_IP2)), Ok(()));
    assert_eq!(f.learned_ip(), Some(Ipv4Addr::from(MY_IP2)));
    assert_eq!(f.from_guest(&ping(ME, MY_IP2)), Ok(()));
    assert_eq!(f.from_guest(&ping(ME, MY_IP)), Err(DropReason::SpoofedIp));
}

#[test]
fn a_vlan_tag_does_not_hide_the_inner_frame() {
    let f = clean(&[MY_IP]);
    assert_eq!(f.from_guest(&tagged(&ping(ME, MY_IP), 42)), Ok(()));
    assert_eq!(
        f.from_guest(&tagged(&ping(ME, OTHER_IP), 42)),
        Err(DropReason::SpoofedIp)
    );
    assert_eq!(
        f.from_guest(&tagged(&tagged(&arp_frame(2, ME, OTHER_IP), 7), 42)),
        Err(DropReason::SpoofedArp),
        "QinQ"
    );
    assert_eq!(
        f.from_guest(&tagged(&eth(BCAST, ME, 0x86dd, &[0x60; 40]), 42)),
        Err(DropReason::L2NotAllowed)
    );
    assert_eq!(
        f.to_guest(&tagged(&eth(ME, PEER, 0x86dd, &[0x60; 40]), 42)),
        Err(DropReason::L2NotAllowedIn)
    );
    assert_eq!(f.to_guest(&tagged(&ping(PEER, OTHER_IP), 42)), Ok(()));
    // A tag cut short is no IPv4.
    let cut = &tagged(&ping(ME, MY_IP), 42)[..16];
    assert_eq!(f.from_guest(cut), Err(DropReason::L2NotAllowed));
}

#[test]
fn short_frames_are_judged_without_panicking() {
    let f = clean(&[MY_IP]);
    for et in [0x0800u16, 0x0806, 0x8035, 0x8100, 0x88a8] {
        for extra in 0..30 {
            let fr = eth(BCAST, ME, et, &vec![0x45; extra]);
            let _ = f.from_guest(&fr);
            let _ = f.to_guest(&fr);
        }
    }
    let fr = eth(BCAST, ME, 0x0800, &ipv4([0; 4], [255; 4], 17, &[]));
    assert_eq!(
        f.from_guest(&fr),
        Err(DropReason::SpoofedIp),
        "no UDP header"
    );
}

#[test]
fn a_filter_without_a_unicast_mac_is_refused() {
    for mac in [
        "",
        "52:54:00:00:00",
        "01:00:5e:00:00:01",
        "00:00:00:00:00:00",
        "zz:54:00:00:00:01",
    ] {
        let e = Filter::new(
            "vm-1",
            &PortFilter {
                mac: mac.into(),
                parts: all(),
                ips: vec![],
                learn: true,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("port 'vm-1'") && e.contains("unicast MAC"),
            "{e}"
        );
    }
}

/// The hot path on legitimate frames: every one passes. With many frames it is the
/// microbenchmark of the filter's cost:
/// `FILTER_COST_FRAMES=30000000 cargo test -p virtnet-vhost-net --release --lib filter::tests::cost -- --nocapture`
/// (a short run by default, so the suite stays fast).
#[test]
fn cost() {
    let f = clean(&[MY_IP]);
    let frames = [ping(ME, MY_IP), arp_frame(2, ME, MY_IP), ping(ME, MY_IP)];
    // FILTER_COST_FRAMES: fewer frames under callgrind (instructions per frame).
    let n: u64 = std::env::var("FILTER_COST_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let t = std::time::Instant::now();
    let mut ok = 0u64;
    for i in 0..n {
        let fr = std::hint::black_box(&frames[(i % 3) as usize]);
        ok += u64::from(f.from_guest(fr).is_ok());
    }
    let dt = t.elapsed();
    assert_eq!(ok, n);
    println!(
        "filter: {:.1} ns per frame, {:.1} M frames/s on one core",
        dt.as_nanos() as f64 / n as f64,
        n as f64 / dt.as_secs_f64() / 1e6
    );
}
