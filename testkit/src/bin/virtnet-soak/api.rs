//! virtnetd's API as a user's program sees it: raw HTTP/1.1 with JSON over the unix socket
//! (no daemon types, so changes of the daemon's internals do not break the soak).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// The longest any request may take before the daemon counts as hung.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

/// An answer: HTTP status and the body (JSON, or a JSON string when it is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error kind of a refusal or failure (`error.kind`), or `""`.
    pub fn kind(&self) -> &str {
        self.body["error"]["kind"].as_str().unwrap_or("")
    }

    /// The error message, or the body.
    pub fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.body.to_string())
    }
}

/// virtnetd's API socket.
#[derive(Debug, Clone)]
pub struct Api {
    /// The socket path.
    pub socket: PathBuf,
}

impl Api {
    /// One request (`Connection: close`); `Err` when the daemon cannot be reached or does not
    /// answer in [`REQUEST_TIMEOUT`].
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> Result<Answer, String> {
        let mut s = UnixStream::connect(&self.socket)
            .map_err(|e| format!("connect {}: {e}", self.socket.display()))?;
        s.set_read_timeout(Some(REQUEST_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let (ct, data) = body.unwrap_or(("", ""));
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: virtnetd\r\nConnection: close\r\nContent-Length: {}\r\n",
            data.len()
        );
        if !ct.is_empty() {
            req.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(data);
        // The server may answer before reading a body it does not need.
        let _ = s.write_all(req.as_bytes());
        let mut resp = Vec::new();
        s.read_to_end(&mut resp)
            .map_err(|e| format!("{method} {path}: no answer: {e}"))?;
        let text = String::from_utf8_lossy(&resp);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("{method} {path}: not an HTTP answer: {text:?}"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{method} {path}: no status in {head:?}"))?;
        let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()));
        Ok(Answer { status, body })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Answer, String> {
        self.call("GET", path, None)
    }

    /// `POST path` without a body.
    pub fn post(&self, path: &str) -> Result<Answer, String> {
        self.call("POST", path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, v: &Value) -> Result<Answer, String> {
        self.call("POST", path, Some(("application/json", &v.to_string())))
    }

    /// `POST path` with an XML body.
    pub fn post_xml(&self, path: &str, xml: &str) -> Result<Answer, String> {
        self.call("POST", path, Some(("application/xml", xml)))
    }

    /// `GET path` that must answer 200: its body.
    pub fn get_ok(&self, path: &str) -> Result<Value, String> {
        let a = self.get(path)?;
        if a.status == 200 {
            Ok(a.body)
        } else {
            Err(format!("GET {path}: {} {}", a.status, a.message()))
        }
    }

    /// A QMP command through the daemon; QEMU's `return`.
    pub fn qmp(&self, vm: &str, execute: &str, arguments: Value) -> Result<Value, String> {
        let a = self.post_json(
            &format!("/v1/domains/{vm}/qmp"),
            &serde_json::json!({ "execute": execute, "arguments": arguments }),
        )?;
        if a.status == 200 {
            Ok(a.body["return"].clone())
        } else {
            Err(format!("{execute} on {vm}: {} {}", a.status, a.message()))
        }
    }
}
