//! The HTTP client of virtnetd's API: one HTTP/1.1 request per connection on the unix socket
//! (hyper over a tokio `UnixStream`). Errors become one line a user can act on.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, CONNECTION, CONTENT_TYPE, HOST, UPGRADE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;
use virtnet_api::ErrorBody;

/// The socket used when neither `--connect` nor `VIRTNET_CONNECT` is given.
pub const DEFAULT_SOCKET: &str = "/run/virtnet/virtnetd.sock";

/// A failed call, ready to print.
#[derive(Debug)]
pub struct ClientError {
    /// The API's error kind (`no_such_vm`, ...), or `connect` / `protocol` for failures of
    /// the call itself.
    pub kind: String,
    /// One line saying what went wrong and what to do.
    pub message: String,
}

impl From<crate::input::InputError> for ClientError {
    fn from(e: crate::input::InputError) -> Self {
        ClientError {
            kind: "input".into(),
            message: e.to_string(),
        }
    }
}

impl ClientError {
    /// The error of a request that sent the contents of input `name`, naming it: an XML
    /// refusal as `NAME:LINE:COL: message` (the form of `virtnet validate`), anything else as
    /// `NAME: message`.
    pub fn in_file(self, name: &str) -> ClientError {
        let message = match self.message.strip_prefix("invalid domain XML: ") {
            Some(located) if self.kind == "invalid_xml" => format!("{name}:{located}"),
            _ => format!("{name}: {}", self.message),
        };
        ClientError {
            kind: self.kind,
            message,
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn protocol(message: String) -> ClientError {
    ClientError {
        kind: "protocol".into(),
        message,
    }
}

/// A request body.
pub enum Body<'a> {
    /// No body.
    None,
    /// A JSON document.
    Json(&'a serde_json::Value),
    /// Domain XML.
    Xml(&'a str),
}

/// virtnetd at a socket path.
pub struct Client {
    socket: PathBuf,
}

impl Client {
    /// A client of the daemon listening on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    /// `method path` with `body`; the answer's JSON as `T`, or the daemon's error.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Body<'_>,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.raw(method, path, body, "application/json").await?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            protocol(format!(
                "virtnetd sent an answer this virtnet does not understand ({e}); are virtnet and virtnetd the same version?"
            ))
        })
    }

    /// Sends one request and returns the status and body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Body<'_>,
        accept: &str,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| protocol(format!("HTTP handshake with virtnetd failed: {e}")))?;
        let conn = tokio::spawn(conn);
        let (content_type, data) = match body {
            Body::None => (None, Bytes::new()),
            Body::Json(v) => (
                Some("application/json"),
                Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            ),
            Body::Xml(x) => (Some("application/xml"), Bytes::from(x.to_string())),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "virtnetd")
            .header(ACCEPT, accept);
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        let req = req
            .body(Full::new(data))
            .map_err(|e| protocol(format!("cannot build the request: {e}")))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            protocol(format!(
                "virtnetd at {} closed the connection: {e} (see its log)",
                self.socket.display()
            ))
        })?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| protocol(format!("cannot read virtnetd's answer: {e}")))?
            .to_bytes();
        drop(sender);
        let _ = conn.await;
        Ok((status, bytes))
    }

    /// Connects to the API socket; the error says what to do.
    async fn connect(&self) -> Result<UnixStream, ClientError> {
        UnixStream::connect(&self.socket).await.map_err(|e| {
            let socket = self.socket.display();
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such socket".to_string(),
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (a stale socket: virtnetd is not running)".to_string()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (the API socket is root's; members of the group virtnet \
                     may query with --readonly)"
                        .to_string()
                }
                _ => e.to_string(),
            };
            ClientError {
                kind: "connect".into(),
                message: format!(
                    "cannot connect to virtnetd at {socket}: {why} (start it with `virtnetd --socket {socket}` or set VIRTNET_CONNECT)"
                ),
            }
        })
    }

    /// `POST path` asking to switch the connection to protocol `upgrade` (HTTP 101): the
    /// connection's byte stream, or the daemon's error.
    pub async fn upgrade(
        &self,
        path: &str,
        upgrade: &str,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>, ClientError> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| protocol(format!("HTTP handshake with virtnetd failed: {e}")))?;
        tokio::spawn(conn.with_upgrades());
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, "virtnetd")
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, upgrade)
            .body(Full::new(Bytes::new()))
            .map_err(|e| protocol(format!("cannot build the request: {e}")))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            protocol(format!(
                "virtnetd at {} closed the connection: {e} (see its log)",
                self.socket.display()
            ))
        })?;
        let status = resp.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| protocol(format!("cannot read virtnetd's answer: {e}")))?
                .to_bytes();
            return Err(api_error(status, &bytes));
        }
        hyper::upgrade::on(resp)
            .await
            .map(TokioIo::new)
            .map_err(|e| protocol(format!("virtnetd did not switch to {upgrade}: {e}")))
    }
}

/// The daemon's `{"error": {...}}` as a [`ClientError`].
fn api_error(status: StatusCode, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(b) => ClientError {
            kind: b.error.kind,
            message: b.error.message,
        },
        Err(_) => protocol(format!(
            "virtnetd answered HTTP {status}: {}",
            String::from_utf8_lossy(bytes).trim()
        )),
    }
}

/// `%XX`-encodes a VM name for a URL path segment.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
