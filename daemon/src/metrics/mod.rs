//! Prometheus metrics (`GET /metrics`, text format 0.0.4): per VM NIC traffic counters, from
//! the tap or macvtap (netlink `IFLA_STATS64`) or from the switch port (with the switch's drop
//! reasons); latency histograms of start, attach, detach and update; VMs by state; each
//! switch's health. Built afresh at every scrape from the daemon's state.
//!
//! NIC counters are the guest's view, as `virsh domifstat` reports them: `tx` is what the
//! guest sent, `rx` what it received (a tap's and a switch port's own counters are the other
//! way round; a macvtap's are already the guest's).

mod collect;
pub mod listen;
pub mod ops;
pub mod text;

pub use ops::{Op, OpLatencies};
