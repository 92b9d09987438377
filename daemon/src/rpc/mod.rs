//! `RUN_DIR/libvirt-sock`: libvirt's remote protocol, so that libvirt's own clients (virsh,
//! python3-libvirt) drive virtnetd with `qemu+unix:///system?socket=RUN_DIR/libvirt-sock`.
//! Root only (0600, `REMOTE_AUTH_NONE` as libvirtd's unix socket); `--no-libvirt-socket`
//! turns it off. The wire format is the `virtnet-rpc` crate's; [`dispatch`] maps procedures
//! to the daemon's operations (the ones the HTTP API calls), [`conn`] runs a connection.
//!
//! Served: keepalive (PING answered with PONG), `AUTH_LIST`, `CONNECT_OPEN`/`CLOSE`,
//! `CONNECT_SUPPORTS_FEATURE`, `CONNECT_GET_TYPE`/`VERSION`/`LIB_VERSION`/`HOSTNAME`/`URI`/
//! `CAPABILITIES`, `CONNECT_IS_SECURE`, `NODE_GET_INFO`, `CONNECT_LIST_ALL_DOMAINS`,
//! `DOMAIN_LOOKUP_BY_NAME`/`UUID`/`ID`, `DOMAIN_GET_INFO`/`STATE`/`XML_DESC`/`OS_TYPE`/
//! `AUTOSTART`, `DOMAIN_IS_ACTIVE`/`PERSISTENT`, ([`ifstats`]) `DOMAIN_INTERFACE_STATS`/
//! `ADDRESSES` (ARP source only); changes ([`lifecycle`], refused on a
//! connection opened read-only): `DOMAIN_DEFINE_XML(_FLAGS)`, `DOMAIN_CREATE(_WITH_FLAGS)`,
//! `DOMAIN_SHUTDOWN(_FLAGS)` (the ACPI power button; returns once pressed),
//! `DOMAIN_DESTROY(_FLAGS)`, `DOMAIN_UNDEFINE(_FLAGS)`, and ([`devices`])
//! `DOMAIN_ATTACH_DEVICE(_FLAGS)`, `DOMAIN_DETACH_DEVICE(_FLAGS)`, `DOMAIN_UPDATE_DEVICE_FLAGS`.
//! Networks ([`networks`]): `CONNECT_LIST_ALL_NETWORKS`, `CONNECT_NUM_OF_(DEFINED_)NETWORKS`,
//! `CONNECT_LIST_(DEFINED_)NETWORKS`, `NETWORK_LOOKUP_BY_NAME`/`UUID`, `NETWORK_GET_XML_DESC`,
//! `NETWORK_IS_ACTIVE`/`PERSISTENT`, `NETWORK_GET_AUTOSTART`, and the changes (refused
//! read-only) `NETWORK_DEFINE_XML(_FLAGS)`, `NETWORK_UNDEFINE`, `NETWORK_CREATE`,
//! `NETWORK_DESTROY`, `NETWORK_SET_AUTOSTART`; `NETWORK_GET_BRIDGE_NAME` and
//! `NETWORK_CREATE_XML` are refused with the reason (no Linux bridge, no transient networks).
//! Domain events ([`events`], allowed read-only too): `CONNECT_DOMAIN_EVENT_CALLBACK_
//! REGISTER_ANY`/`DEREGISTER_ANY` (`CONNECT_SUPPORTS_FEATURE` says yes to
//! `VIR_DRV_FEATURE_REMOTE_EVENT_CALLBACK`) and the legacy `CONNECT_DOMAIN_EVENT_REGISTER_ANY`/
//! `DEREGISTER_ANY`, for every event id; sent: `DOMAIN_EVENT_CALLBACK_LIFECYCLE` (defined
//! added/updated, undefined, started booted, stopped shutdown/destroyed/crashed/failed) and
//! `DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED` (a NIC's live removal completed), or their legacy
//! forms.
//! Live migration ([`migrate`]): `DOMAIN_MIGRATE_PERFORM3_PARAMS` with
//! `VIR_MIGRATE_PEER2PEER` (`virsh migrate --live --p2p --persistent`, `migrateToURI3`), the
//! managed flow's `DOMAIN_MIGRATE_{BEGIN,PREPARE,PERFORM,FINISH,CONFIRM}3_PARAMS` (`virsh
//! migrate` without `--p2p`), `DOMAIN_GET_JOB_INFO`, `DOMAIN_ABORT_JOB`; direct migration and
//! the older protocols are refused with "add --p2p".
//! Every other procedure:
//! `VIR_ERR_NO_SUPPORT`.

mod conn;
mod devices;
mod dispatch;
mod errors;
mod events;
mod host;
mod ifstats;
mod lifecycle;
mod migrate;
mod networks;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use tokio::net::UnixListener;

use crate::daemon::Daemon;

/// The socket's file name inside the run directory.
pub const SOCKET_NAME: &str = "libvirt-sock";

/// Serves libvirt clients on `listener` for as long as the runtime runs: a task per
/// connection; a connection's failure ends only that connection.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(conn::serve(stream, daemon.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "libvirt socket: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
