//! The uplink: a tap device in a private network namespace, the host's side of the
//! switch. A guest (the in-process frontend) resolves the host's address with ARP and
//! pings it; the tap disappears with the switch.

mod common;

use std::time::{Duration, Instant};

use common::*;
use virtnet_testkit::{ip, links, with_netns};
use virtnet_vhost_net::vnet_hdr::{checksum, VnetHdr};
use virtnet_vhost_net::{PortConfig, Switch, SwitchConfig};

const GUEST_IP: [u8; 4] = [10, 9, 0, 2];
const HOST_IP: [u8; 4] = [10, 9, 0, 1];

fn arp_request(src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&GUEST_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&HOST_IP);
    f
}

fn echo_request(src: [u8; 6], dst: [u8; 6], id: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&1u16.to_be_bytes());
    icmp.extend((0..32).map(|i| i as u8));
    let c = checksum(0, &icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut iph = vec![0x45, 0];
    iph.extend_from_slice(&total.to_be_bytes());
    iph.extend_from_slice(&[0, 1, 0x40, 0, 64, 1, 0, 0]);
    iph.extend_from_slice(&GUEST_IP);
    iph.extend_from_slice(&HOST_IP);
    let c = checksum(0, &iph);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&iph);
    f.extend_from_slice(&icmp);
    f
}

/// Receives frames until one satisfies `want` (the host also sends IPv6 chatter).
fn recv_matching(g: &mut TestGuest, what: &str, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Some(rx) = g.recv_timeout(0, Duration::from_millis(200)) {
            if want(&rx.frame) {
                return rx.frame;
            }
        }
    }
    panic!("no {what} from the host within 5 s");
}

#[test]
fn a_guest_reaches_the_host_through_the_uplink_tap() {
    with_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        let sw = Switch::new(SwitchConfig::default());
        sw.add_tap_port("uplink", "vsw0").unwrap();
        ip("link set vsw0 up");
        ip("addr add 10.9.0.1/24 dev vsw0");
        let (l, p) = listen(dir.path(), "g");
        sw.add_port(PortConfig::new("g", &p)).unwrap();
        let mut g = TestGuest::new(accept(&l), LINUX_LIKE, 1, 2048);
        g.post_rx(0, 128);
        wait_for("guest port ready", || {
            sw.list_ports().iter().all(|p| p.ready_queues > 0)
        });
        let me = mac(1);

        g.send(0, &VnetHdr::default(), &arp_request(me));
        let reply = recv_matching(&mut g, "ARP reply", |f| {
            f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2]
        });
        assert_eq!(&reply[28..32], &HOST_IP, "the host answers for 10.9.0.1");
        assert_eq!(&reply[0..6], &me);
        let mut host = [0u8; 6];
        host.copy_from_slice(&reply[6..12]);

        g.send(0, &VnetHdr::default(), &echo_request(me, host, 0x4242));
        let pong = recv_matching(&mut g, "ICMP echo reply", |f| {
            f.len() >= 42
                && f[12..14] == [0x08, 0x00]
                && f[23] == 1
                && f[34] == 0
                && f[38..40] == [0x42, 0x42]
        });
        assert_eq!(&pong[26..30], &HOST_IP);

        let up = sw.port_counters("uplink").unwrap();
        assert!(up.rx_packets >= 2 && up.tx_packets >= 2, "{up:?}");
        assert_eq!(up.total_drops(), 0, "{up:?}");
        let macs = sw.mac_table();
        assert!(macs.iter().any(|e| e.port == "uplink"), "{macs:?}");
        drop(sw);
        assert!(
            !links().iter().any(|l| l == "vsw0"),
            "the tap goes away with the switch"
        );
    });
}
