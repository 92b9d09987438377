//! Request routing: method + path → [`Route`]. Paths are `/v1/...`; VM names are
//! percent-decoded path segments.

use crate::error::{DaemonError, Result};

/// Every endpoint of the API (see daemon/openapi.yaml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/version`.
    Version,
    /// `GET /v1/host`: this host's facts a migration needs (its OVN chassis).
    Host,
    /// `GET /metrics` (Prometheus text).
    Metrics,
    /// `GET /v1/domains`.
    List,
    /// `POST /v1/domains`.
    Define,
    /// `GET /v1/domains/{name}`.
    Info(String),
    /// `DELETE /v1/domains/{name}`.
    Undefine(String),
    /// `GET /v1/domains/{name}/xml`.
    Xml(String),
    /// `GET /v1/domains/{name}/interfaces`.
    Interfaces(String),
    /// `GET /v1/domains/{name}/interfaces/{iface}/stats` (domifstat).
    InterfaceStats(String, String),
    /// `GET /v1/domains/{name}/addresses` (`?source=arp&interface=`; domifaddr).
    Addresses(String),
    /// `POST /v1/domains/{name}/interfaces/{iface}/link`.
    SetLink(String, String),
    /// `POST /v1/domains/{name}/qmp`.
    Qmp(String),
    /// `POST /v1/domains/{name}/devices` (attach-device, attach-interface).
    AttachDevice(String),
    /// `POST /v1/domains/{name}/devices/detach` (detach-device, detach-interface).
    DetachDevice(String),
    /// `POST /v1/domains/{name}/devices/update` (update-device).
    UpdateDevice(String),
    /// `POST /v1/domains/{name}/chardevs/{device}` (chardev-change).
    ChardevChange(String, String),
    /// `POST /v1/domains/{name}/console` (`?devname=&force=`): upgrades the connection to
    /// the console's byte stream (`Upgrade: virtnet-console`).
    Console(String),
    /// `POST /v1/domains/{name}/start`.
    Start(String),
    /// `POST /v1/domains/{name}/migrate` (source: `virtnet migrate --live`).
    Migrate(String),
    /// `GET /v1/domains/{name}/migrate`: the outgoing migration's progress.
    MigrateProgress(String),
    /// `POST /v1/domains/{name}/migrate/{prepare,finish,abort}` (destination).
    MigrateIncoming(String, MigrateStep),
    /// `POST /v1/domains/{name}/shutdown`.
    Shutdown(String),
    /// `POST /v1/domains/{name}/destroy`.
    Destroy(String),
    /// `GET /v1/networks` (`?all=true`: inactive ones too).
    NetList,
    /// `POST /v1/networks` (net-define).
    NetDefine,
    /// `GET /v1/networks/{name}`.
    NetInfo(String),
    /// `DELETE /v1/networks/{name}` (net-undefine).
    NetUndefine(String),
    /// `GET /v1/networks/{name}/xml`.
    NetXml(String),
    /// `POST /v1/networks/{name}/start`.
    NetStart(String),
    /// `POST /v1/networks/{name}/destroy`.
    NetDestroy(String),
    /// `POST /v1/networks/{name}/autostart` (net-autostart; body `{"enable": bool}`).
    NetAutostart(String),
}

/// A destination-side step of a live migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateStep {
    /// Define if needed, start QEMU with `-incoming`.
    Prepare,
    /// Resume the guest, announce it.
    Finish,
    /// Undo the prepare.
    Abort,
    /// Source side: cancel the VM's outgoing migration (virsh domjobabort).
    Cancel,
}

/// The route of `method path`, or a 404/405 error saying what exists.
pub fn route(method: &str, path: &str) -> Result<Route> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let no_route = || DaemonError::NoRoute {
        method: method.into(),
        path: path.into(),
    };
    let allow = |allowed: &str| DaemonError::MethodNotAllowed {
        method: method.into(),
        path: path.into(),
        allowed: allowed.into(),
    };
    let name = |s: &str| {
        percent_decode(s).ok_or_else(|| {
            DaemonError::BadRequest(format!(
                "the VM name in {path} is not valid percent-encoded UTF-8"
            ))
        })
    };
    match segments.as_slice() {
        ["metrics"] => match method {
            "GET" => Ok(Route::Metrics),
            _ => Err(allow("GET")),
        },
        ["v1", "version"] => match method {
            "GET" => Ok(Route::Version),
            _ => Err(allow("GET")),
        },
        ["v1", "host"] => match method {
            "GET" => Ok(Route::Host),
            _ => Err(allow("GET")),
        },
        ["v1", "domains"] => match method {
            "GET" => Ok(Route::List),
            "POST" => Ok(Route::Define),
            _ => Err(allow("GET, POST")),
        },
        ["v1", "domains", n] if !n.is_empty() => match method {
            "GET" => Ok(Route::Info(name(n)?)),
            "DELETE" => Ok(Route::Undefine(name(n)?)),
            _ => Err(allow("GET, DELETE")),
        },
        ["v1", "domains", n, "migrate"] if !n.is_empty() => match method {
            "GET" => Ok(Route::MigrateProgress(name(n)?)),
            "POST" => Ok(Route::Migrate(name(n)?)),
            _ => Err(allow("GET, POST")),
        },
        ["v1", "domains", n, action] if !n.is_empty() => {
            let n = name(n)?;
            let (route, allowed) = match *action {
                "xml" => (Route::Xml(n), "GET"),
                "interfaces" => (Route::Interfaces(n), "GET"),
                "addresses" => (Route::Addresses(n), "GET"),
                "start" => (Route::Start(n), "POST"),
                "shutdown" => (Route::Shutdown(n), "POST"),
                "destroy" => (Route::Destroy(n), "POST"),
                "qmp" => (Route::Qmp(n), "POST"),
                "devices" => (Route::AttachDevice(n), "POST"),
                "console" => (Route::Console(n), "POST"),
                _ => return Err(no_route()),
            };
            if method == allowed {
                Ok(route)
            } else {
                Err(allow(allowed))
            }
        }
        ["v1", "domains", n, "devices", action] if !n.is_empty() => {
            let route = match *action {
                "detach" => Route::DetachDevice(name(n)?),
                "update" => Route::UpdateDevice(name(n)?),
                _ => return Err(no_route()),
            };
            match method {
                "POST" => Ok(route),
                _ => Err(allow("POST")),
            }
        }
        ["v1", "domains", n, "migrate", step] if !n.is_empty() => {
            let step = match *step {
                "prepare" => MigrateStep::Prepare,
                "finish" => MigrateStep::Finish,
                "abort" => MigrateStep::Abort,
                "cancel" => MigrateStep::Cancel,
                _ => return Err(no_route()),
            };
            match method {
                "POST" => Ok(Route::MigrateIncoming(name(n)?, step)),
                _ => Err(allow("POST")),
            }
        }
        ["v1", "domains", n, "chardevs", dev] if !n.is_empty() && !dev.is_empty() => match method {
            "POST" => Ok(Route::ChardevChange(name(n)?, name(dev)?)),
            _ => Err(allow("POST")),
        },
        ["v1", "domains", n, "interfaces", iface, "link"] if !n.is_empty() && !iface.is_empty() => {
            match method {
                "POST" => Ok(Route::SetLink(name(n)?, name(iface)?)),
                _ => Err(allow("POST")),
            }
        }
        ["v1", "domains", n, "interfaces", iface, "stats"]
            if !n.is_empty() && !iface.is_empty() =>
        {
            match method {
                "GET" => Ok(Route::InterfaceStats(name(n)?, name(iface)?)),
                _ => Err(allow("GET")),
            }
        }
        ["v1", "networks"] => match method {
            "GET" => Ok(Route::NetList),
            "POST" => Ok(Route::NetDefine),
            _ => Err(allow("GET, POST")),
        },
        ["v1", "networks", n] if !n.is_empty() => match method {
            "GET" => Ok(Route::NetInfo(name(n)?)),
            "DELETE" => Ok(Route::NetUndefine(name(n)?)),
            _ => Err(allow("GET, DELETE")),
        },
        ["v1", "networks", n, action] if !n.is_empty() => {
            let n = name(n)?;
            let (route, allowed) = match *action {
                "xml" => (Route::NetXml(n), "GET"),
                "start" => (Route::NetStart(n), "POST"),
                "destroy" => (Route::NetDestroy(n), "POST"),
                "autostart" => (Route::NetAutostart(n), "POST"),
                _ => return Err(no_route()),
            };
            if method == allowed {
                Ok(route)
            } else {
                Err(allow(allowed))
            }
        }
        _ => Err(no_route()),
    }
}

/// `%XX` decoding; `None` for a bad escape or a result that is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string (`a=1&b=2`), percent-decoded.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| percent_decode(&v.replace('+', " ")))
}

/// A boolean query flag: absent → false; `true`/`1`/`yes`/empty → true; `false`/`0`/`no` →
/// false; anything else is a bad request.
pub fn query_flag(query: Option<&str>, key: &str) -> Result<bool> {
    match query_param(query, key).as_deref() {
        None => Ok(false),
        Some("" | "true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(DaemonError::BadRequest(format!(
            "query parameter '{key}' must be true or false, not '{other}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/v1/domains").unwrap(), Route::List);
        assert_eq!(route("POST", "/v1/domains").unwrap(), Route::Define);
        assert_eq!(
            route("GET", "/v1/domains/a%20b").unwrap(),
            Route::Info("a b".into())
        );
        assert_eq!(
            route("POST", "/v1/domains/x/start").unwrap(),
            Route::Start("x".into())
        );
        assert_eq!(
            route("GET", "/v1/domains/x/xml").unwrap(),
            Route::Xml("x".into())
        );
        assert_eq!(
            route("POST", "/v1/domains/x/devices").unwrap(),
            Route::AttachDevice("x".into())
        );
        assert_eq!(
            route("POST", "/v1/domains/x/devices/detach").unwrap(),
            Route::DetachDevice("x".into())
        );
        assert_eq!(
            route("POST", "/v1/domains/x/chardevs/serial1").unwrap(),
            Route::ChardevChange("x".into(), "serial1".into())
        );
        assert_eq!(
            route("GET", "/v1/domains/x/devices/update")
                .unwrap_err()
                .http_status(),
            405
        );
        assert_eq!(
            route("POST", "/v1/domains/x/console").unwrap(),
            Route::Console("x".into())
        );
        assert_eq!(route("PUT", "/v1/domains").unwrap_err().http_status(), 405);
        assert_eq!(
            route("GET", "/v1/domains/x/start")
                .unwrap_err()
                .http_status(),
            405
        );
        assert_eq!(route("GET", "/v2/domains").unwrap_err().http_status(), 404);
        assert_eq!(
            route("POST", "/v1/networks/sw0/start").unwrap(),
            Route::NetStart("sw0".into())
        );
        assert_eq!(route("GET", "/v1/networks").unwrap(), Route::NetList);
        assert_eq!(
            route("GET", "/v1/domains/x/nope")
                .unwrap_err()
                .http_status(),
            404
        );
        assert_eq!(
            route("GET", "/v1/domains/%ff").unwrap_err().http_status(),
            400
        );
    }

    #[test]
    fn queries() {
        assert!(query_flag(Some("inactive=true"), "inactive").unwrap());
        assert!(query_flag(Some("a=1&inactive"), "inactive").unwrap());
        assert!(!query_flag(Some("a=1"), "inactive").unwrap());
        assert!(query_flag(Some("inactive=maybe"), "inactive").is_err());
    }
}
