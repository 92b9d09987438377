//! Reading the neighbour table (RTM_GETNEIGH dump): which IPv4 address answers ARP from
//! which MAC, as `ip neigh` shows it.

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::NLM_F_DUMP;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::NetlinkTransport;
use virtnet_conf::interface::MacAddr;

/// One IPv4 neighbour entry with a known link-layer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    /// The neighbour's IPv4 address.
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: MacAddr,
    /// The interface index the entry is on.
    pub ifindex: u32,
}

/// Every IPv4 neighbour entry of the calling thread's namespace that has a MAC (incomplete
/// and failed entries have none and are left out).
pub(crate) fn ipv4_neighbours(nl: &dyn NetlinkTransport) -> io::Result<Vec<Neighbour>> {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Inet;
    let replies = nl.request(RouteNetlinkMessage::GetNeighbour(msg), NLM_F_DUMP)?;
    Ok(replies
        .iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewNeighbour(m) => neighbour(m),
            _ => None,
        })
        .collect())
}

/// The entry of `m`, if it is IPv4, usable and has a MAC.
fn neighbour(m: &NeighbourMessage) -> Option<Neighbour> {
    if matches!(
        m.header.state,
        NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None
    ) {
        return None;
    }
    let mut ip = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => ip = Some(*v),
            NeighbourAttribute::LinkLayerAddress(b) => mac = MacAddr::from_slice(b),
            _ => {}
        }
    }
    Some(Neighbour {
        ip: ip?,
        mac: mac?,
        ifindex: m.header.ifindex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: NeighbourState, ip: [u8; 4], mac: Option<[u8; 6]>) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.state = state;
        m.header.ifindex = 7;
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                Ipv4Addr::from(ip),
            )));
        if let Some(mac) = mac {
            m.attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        }
        m
    }

    /// Reachable and stale entries count; incomplete and failed ones (no MAC) do not.
    #[test]
    fn keeps_entries_with_a_mac() {
        let mac = [0x52, 0x54, 0, 1, 2, 3];
        let n = neighbour(&entry(NeighbourState::Stale, [10, 0, 0, 2], Some(mac))).unwrap();
        assert_eq!(n.ip, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(n.mac.to_string(), "52:54:00:01:02:03");
        assert_eq!(n.ifindex, 7);
        assert!(neighbour(&entry(NeighbourState::Incomplete, [10, 0, 0, 3], None)).is_none());
        assert!(neighbour(&entry(NeighbourState::Failed, [10, 0, 0, 4], Some(mac))).is_none());
    }
}
