//! virtnet's vhost-user-net switch.
//!
//! An L2 learning switch whose ports are vhost-user sockets (QEMU `vhost-user` netdevs)
//! plus an optional uplink tap. Each port is served by rust-vmm's
//! `vhost-user-backend`: the switch is the back end, by default the socket client
//! (QEMU listens, so either side can restart). Frames move between guests by copying
//! from one guest's transmit buffers into the other's receive buffers, with the
//! virtio-net header (checksum and TSO metadata) carried along, so a 64 KiB TCP
//! segment crosses the switch whole.
//!
//! Guest input is untrusted: every guest address is bounds-checked against the guest's
//! memory map ([`guestmem::GuestView`], falling back to vm-memory's checked accessors),
//! descriptor chains are walked with loop and length bounds
//! ([`chain::walk`]), and bad frames are dropped and counted per port
//! ([`DropReason`]), never a panic.
//!
//! Drive it with [`Switch`] in-process, or over the control socket ([`control`],
//! documented in `CONTROL.md`).

pub mod backend;
pub mod chain;
pub mod config;
pub mod control;
mod core;
pub mod counters;
mod deliver;
pub mod error;
pub mod filter;
pub mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_api;
pub mod gso;
pub mod guestmem;
pub mod mac_table;
pub mod policy;
pub mod poller;
pub mod ring;
pub mod rx;
pub mod seccomp;
mod shim;
pub mod switch;
pub mod tap;
#[cfg(test)]
mod testutil;
pub mod vhost_port;
pub mod vnet_hdr;

pub use config::{PortConfig, SocketMode, SwitchConfig};
pub use counters::{CounterSnapshot, DropReason};
pub use error::{Error, Result};
pub use mac_table::MacEntry;
pub use switch::{PortInfo, Switch};
