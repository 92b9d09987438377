//! Building and reading RTM_*LINK messages.

use std::io;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::NetlinkTransport;
use virtnet_conf::interface::MacAddr;

/// How a request names a link.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LinkRef<'a> {
    Name(&'a str),
    Index(u32),
}

/// What [`crate::HostNet::link`] reports about a network device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
    /// `IFLA_INFO_KIND` (`tun`, `bridge`, `macvtap`, `veth`...), `None` for physical NICs.
    pub kind: Option<String>,
    /// Hardware address.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Name of the master device (bridge), if attached.
    pub master: Option<String>,
    /// The kernel's counters (`IFLA_STATS64`), from the host's side of the link.
    pub stats: Option<LinkCounters>,
}

/// A link's traffic counters as the kernel keeps them (`IFLA_STATS64`), seen from the host:
/// for a tap, `rx` is what the guest sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped on the way out.
    pub tx_dropped: u64,
    /// Transmit errors.
    pub tx_errors: u64,
}

impl LinkStatus {
    /// Summarizes a link message; `master` is filled in by the caller (it needs a lookup).
    pub(crate) fn from_message(m: &LinkMessage) -> Self {
        let mut s = LinkStatus {
            name: link_name(m).unwrap_or_default().to_string(),
            ifindex: m.header.index,
            kind: link_kind(m),
            mac: None,
            mtu: None,
            up: m.header.flags.contains(LinkFlags::Up),
            master: None,
            stats: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::Address(b) => s.mac = MacAddr::from_slice(b),
                LinkAttribute::Mtu(v) => s.mtu = Some(*v),
                LinkAttribute::Stats64(c) => {
                    s.stats = Some(LinkCounters {
                        rx_packets: c.rx_packets,
                        rx_bytes: c.rx_bytes,
                        rx_dropped: c.rx_dropped,
                        rx_errors: c.rx_errors,
                        tx_packets: c.tx_packets,
                        tx_bytes: c.tx_bytes,
                        tx_dropped: c.tx_dropped,
                        tx_errors: c.tx_errors,
                    })
                }
                _ => {}
            }
        }
        s
    }
}

/// RTM_GETLINK for one link; `Ok(None)` if it does not exist.
pub(crate) fn get_link(
    nl: &dyn NetlinkTransport,
    link: LinkRef<'_>,
    with_vfs: bool,
) -> io::Result<Option<LinkMessage>> {
    let mut msg = LinkMessage::default();
    match link {
        LinkRef::Name(n) => msg.attributes.push(LinkAttribute::IfName(n.to_string())),
        LinkRef::Index(i) => msg.header.index = i,
    }
    if with_vfs {
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::Vf]));
    }
    match nl.request(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK) {
        Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(m) => Some(m),
            _ => None,
        })),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// RTM_SETLINK on `index` with `attributes`, optionally changing `IFF_UP`.
pub(crate) fn set_link(
    nl: &dyn NetlinkTransport,
    index: u32,
    attributes: Vec<LinkAttribute>,
    up: Option<bool>,
) -> io::Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    if let Some(up) = up {
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
    }
    msg.attributes = attributes;
    nl.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
        .map(drop)
}

/// RTM_NEWLINK: creates a link (`create`) or changes one (e.g. bridge-port options).
pub(crate) fn new_link(
    nl: &dyn NetlinkTransport,
    msg: LinkMessage,
    create: bool,
) -> io::Result<()> {
    let flags = if create {
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    } else {
        NLM_F_ACK
    };
    nl.request(RouteNetlinkMessage::NewLink(msg), flags)
        .map(drop)
}

/// RTM_DELLINK by index.
pub(crate) fn del_link(nl: &dyn NetlinkTransport, index: u32) -> io::Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    nl.request(RouteNetlinkMessage::DelLink(msg), NLM_F_ACK)
        .map(drop)
}

/// `IFLA_IFNAME`.
pub(crate) fn link_name(m: &LinkMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

/// `IFLA_LINKINFO/IFLA_INFO_KIND` as a string (`bridge`, `tun`, ...).
pub(crate) fn link_kind(m: &LinkMessage) -> Option<String> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(InfoKind::Other(k)) => Some(k.clone()),
            LinkInfo::Kind(k) => Some(k.to_string()),
            _ => None,
        }),
        _ => None,
    })
}

/// `IFLA_MASTER`.
pub(crate) fn link_master(m: &LinkMessage) -> Option<u32> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(i) if *i != 0 => Some(*i),
        _ => None,
    })
}
