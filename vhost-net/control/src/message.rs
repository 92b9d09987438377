//! Requests and replies, and their framing: one JSON object per line.

use serde::{Deserialize, Serialize};

use crate::policy::PortPolicy;
use crate::port::PortConfig;
use crate::report::{MacEntry, PortInfo};

/// A control request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Add a vhost-user port.
    AddPort(Box<PortConfig>),
    /// Add the uplink tap as port `name`.
    AddUplink {
        /// Port name.
        name: String,
        /// Tap interface name.
        tap: String,
    },
    /// Remove a port.
    DelPort {
        /// Port name.
        name: String,
    },
    /// Replace a port's policy (VLAN, isolation, rate limits) atomically: frames forwarded
    /// after the reply follow the new policy; rate limits start with a full bucket.
    SetPolicy {
        /// Port name.
        name: String,
        /// The new policy (the whole policy: parts left out are removed).
        #[serde(default)]
        policy: PortPolicy,
    },
    /// List ports with counters.
    ListPorts,
    /// Dump the MAC table.
    MacTable,
}

/// A control reply. `ok` is false exactly when `error` is present.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// What went wrong, for a person to read.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// `list-ports` result.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ports: Option<Vec<PortInfo>>,
    /// `mac-table` result.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub macs: Option<Vec<MacEntry>>,
}

impl Response {
    /// A success with nothing to report.
    pub fn ok() -> Self {
        Response {
            ok: true,
            ..Default::default()
        }
    }

    /// A failure saying `e`.
    pub fn err(e: impl std::fmt::Display) -> Self {
        Response {
            ok: false,
            error: Some(e.to_string()),
            ..Default::default()
        }
    }
}

impl Request {
    /// Reads one request line (without or with its `\n`); the error is the reply to send.
    pub fn from_line(line: &str) -> Result<Request, Response> {
        serde_json::from_str(line.trim()).map_err(|e| {
            Response::err(format!(
                "bad request ({e}): send one JSON object per line, e.g. {{\"cmd\":\"list-ports\"}}"
            ))
        })
    }

    /// The request as one line, `\n` included.
    pub fn to_line(&self) -> String {
        to_line(self)
    }
}

impl Response {
    /// Reads one reply line.
    pub fn from_line(line: &str) -> serde_json::Result<Response> {
        serde_json::from_str(line.trim())
    }

    /// The reply as one line, `\n` included.
    pub fn to_line(&self) -> String {
        to_line(self)
    }

    /// The reply if it says `ok`, else its error message.
    pub fn into_result(self) -> Result<Response, String> {
        if self.ok {
            Ok(self)
        } else {
            Err(self.error.unwrap_or_else(|| "no reason given".to_string()))
        }
    }
}

fn to_line<T: Serialize>(v: &T) -> String {
    // These types hold strings, numbers and paths only: serialising cannot fail (a path that
    // is not UTF-8 is refused by serde; the switch and virtnetd only make UTF-8 paths).
    let mut s = serde_json::to_string(v).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire form of every request is the one CONTROL.md shows.
    #[test]
    fn requests_on_the_wire() {
        let mut p = PortConfig::new("vm1-net0", "/run/virtnet/vm1-net0.sock");
        p.queues = 2;
        for (req, line) in [
            (
                Request::AddPort(Box::new(p)),
                r#"{"cmd":"add-port","name":"vm1-net0","socket":"/run/virtnet/vm1-net0.sock","mode":"client","queues":2,"mtu":1500}"#,
            ),
            (
                Request::AddUplink {
                    name: "uplink".into(),
                    tap: "vsw0".into(),
                },
                r#"{"cmd":"add-uplink","name":"uplink","tap":"vsw0"}"#,
            ),
            (
                Request::DelPort {
                    name: "vm1-net0".into(),
                },
                r#"{"cmd":"del-port","name":"vm1-net0"}"#,
            ),
            (Request::ListPorts, r#"{"cmd":"list-ports"}"#),
            (Request::MacTable, r#"{"cmd":"mac-table"}"#),
        ] {
            assert_eq!(req.to_line(), format!("{line}\n"));
            assert_eq!(Request::from_line(line).unwrap(), req);
        }
        // Defaults as documented.
        let r = Request::from_line(r#"{"cmd":"add-port","name":"a","socket":"/a.sock"}"#).unwrap();
        assert_eq!(
            r,
            Request::AddPort(Box::new(PortConfig::new("a", "/a.sock")))
        );
    }

    #[test]
    fn bad_lines_and_refusals() {
        let e = Request::from_line(r#"{"cmd":"frobnicate"}"#).unwrap_err();
        assert!(!e.ok);
        assert!(e
            .error
            .unwrap()
            .starts_with("bad request (unknown variant `frobnicate`"));
        let r = Response::from_line(r#"{"ok":false,"error":"no port named 'zz'"}"#).unwrap();
        assert_eq!(r.into_result().unwrap_err(), "no port named 'zz'");
        let r = Response::from_line(r#"{"ok":true,"ports":[]}"#).unwrap();
        assert_eq!(r.into_result().unwrap().ports, Some(vec![]));
        assert_eq!(Response::ok().to_line(), "{\"ok\":true}\n");
    }

    #[test]
    fn port_limits() {
        let mut p = PortConfig::new("a", "/a.sock");
        assert!(p.validate().is_ok());
        p.queues = 17;
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("use 1 to 16"));
    }
}
