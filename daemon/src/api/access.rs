//! What a listener lets its clients do: the read-write socket takes every request, the
//! read-only one (`virtnetd-ro.sock`, as libvirt's `libvirt-sock-ro`) only queries. The rule
//! lives here alone: [`Access::check`] runs once per request, after routing and before any
//! handler (or body read).

use std::path::PathBuf;

use super::router::Route;
use crate::error::{DaemonError, Result};

/// The requests one listener serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every request (the root-only socket).
    ReadWrite,
    /// Queries only; a change is refused (403) naming `rw_socket`.
    ReadOnly {
        /// This socket.
        ro_socket: PathBuf,
        /// The socket that takes changes.
        rw_socket: PathBuf,
    },
}

impl Access {
    /// `Ok` when this listener serves `route`; a [`DaemonError::ReadOnly`] for a change sent to
    /// the read-only socket.
    pub fn check(&self, method: &str, path: &str, route: &Route) -> Result<()> {
        match self {
            Access::ReadOnly {
                ro_socket,
                rw_socket,
            } if !is_query(route) => Err(DaemonError::ReadOnly {
                method: method.into(),
                path: path.into(),
                ro_socket: ro_socket.clone(),
                rw_socket: rw_socket.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// Whether `route` only reads. Exhaustive on purpose: a new endpoint does not compile until it
/// is classified here. QMP passthrough is a change whatever the command (it can do anything).
fn is_query(route: &Route) -> bool {
    match route {
        Route::Version
        | Route::Host
        | Route::Metrics
        | Route::List
        | Route::Info(_)
        | Route::Xml(_)
        | Route::Interfaces(_)
        | Route::InterfaceStats(..)
        | Route::Addresses(_)
        | Route::MigrateProgress(_)
        | Route::NetList
        | Route::NetInfo(_)
        | Route::NetXml(_) => true,
        Route::Define
        | Route::Undefine(_)
        | Route::SetLink(..)
        | Route::Qmp(_)
        | Route::AttachDevice(_)
        | Route::DetachDevice(_)
        | Route::UpdateDevice(_)
        | Route::ChardevChange(..)
        // Typing into a guest's console (libvirt refuses it on a read-only connection too).
        | Route::Console(_)
        | Route::Start(_)
        | Route::Shutdown(_)
        | Route::Destroy(_)
        | Route::Migrate(_)
        | Route::MigrateIncoming(..)
        | Route::NetDefine
        | Route::NetUndefine(_)
        | Route::NetStart(_)
        | Route::NetDestroy(_)
        | Route::NetAutostart(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::router::route;
    use super::*;

    fn ro() -> Access {
        Access::ReadOnly {
            ro_socket: "/run/virtnet/virtnetd-ro.sock".into(),
            rw_socket: "/run/virtnet/virtnetd.sock".into(),
        }
    }

    fn status(access: &Access, method: &str, path: &str) -> u16 {
        let r = route(method, path).unwrap();
        access
            .check(method, path, &r)
            .map_or_else(|e| e.http_status(), |()| 200)
    }

    /// Every GET is served; every other method (each a change) is refused on the read-only
    /// socket and served on the read-write one.
    #[test]
    fn read_only_serves_queries_only() {
        let queries = [
            "/metrics",
            "/v1/version",
            "/v1/host",
            "/v1/domains",
            "/v1/domains/vm1",
            "/v1/domains/vm1/xml",
            "/v1/domains/vm1/interfaces",
            "/v1/domains/vm1/interfaces/vnet0/stats",
            "/v1/domains/vm1/addresses",
            "/v1/networks",
            "/v1/networks/sw0",
            "/v1/networks/sw0/xml",
        ];
        let changes = [
            ("POST", "/v1/domains"),
            ("DELETE", "/v1/domains/vm1"),
            ("POST", "/v1/domains/vm1/start"),
            ("POST", "/v1/domains/vm1/shutdown"),
            ("POST", "/v1/domains/vm1/destroy"),
            ("POST", "/v1/domains/vm1/qmp"),
            ("POST", "/v1/domains/vm1/devices"),
            ("POST", "/v1/domains/vm1/devices/detach"),
            ("POST", "/v1/domains/vm1/devices/update"),
            ("POST", "/v1/domains/vm1/chardevs/serial0"),
            ("POST", "/v1/domains/vm1/interfaces/net0/link"),
            ("POST", "/v1/networks"),
            ("DELETE", "/v1/networks/sw0"),
            ("POST", "/v1/networks/sw0/start"),
            ("POST", "/v1/networks/sw0/destroy"),
            ("POST", "/v1/networks/sw0/autostart"),
        ];
        for path in queries {
            assert_eq!(status(&ro(), "GET", path), 200, "GET {path}");
        }
        for (method, path) in changes {
            assert_eq!(status(&ro(), method, path), 403, "{method} {path}");
            assert_eq!(status(&Access::ReadWrite, method, path), 200);
        }
        let e = ro()
            .check("POST", "/v1/domains/vm1/start", &Route::Start("vm1".into()))
            .unwrap_err();
        assert_eq!(e.kind(), "read_only");
        assert_eq!(
            e.to_string(),
            "POST /v1/domains/vm1/start: /run/virtnet/virtnetd-ro.sock is read-only (queries \
             only); send changes to the read-write socket /run/virtnet/virtnetd.sock (root only)"
        );
    }
}
