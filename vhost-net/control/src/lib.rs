//! virtnet-vswitch-control: the types of `virtnet-vswitch`'s control protocol (one JSON
//! object per line on a unix socket; see `vhost-net/CONTROL.md`): [`Request`], [`Response`]
//! and what they carry. The switch serves them; virtnetd sends them, without linking the
//! switch (and its rust-vmm crates). Plain serde types and the line framing, no I/O.

mod message;
mod policy;
mod port;
mod report;

pub use message::{Request, Response};
pub use policy::{
    FilterPart, NativeMode, NativeVlan, PortFilter, PortPolicy, PortVlan, TokenBucket, MAX_VLAN_ID,
};
pub use port::{InvalidPort, PortConfig, SocketMode, MAX_QUEUE_PAIRS};
pub use report::{CounterSnapshot, DropReason, MacEntry, PortInfo};
