//! A [`NetlinkTransport`] that records requests and answers from a script, for tests.

use std::io;
use std::sync::Mutex;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;

use super::{encode_request, NetlinkTransport};

/// One request seen by a [`RecordingNetlink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Flags besides `NLM_F_REQUEST` (ACK, CREATE, EXCL, DUMP).
    pub flags: u16,
    /// The message, re-parsed from `bytes` (so it is exactly what the kernel would read).
    pub message: RouteNetlinkMessage,
    /// The serialized netlink packet, as the real socket would send it (sequence number 0).
    pub bytes: Vec<u8>,
}

/// Decides the answer to a request: reply messages, or an error (e.g. an errno).
pub type Responder =
    Box<dyn Fn(&RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> + Send + Sync>;

/// Records every request (parsed and serialized) and answers through a [`Responder`].
pub struct RecordingNetlink {
    responder: Responder,
    requests: Mutex<Vec<RecordedRequest>>,
}

impl RecordingNetlink {
    /// A recorder answering with `responder`.
    pub fn new(responder: Responder) -> Self {
        RecordingNetlink {
            responder,
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl NetlinkTransport for RecordingNetlink {
    fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let bytes = encode_request(msg, flags, 0);
        // Re-parse what would go on the wire, so emit bugs show up in tests.
        let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let message = match parsed.payload {
            NetlinkPayload::InnerMessage(m) => m,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("request did not re-parse as a route message: {other:?}"),
                ))
            }
        };
        let answer = (self.responder)(&message);
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(RecordedRequest {
                flags,
                message,
                bytes,
            });
        answer
    }
}
