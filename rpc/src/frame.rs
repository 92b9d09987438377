//! The packet: a 4-byte length (counting itself), the header `virNetMessageHeader`, the
//! payload (`src/rpc/virnetprotocol.x`).

use crate::error::{Result, RpcError};
use crate::xdr::{Reader, Xdr};

/// `VIR_NET_MESSAGE_MAX`: the largest header + payload (the length word not counted), 16 MiB.
pub const MESSAGE_MAX: u32 = 16_777_216;
/// `VIR_NET_MESSAGE_LEN_MAX`: the length word.
pub const LEN_SIZE: u32 = 4;
/// `VIR_NET_MESSAGE_HEADER_MAX`: the encoded header.
pub const HEADER_SIZE: u32 = 24;
/// The smallest valid length word: itself and a header.
pub const FRAME_MIN: u32 = LEN_SIZE + HEADER_SIZE;
/// The largest valid length word.
pub const FRAME_MAX: u32 = LEN_SIZE + MESSAGE_MAX;

/// `virNetMessageType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Client to server: a call's arguments.
    Call = 0,
    /// Server to client: the reply (or error) to a call, same serial.
    Reply = 1,
    /// Either way: an asynchronous message (events, keepalive), serial 0.
    Message = 2,
    /// Either way: stream data.
    Stream = 3,
    /// A call with file descriptors.
    CallWithFds = 4,
    /// A reply with file descriptors.
    ReplyWithFds = 5,
}

/// `virNetMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Calls, messages, successful replies.
    Ok = 0,
    /// A failed call: the payload is a [`crate::RemoteError`].
    Error = 1,
    /// Stream data with more to follow.
    Continue = 2,
}

impl Xdr for MessageType {
    fn encode(&self, out: &mut Vec<u8>) {
        (*self as i32).encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match u32::decode(r)? {
            0 => MessageType::Call,
            1 => MessageType::Reply,
            2 => MessageType::Message,
            3 => MessageType::Stream,
            4 => MessageType::CallWithFds,
            5 => MessageType::ReplyWithFds,
            v => {
                return Err(RpcError::BadEnum {
                    what: "message type",
                    value: v,
                })
            }
        })
    }
}

impl Xdr for Status {
    fn encode(&self, out: &mut Vec<u8>) {
        (*self as i32).encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match u32::decode(r)? {
            0 => Status::Ok,
            1 => Status::Error,
            2 => Status::Continue,
            v => {
                return Err(RpcError::BadEnum {
                    what: "message status",
                    value: v,
                })
            }
        })
    }
}

crate::xdr_struct! {
    /// `virNetMessageHeader`. `proc_` is the raw number: its meaning depends on the program
    /// ([`crate::Procedure::from_u32`] for the remote program).
    pub struct Header {
        /// The program (`REMOTE_PROGRAM`, `KEEPALIVE_PROGRAM`, ...).
        pub prog: u32,
        /// The program's version.
        pub vers: u32,
        /// The procedure within the program (`int` on the wire; read as its bits).
        pub proc_: u32,
        /// Call, reply, message or stream.
        pub type_: MessageType,
        /// Set by the caller, echoed by the reply.
        pub serial: u32,
        /// OK, error or continue.
        pub status: Status,
    }
}

impl Header {
    /// The header of the reply to the call `self` with `status`.
    pub fn reply(&self, status: Status) -> Header {
        Header {
            type_: MessageType::Reply,
            status,
            ..self.clone()
        }
    }
}

/// Reads the length word at the start of a frame and checks it: the number of bytes that
/// follow it (header and payload).
pub fn body_len(word: [u8; 4]) -> Result<usize> {
    let len = u32::from_be_bytes(word);
    if len < FRAME_MIN {
        return Err(RpcError::FrameTooShort {
            len,
            min: FRAME_MIN,
        });
    }
    if len > FRAME_MAX {
        return Err(RpcError::FrameTooLong {
            len,
            max: FRAME_MAX,
        });
    }
    Ok((len - LEN_SIZE) as usize)
}

/// A frame's body split into its header and its (still encoded) payload.
pub fn split_body(body: &[u8]) -> Result<(Header, &[u8])> {
    let mut r = Reader::new(body);
    let header = Header::decode(&mut r)?;
    Ok((header, r.rest()))
}

/// A whole frame (length word included) with `header` and the encoded `payload`.
pub fn encode_frame(header: &Header, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity((FRAME_MIN as usize) + payload.len());
    out.extend_from_slice(&[0; 4]);
    header.encode(&mut out);
    out.extend_from_slice(payload);
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Decodes one whole frame (length word included, nothing after it): header and payload.
pub fn decode_frame(frame: &[u8]) -> Result<(Header, &[u8])> {
    let mut r = Reader::new(frame);
    let word = r.take(4)?;
    let len = body_len([word[0], word[1], word[2], word[3]])?;
    let body = r.take(len)?;
    r.finish()?;
    split_body(body)
}
