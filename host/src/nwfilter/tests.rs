//! The filter tables in the kernel: frames written on the far end of a veth whose near end is
//! a bridge port (what a guest's tap is) are counted where the rules say; learning keeps the
//! first address; a leftover table is replaced; undo deletes the table.

use std::net::Ipv4Addr;

use serde_json::Value;
use virtnet_conf::interface::{FilterPart, MacAddr};
use virtnet_testkit::{add_bridge, add_veth_pair, ip, require, with_netns, Need};

use super::*;

const MAC: &str = "52:54:00:00:01:02";
const OTHER_MAC: &str = "52:54:00:66:66:66";

fn filter(table: &str, ips: &[&str]) -> TapFilter {
    TapFilter {
        table: table.into(),
        tap: "vp0".into(),
        family: FilterFamily::Bridge,
        mac: MAC.parse().unwrap(),
        filter: FilterSpec {
            name: "clean-traffic".into(),
            parts: FilterPart::ALL.into_iter().collect(),
            ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
            learning: ips.is_empty(),
        },
    }
}

/// A bridge `br0` (10.0.1.1/24) with port `vp0`, whose peer `vg0` stands for the guest (with
/// the guest's MAC). IPv6 off in the namespace: the links' own neighbour discovery would be
/// counted (vg0's as other_l2, the host's as other_l2_in).
fn bridge_with_port() {
    for f in ["all", "default"] {
        std::fs::write(format!("/proc/sys/net/ipv6/conf/{f}/disable_ipv6"), "1").unwrap();
    }
    add_bridge("br0", Some("10.0.1.1/24"));
    add_veth_pair("vp0", "vg0", None);
    ip("link set vg0 down");
    ip(&format!("link set vg0 address {MAC}"));
    ip("link set vp0 master br0");
    ip("link set vp0 up");
    ip("link set vg0 up");
}

/// Writes one Ethernet frame on `ifname` (AF_PACKET, raw).
fn send(ifname: &str, frame: &[u8]) {
    let name = std::ffi::CString::new(ifname).unwrap();
    // SAFETY: if_nametoindex reads a NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert_ne!(index, 0, "no link {ifname}");
    // SAFETY: socket(2) with constant arguments; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = index as i32;
    addr.sll_halen = 6;
    // SAFETY: `frame` and `addr` are valid for the lengths given; `fd` is ours.
    let n = unsafe {
        libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing the fd opened above.
    unsafe { libc::close(fd) };
    assert_eq!(n, frame.len() as isize, "sendto: {err}");
}

fn eth(src: &str, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src.parse::<MacAddr>().unwrap().0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// An IPv4 UDP datagram `src:sport -> dst:dport` with an 8-byte body.
fn udp(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    let (s, d): (Ipv4Addr, Ipv4Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut p = vec![0x45, 0, 0, 36, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    let sum: u32 = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0, 16, 0, 0]);
    p.extend_from_slice(&[0; 8]);
    p
}

/// An Ethernet/IPv4 ARP packet: `op` (1 request, 2 reply), sender MAC and address.
fn arp(op: u16, sha: &str, spa: &str, tpa: &str) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha.parse::<MacAddr>().unwrap().0);
    p.extend_from_slice(&spa.parse::<Ipv4Addr>().unwrap().octets());
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&tpa.parse::<Ipv4Addr>().unwrap().octets());
    p
}

fn dropped(table: &str) -> FilterStatus {
    status(table).unwrap().expect("the table exists")
}

fn count(st: &FilterStatus, c: DropCounter) -> u64 {
    st.dropped.get(c.name()).copied().unwrap_or(0)
}

#[test]
fn clean_traffic_with_ips_counts_each_forgery_and_passes_the_rest() {
    if !require(&[Need::Root, Need::Binary(nft::NFT)]) {
        return;
    }
    with_netns(|| {
        bridge_with_port();
        let t = "virtnet-filter-vm1-vp0";
        let undo = load(&filter(t, &["10.0.1.2", "10.0.1.3"])).unwrap();
        let legit = [
            eth(MAC, 0x0800, &udp("10.0.1.2", "10.0.1.1", 5000, 5000)),
            eth(MAC, 0x0800, &udp("10.0.1.3", "10.0.1.1", 5000, 5000)),
            eth(MAC, 0x0800, &udp("0.0.0.0", "255.255.255.255", 68, 67)),
            eth(MAC, 0x0806, &arp(1, MAC, "10.0.1.2", "10.0.1.1")),
            eth(MAC, 0x0806, &arp(2, MAC, "10.0.1.3", "10.0.1.1")),
            eth(MAC, 0x0806, &arp(1, MAC, "0.0.0.0", "10.0.1.2")),
            eth(MAC, 0x8035, &arp(3, MAC, "0.0.0.0", "0.0.0.0")),
        ];
        for f in &legit {
            send("vg0", f);
        }
        let st = dropped(t);
        assert!(st.dropped.values().all(|v| *v == 0), "{st:?}");
        assert_eq!(st.learned, None);

        send(
            "vg0",
            &eth(OTHER_MAC, 0x0800, &udp("10.0.1.2", "10.0.1.1", 1, 1)),
        );
        send("vg0", &eth(MAC, 0x0800, &udp("10.0.1.9", "10.0.1.1", 1, 1)));
        send(
            "vg0",
            &eth(MAC, 0x0806, &arp(2, MAC, "10.0.1.9", "10.0.1.1")),
        );
        send(
            "vg0",
            &eth(MAC, 0x0806, &arp(2, OTHER_MAC, "10.0.1.2", "10.0.1.1")),
        );
        send(
            "vg0",
            &eth(MAC, 0x0806, &arp(3, MAC, "10.0.1.2", "10.0.1.1")),
        );
        send("vg0", &eth(MAC, 0x86dd, &[0x60; 40]));
        send("vg0", &eth(MAC, 0x8100, &[0, 1, 8, 0]));
        let st = dropped(t);
        assert_eq!(count(&st, DropCounter::MacSpoofing), 1, "{st:?}");
        assert_eq!(count(&st, DropCounter::IpSpoofing), 1, "{st:?}");
        assert_eq!(count(&st, DropCounter::ArpSpoofing), 3, "{st:?}");
        assert_eq!(count(&st, DropCounter::OtherL2), 2, "{st:?}");

        // Towards the guest (the host writes on the bridge, which floods to the port): IPv4,
        // ARP and RARP pass, another ethertype is dropped and counted.
        assert_eq!(count(&st, DropCounter::OtherL2In), 0, "{st:?}");
        let host = "02:00:00:00:00:01";
        send(
            "br0",
            &eth(host, 0x0800, &udp("10.0.1.1", "10.0.1.2", 67, 68)),
        );
        send(
            "br0",
            &eth(host, 0x0806, &arp(1, host, "10.0.1.1", "10.0.1.2")),
        );
        send("br0", &eth(host, 0x86dd, &[0x60; 40]));
        send("br0", &eth(host, 0x88cc, &[0; 40]));
        let st = dropped(t);
        assert_eq!(count(&st, DropCounter::OtherL2In), 2, "{st:?}");

        assert_eq!(
            tables().unwrap(),
            vec![(FilterFamily::Bridge, t.to_string())]
        );
        undo.apply(&crate::LinuxHost::new().unwrap()).unwrap();
        assert!(status(t).unwrap().is_none());
        assert!(tables().unwrap().is_empty());
        nft::delete_table("bridge", t).unwrap();
    });
}

/// A tap on no bridge (`type='ethernet'`): the same rules at the tap's own ingress and
/// egress (netdev family); its frames reach the host's stack directly.
#[test]
fn a_tap_on_no_bridge_is_filtered_at_its_own_hooks() {
    if !require(&[Need::Root, Need::Binary(nft::NFT)]) {
        return;
    }
    with_netns(|| {
        for f in ["all", "default"] {
            std::fs::write(format!("/proc/sys/net/ipv6/conf/{f}/disable_ipv6"), "1").unwrap();
        }
        add_veth_pair("vp0", "vg0", Some("10.0.1.1/24"));
        ip("link set vg0 down");
        ip(&format!("link set vg0 address {MAC}"));
        ip("link set vg0 up");
        let t = "virtnet-filter-vm4-vp0";
        let mut f = filter(t, &["10.0.1.2"]);
        f.family = FilterFamily::Netdev;
        let undo = load(&f).unwrap();
        assert_eq!(
            undo,
            HostUndo::DeleteNftTable {
                family: "netdev".into(),
                name: t.into()
            }
        );
        assert_eq!(family_of(t).unwrap(), Some(FilterFamily::Netdev));
        send("vg0", &eth(MAC, 0x0800, &udp("10.0.1.2", "10.0.1.1", 1, 1)));
        send(
            "vg0",
            &eth(MAC, 0x0806, &arp(1, MAC, "10.0.1.2", "10.0.1.1")),
        );
        assert!(
            dropped(t).dropped.values().all(|v| *v == 0),
            "{:?}",
            dropped(t)
        );
        send(
            "vg0",
            &eth(OTHER_MAC, 0x0800, &udp("10.0.1.2", "10.0.1.1", 1, 1)),
        );
        send("vg0", &eth(MAC, 0x0800, &udp("10.0.1.9", "10.0.1.1", 1, 1)));
        send(
            "vg0",
            &eth(MAC, 0x0806, &arp(2, MAC, "10.0.1.9", "10.0.1.1")),
        );
        send("vg0", &eth(MAC, 0x86dd, &[0x60; 40]));
        let st = dropped(t);
        assert_eq!(count(&st, DropCounter::MacSpoofing), 1, "{st:?}");
        assert_eq!(count(&st, DropCounter::IpSpoofing), 1, "{st:?}");
        assert_eq!(count(&st, DropCounter::ArpSpoofing), 1, "{st:?}");
        assert_eq!(count(&st, DropCounter::OtherL2), 1, "{st:?}");
        assert_eq!(
            tables().unwrap(),
            vec![(FilterFamily::Netdev, t.to_string())]
        );
        nft::delete_table("netdev", t).unwrap();
        assert!(status(t).unwrap().is_none());
    });
}

#[test]
fn without_ips_the_first_address_used_is_learnt_and_kept() {
    if !require(&[Need::Root, Need::Binary(nft::NFT)]) {
        return;
    }
    with_netns(|| {
        bridge_with_port();
        let t = "virtnet-filter-vm2-vp0";
        load(&filter(t, &[])).unwrap();
        // A DHCP request and an ARP probe teach nothing.
        send(
            "vg0",
            &eth(MAC, 0x0800, &udp("0.0.0.0", "255.255.255.255", 68, 67)),
        );
        send(
            "vg0",
            &eth(MAC, 0x0806, &arp(1, MAC, "0.0.0.0", "10.0.1.5")),
        );
        assert_eq!(dropped(t).learned, None);
        send(
            "vg0",
            &eth(MAC, 0x0806, &arp(1, MAC, "10.0.1.5", "10.0.1.1")),
        );
        let st = dropped(t);
        assert_eq!(st.learned, Some("10.0.1.5".parse().unwrap()), "{st:?}");
        send("vg0", &eth(MAC, 0x0800, &udp("10.0.1.5", "10.0.1.1", 1, 1)));
        send("vg0", &eth(MAC, 0x0800, &udp("10.0.1.6", "10.0.1.1", 1, 1)));
        send(
            "vg0",
            &eth(MAC, 0x0806, &arp(2, MAC, "10.0.1.6", "10.0.1.1")),
        );
        let st = dropped(t);
        assert_eq!(st.learned, Some("10.0.1.5".parse().unwrap()), "{st:?}");
        assert_eq!(count(&st, DropCounter::IpSpoofing), 1, "{st:?}");
        assert_eq!(count(&st, DropCounter::ArpSpoofing), 1, "{st:?}");
        nft::delete_table("bridge", t).unwrap();
    });
}

#[test]
fn a_leftover_table_is_replaced_whole() {
    if !require(&[Need::Root, Need::Binary(nft::NFT)]) {
        return;
    }
    with_netns(|| {
        bridge_with_port();
        let t = "virtnet-filter-vm3-vp0";
        load(&filter(t, &[])).unwrap();
        send("vg0", &eth(MAC, 0x0800, &udp("10.0.1.7", "10.0.1.1", 1, 1)));
        assert!(dropped(t).learned.is_some());
        load(&filter(t, &["10.0.1.2"])).unwrap();
        let objs = nft::list_table("bridge", t).unwrap().unwrap();
        let sets = objs.iter().filter(|o| o.get("set").is_some()).count();
        let base_chains = objs
            .iter()
            .filter(|o| o.get("chain").and_then(|c| c.get("hook")).is_some())
            .count();
        assert_eq!((sets, base_chains), (0, 2), "{objs:?}");
        assert_eq!(
            dropped(t),
            FilterStatus {
                dropped: DropCounter::ALL
                    .iter()
                    .map(|c| (c.name().to_string(), 0))
                    .collect(),
                learned: None,
            }
        );
        nft::delete_table("bridge", t).unwrap();
    });
}

#[test]
fn parts_alone_load_only_their_rules() {
    if !require(&[Need::Root, Need::Binary(nft::NFT)]) {
        return;
    }
    with_netns(|| {
        bridge_with_port();
        for part in FilterPart::ALL {
            let mut f = filter("virtnet-filter-part-vp0", &["10.0.1.2"]);
            f.filter.parts = [part].into_iter().collect();
            f.filter.name = part.name().into();
            load(&f).unwrap_or_else(|e| panic!("{}: {e}", part.name()));
            let st = dropped(&f.table);
            let want: Vec<&str> = DropCounter::ALL
                .into_iter()
                .filter(|c| c.used_by(&f))
                .map(DropCounter::name)
                .collect();
            let got: Vec<&str> = st.dropped.keys().map(String::as_str).collect();
            let mut want_sorted = want.clone();
            want_sorted.sort();
            assert_eq!(got, want_sorted, "{}", part.name());
        }
        nft::delete_table("bridge", "virtnet-filter-part-vp0").unwrap();
    });
}

/// The whole batch, as a value: clean-traffic with fixed addresses on a bridge port, and
/// learning on a tap on no bridge (snapshots in `snapshots/`).
#[test]
fn snapshot_rulesets() {
    let fixed = filter("virtnet-filter-vm1-vnet0", &["10.0.0.2", "10.0.0.3"]);
    insta::assert_yaml_snapshot!("clean_traffic_bridge_fixed", rules::ruleset(&fixed));
    let mut learning = filter("virtnet-filter-vm1-tap0", &[]);
    learning.family = FilterFamily::Netdev;
    learning.tap = "tap0".into();
    insta::assert_yaml_snapshot!("clean_traffic_netdev_learning", rules::ruleset(&learning));
}

#[test]
fn table_names_are_nft_names() {
    assert_eq!(
        table_name("web 1/ü", "vnet3"),
        "virtnet-filter-web_1__-vnet3"
    );
    assert!(is_table_of("virtnet-filter-web-vnet1", "vnet1"));
    assert!(!is_table_of("virtnet-filter-web-vnet11", "vnet1"));
    assert!(!is_table_of("other-web-vnet1", "vnet1"));
    let long = "x".repeat(300);
    assert!(table_name(&long, "vnet0").len() < 100);
    let _: Value = serde_json::to_value(filter("t", &[])).unwrap();
}
