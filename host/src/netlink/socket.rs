//! The real transport: a blocking NETLINK_ROUTE socket.

use std::io;
use std::sync::Mutex;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::NetlinkTransport;

/// A NETLINK_ROUTE socket in the network namespace of the thread that opened it.
pub struct SocketTransport {
    inner: Mutex<Inner>,
}

struct Inner {
    socket: Socket,
    seq: u32,
}

impl SocketTransport {
    /// Opens and connects a socket to the kernel.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(SocketTransport {
            inner: Mutex::new(Inner { socket, seq: 0 }),
        })
    }
}

impl NetlinkTransport for SocketTransport {
    fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.seq = inner.seq.wrapping_add(1);
        let seq = inner.seq;

        let buf = super::encode_request(msg, flags, seq);
        inner.socket.send(&buf, 0)?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        loop {
            let (data, _) = inner.socket.recv_from_full()?;
            let mut offset = 0;
            while offset + 16 <= data.len() {
                let len = u32::from_ne_bytes(data[offset..offset + 4].try_into().unwrap()) as usize;
                if len < 16 || offset + len > data.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let parsed =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..offset + len])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                offset += (len + 3) & !3;
                if parsed.header.sequence_number != seq {
                    continue;
                }
                match parsed.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(_) => Err(e.to_io()),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(m) => {
                        replies.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
