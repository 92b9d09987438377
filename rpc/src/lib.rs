//! libvirt's remote protocol on the wire, as virtnetd serves it to libvirt's own clients
//! (virsh, python3-libvirt): the XDR codec ([`xdr`]), the packet (4-byte length counting
//! itself, [`Header`], payload: [`frame`]), `remote_error` with libvirt's error numbers
//! ([`virerror`]), the programs and the remote program's procedure numbers ([`Procedure`]),
//! and the arguments and results of the procedures served ([`remote`], networks' in
//! [`network`], live migration's and typed parameters in [`migrate`]). Numbers, bounds and
//! layouts come from libvirt's `src/rpc/virnetprotocol.x`, `src/rpc/virkeepaliveprotocol.x`,
//! `src/remote/remote_protocol.x`, `src/libvirt_internal.h` and `include/libvirt/*.h`.
//!
//! No I/O here: the daemon reads frames off its socket and hands the bytes to this crate.
//!
//! # Why a hand-written codec
//!
//! The XDR crates on crates.io are encoders for serde data models (`serde-xdr`, last release
//! 2018), a code generator with its own runtime (`xdr-codec`/`xdrgen`, unmaintained since
//! 2019) or generators for other protocols (`fastxdr` emits NFS-oriented types); none bounds
//! every length by the `.x` file's maximum before allocating, which a server reading from any
//! local client must do, and none implements libvirt's server side. XDR itself is small
//! (4-byte big-endian units, padding, length prefixes): [`xdr::Xdr`] and [`xdr::Reader`] are
//! under 300 lines, and the types are written by hand from the `.x` subset served, field for
//! field, so that each one can be checked against its `.x` definition. Adding a procedure
//! means adding its `_args`/`_ret` to [`remote`] (most are one [`xdr_struct!`]).
//!
//! Every decoder refuses rather than panics: lengths are bounded by the protocol's limits and
//! by the bytes actually present, padding must be zero, enums must be in range (property
//! tests and the `rpc_frame` fuzz target check it).

pub mod error;
pub mod event;
pub mod frame;
pub mod migrate;
pub mod network;
mod procedure;
pub mod remote;
pub mod virerror;
pub mod xdr;

pub use error::{Result, RpcError};
pub use frame::{Header, MessageType, Status};
pub use procedure::Procedure;
pub use virerror::{ErrorCode, RemoteError};

/// `REMOTE_PROGRAM`: the remote driver's program.
pub const REMOTE_PROGRAM: u32 = 0x2000_8086;
/// `REMOTE_PROTOCOL_VERSION`.
pub const REMOTE_PROTOCOL_VERSION: u32 = 1;
/// `QEMU_PROGRAM`: QEMU-specific calls (monitor passthrough); virtnetd does not serve it.
pub const QEMU_PROGRAM: u32 = 0x2000_8087;
/// `LXC_PROGRAM`; not served.
pub const LXC_PROGRAM: u32 = 0x0008_6164;
/// `KEEPALIVE_PROGRAM` (`virkeepaliveprotocol.x`).
pub const KEEPALIVE_PROGRAM: u32 = 0x6b65_6570;
/// `KEEPALIVE_PROTOCOL_VERSION`.
pub const KEEPALIVE_PROTOCOL_VERSION: u32 = 1;
/// `KEEPALIVE_PROC_PING`: "are you there?", a MESSAGE, answered by a PONG.
pub const KEEPALIVE_PROC_PING: u32 = 1;
/// `KEEPALIVE_PROC_PONG`.
pub const KEEPALIVE_PROC_PONG: u32 = 2;
/// `REMOTE_STRING_MAX`: the bound of `remote_nonnull_string`.
pub const REMOTE_STRING_MAX: u32 = 1_048_576;
/// `VIR_NET_MESSAGE_STRING_MAX`: the bound of the strings in `virNetMessageError`.
pub const MESSAGE_STRING_MAX: u32 = 4_194_304;
