//! Netlink (rtnetlink) access behind a small trait, so request building can be tested
//! against a recorder and the real socket is used only by [`crate::LinuxHost`].
//!
//! We use `netlink-packet-route` + `netlink-sys` directly with a *blocking* socket rather
//! than the async `rtnetlink` crate: every operation here is one request and one answer,
//! which a blocking socket does in a few lines, without a runtime, and the same code can be
//! called from a plain thread, a test, or `tokio::task::spawn_blocking`.

mod link;
mod neigh;
mod recorder;
mod socket;

pub(crate) use link::{
    del_link, get_link, link_kind, link_master, link_name, new_link, set_link, LinkRef,
};
pub use link::{LinkCounters, LinkStatus};
pub(crate) use neigh::ipv4_neighbours;
pub use neigh::Neighbour;
pub use recorder::{RecordedRequest, RecordingNetlink, Responder};
pub use socket::SocketTransport;

pub use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
pub use netlink_packet_route::{self, RouteNetlinkMessage};

use std::io;

/// Sends rtnetlink requests and returns the kernel's answers.
///
/// Implementations: [`SocketTransport`] (the kernel) and [`RecordingNetlink`] (tests).
pub trait NetlinkTransport: Send + Sync {
    /// Sends `msg` with `NLM_F_REQUEST | flags` and returns every reply message up to the
    /// acknowledgement (or `NLMSG_DONE` for dumps). A netlink error becomes an
    /// [`io::Error`] with the kernel's errno (`raw_os_error()`).
    fn request(&self, msg: RouteNetlinkMessage, flags: u16)
        -> io::Result<Vec<RouteNetlinkMessage>>;
}

impl<T: NetlinkTransport + ?Sized> NetlinkTransport for std::sync::Arc<T> {
    fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        (**self).request(msg, flags)
    }
}

/// Serializes `msg` as one netlink request (`NLM_F_REQUEST | flags`, sequence number `seq`):
/// exactly the bytes [`SocketTransport`] sends.
pub fn encode_request(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}
