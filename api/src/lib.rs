//! virtnet-api: the JSON documents of virtnetd's HTTP API (see `daemon/PROTOCOL.md` and
//! `daemon/openapi.yaml`): requests, responses and the error body. Shared by virtnetd (which
//! serves them) and the `virtnet` CLI (which sends and reads them), so the CLI does not link
//! the daemon. Plain serde types, no I/O.

pub mod domains;
pub mod migrate;
pub mod networks;

pub use domains::*;
pub use migrate::*;

/// The read-only API socket's file name, next to the API socket in virtnetd's run directory
/// (libvirt's `libvirt-sock-ro`): queries only, open to the group `virtnet`.
pub const RO_SOCKET_NAME: &str = "virtnetd-ro.sock";
