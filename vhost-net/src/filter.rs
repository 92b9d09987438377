//! A port's anti-spoofing filter: libvirt's `clean-traffic` and its parts
//! ([`PortFilter`], expanded by virtnetd from the NIC's `<filterref>`), enforced on each
//! frame the guest sends ([`Filter::from_guest`]) and, for `no-other-l2-traffic`, on each
//! frame the switch delivers to it ([`Filter::to_guest`]).
//!
//! Semantics (those of libvirt's stock filters, `src/nwfilter/xml/*.xml`):
//! - `no-mac-spoofing`: every frame from the guest carries its MAC as source.
//! - `no-ip-spoofing`: IPv4 from the guest carries one of its addresses; 0.0.0.0 only as a
//!   DHCP request (UDP 68 → 67 to 255.255.255.255). Malformed IPv4 is dropped too.
//! - `no-arp-spoofing`: ARP from the guest is a request or reply (opcode 1 or 2) naming its
//!   MAC as sender hardware address and one of its addresses (or 0.0.0.0, an RFC 5227 probe)
//!   as sender protocol address.
//! - `no-other-l2-traffic`: from the guest only IPv4, ARP and QEMU's announce-self RARP
//!   (opcode 3, broadcast, both hardware addresses its MAC, both protocol addresses 0.0.0.0);
//!   to the guest only IPv4, ARP and such a RARP for its own MAC (libvirt drops the rest in
//!   both directions).
//! - `allow-dhcp`, `allow-arp`: accept rules only (what they accept the parts above let
//!   through); nothing to drop.
//!
//! Address learning (`learn`, no `IP` parameter, libvirt's `CTRL_IP_LEARNING=any`): the
//! first non-zero unicast IPv4 source (an IPv4 packet's source, or an ARP sender address)
//! the guest uses becomes its address for the life of the port; later frames are checked
//! against it.
//!
//! VLAN tags: frames from a trunk guest (and to it) may carry 802.1Q/802.1ad tags; the
//! rules apply to the frame inside the tags (up to two), so a tag never hides a forged
//! address. The source MAC is the outer one (the only one a frame has).
//!
//! Each dropped frame is counted under its [`DropReason`]: `spoofed_mac`, `spoofed_ip`,
//! `spoofed_arp`, `l2_not_allowed` (from the guest) and `l2_not_allowed_in` (to it).
//! The filter reads only the frame's first bytes and touches one atomic when learning, so it
//! runs on the forwarding threads with no lock.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

use virtnet_vswitch_control::{FilterPart, PortFilter};

use crate::counters::DropReason;
use crate::error::{Error, Result};
use crate::mac_table::Mac;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_RARP: u16 = 0x8035;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const BROADCAST: Mac = [0xff; 6];

/// A port's filter, ready for the hot path.
#[derive(Debug)]
pub struct Filter {
    mac: Mac,
    no_mac_spoofing: bool,
    no_ip_spoofing: bool,
    no_arp_spoofing: bool,
    no_other_l2: bool,
    /// The guest's addresses (`IP` parameters), as big-endian u32.
    ips: Vec<u32>,
    learn: bool,
    /// The learned address (big-endian u32); 0 while none is.
    learned: AtomicU32,
}

impl Filter {
    /// The filter of port `port` from its policy. Refused: a MAC that is not a unicast
    /// `aa:bb:cc:dd:ee:ff` address (the filter would let nothing or anything through).
    pub fn new(port: &str, f: &PortFilter) -> Result<Filter> {
        let mac = parse_mac(&f.mac)
            .filter(|m| m[0] & 1 == 0 && *m != [0; 6])
            .ok_or_else(|| {
                Error::InvalidOption(format!(
                    "port '{port}': the filter needs the guest's unicast MAC, got '{}'",
                    f.mac
                ))
            })?;
        let has = |p| f.parts.contains(&p);
        Ok(Filter {
            mac,
            no_mac_spoofing: has(FilterPart::NoMacSpoofing),
            no_ip_spoofing: has(FilterPart::NoIpSpoofing),
            no_arp_spoofing: has(FilterPart::NoArpSpoofing),
            no_other_l2: has(FilterPart::NoOtherL2Traffic),
            ips: f.ips.iter().map(|ip| u32::from(*ip)).collect(),
            learn: f.learn,
            learned: AtomicU32::new(0),
        })
    }

    /// The address learned so far (`learn` only).
    pub fn learned_ip(&self) -> Option<Ipv4Addr> {
        match self.learned.load(Ordering::Relaxed) {
            0 => None,
            a => Some(Ipv4Addr::from(a)),
        }
    }

    /// Checks a frame the guest sent (`frame`: the Ethernet frame, at least 14 bytes).
    pub fn from_guest(&self, frame: &[u8]) -> std::result::Result<(), DropReason> {
        if self.no_mac_spoofing && frame[6..12] != self.mac {
            return Err(DropReason::SpoofedMac);
        }
        let (ethertype, l3) = inner(frame);
        match ethertype {
            ETH_P_IP => {
                if self.no_ip_spoofing {
                    self.check_ipv4(l3)?;
                }
                Ok(())
            }
            ETH_P_ARP => {
                if self.no_arp_spoofing {
                    self.check_arp(l3)?;
                }
                Ok(())
            }
            ETH_P_RARP if !self.no_other_l2 || self.announce_self(frame, l3, true) => Ok(()),
            _ if self.no_other_l2 => Err(DropReason::L2NotAllowed),
            _ => Ok(()),
        }
    }

    /// Checks a frame about to be delivered to the guest.
    pub fn to_guest(&self, frame: &[u8]) -> std::result::Result<(), DropReason> {
        if !self.no_other_l2 {
            return Ok(());
        }
        let (ethertype, l3) = inner(frame);
        match ethertype {
            ETH_P_IP | ETH_P_ARP => Ok(()),
            ETH_P_RARP if self.announce_self(frame, l3, false) => Ok(()),
            _ => Err(DropReason::L2NotAllowedIn),
        }
    }

    /// IPv4 from the guest: its address, or 0.0.0.0 as a DHCP request.
    fn check_ipv4(&self, ip: &[u8]) -> std::result::Result<(), DropReason> {
        let ihl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f) * 4;
        if ip.len() < 20 || ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl {
            return Err(DropReason::SpoofedIp);
        }
        let src = be32(&ip[12..16]);
        if src == 0 {
            let dhcp = ip[9] == 17
                && be32(&ip[16..20]) == u32::MAX
                && ip.len() >= ihl + 4
                && ip[ihl..ihl + 4] == [0, 68, 0, 67];
            return if dhcp {
                Ok(())
            } else {
                Err(DropReason::SpoofedIp)
            };
        }
        if self.owns(src) {
            Ok(())
        } else {
            Err(DropReason::SpoofedIp)
        }
    }

    /// ARP from the guest: request or reply, naming its MAC and one of its addresses (or
    /// 0.0.0.0, a probe).
    fn check_arp(&self, arp: &[u8]) -> std::result::Result<(), DropReason> {
        // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, opcode; sha, spa, tha, tpa.
        if arp.len() < 28 || arp[0..6] != [0, 1, 8, 0, 6, 4] {
            return Err(DropReason::SpoofedArp);
        }
        let op = u16::from_be_bytes([arp[6], arp[7]]);
        if (op != 1 && op != 2) || arp[8..14] != self.mac {
            return Err(DropReason::SpoofedArp);
        }
        let spa = be32(&arp[14..18]);
        if spa == 0 || self.owns(spa) {
            Ok(())
        } else {
            Err(DropReason::SpoofedArp)
        }
    }

    /// Whether `addr` (non-zero) is the guest's: one of its `IP`s, the learned one, or
    /// (learning, nothing learned yet, a unicast address) the first it uses.
    fn owns(&self, addr: u32) -> bool {
        if self.ips.contains(&addr) {
            return true;
        }
        if !self.learn {
            return false;
        }
        let learned = self.learned.load(Ordering::Relaxed);
        if learned != 0 {
            return learned == addr;
        }
        if !Ipv4Addr::from(addr).is_unspecified()
            && !Ipv4Addr::from(addr).is_multicast()
            && !Ipv4Addr::from(addr).is_broadcast()
        {
            // Two queues of the port may race here: one address wins, the other is checked
            // against it.
            return match self.learned.compare_exchange(
                0,
                addr,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => true,
                Err(winner) => winner == addr,
            };
        }
        false
    }

    /// QEMU's announce-self RARP for the guest's MAC (libvirt's `qemu-announce-self-rarp`):
    /// opcode 3, to broadcast, both hardware addresses the guest's MAC, both protocol
    /// addresses 0.0.0.0; from the guest, its Ethernet source is the guest's MAC too.
    fn announce_self(&self, frame: &[u8], rarp: &[u8], from_guest: bool) -> bool {
        rarp.len() >= 28
            && rarp[0..8] == [0, 1, 8, 0, 6, 4, 0, 3]
            && frame[0..6] == BROADCAST
            && (!from_guest || frame[6..12] == self.mac)
            && rarp[8..14] == self.mac
            && rarp[18..24] == self.mac
            && rarp[14..18] == [0; 4]
            && rarp[24..28] == [0; 4]
    }
}

/// The ethertype and payload of `frame` inside up to two VLAN tags (a truncated tag gives
/// the tag's own type and an empty payload).
fn inner(frame: &[u8]) -> (u16, &[u8]) {
    let mut et = u16::from_be_bytes([frame[12], frame[13]]);
    let mut at = 14;
    for _ in 0..2 {
        if (et != ETH_P_8021Q && et != ETH_P_8021AD) || frame.len() < at + 4 {
            break;
        }
        et = u16::from_be_bytes([frame[at + 2], frame[at + 3]]);
        at += 4;
    }
    (et, &frame[at.min(frame.len())..])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn parse_mac(s: &str) -> Option<Mac> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in m.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

#[cfg(test)]
mod tests;
