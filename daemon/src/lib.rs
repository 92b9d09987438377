//! virtnetd: the virtnet daemon.
//!
//! It owns the VMs of a host: their persistent definitions ([`store`]), who uses which host
//! resource ([`registry`]), the running QEMUs ([`live`]), and serves JSON over HTTP/1.1 on a
//! unix socket ([`api`]; see `daemon/PROTOCOL.md` and `daemon/openapi.yaml`). The `virtnet`
//! CLI talks to it with the same types ([`model`], from the `virtnet-api` crate), and
//! virtnetd talks to its switches with theirs (`virtnet-vswitch-control`).
//!
//! libvirt's own clients reach the same operations over libvirt's remote protocol on a second
//! socket ([`rpc`]).
//!
//! Operations on one VM are serialised (each holds the VM's lock, [`vms`]); operations on
//! different VMs run concurrently; queries never wait for an operation.
//!
//! ```no_run
//! # async fn demo() -> virtnetd::Result<()> {
//! let server = virtnetd::Server::bind(virtnetd::Config::under("/tmp/virtnet-test")).await?;
//! let _daemon = server.run(std::future::pending()).await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod config;
mod consoles;
mod daemon;
pub mod error;
pub mod events;
pub mod live;
pub mod metrics;
pub mod model;
pub mod names;
pub mod networks;
mod ops;
pub mod registry;
pub mod rpc;
mod server;
pub mod store;
pub mod vms;

pub use config::Config;
pub use daemon::Daemon;
pub use error::{DaemonError, Result};
pub use server::Server;
