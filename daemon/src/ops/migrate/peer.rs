//! The destination virtnetd as the source sees it: its HTTP API on its unix socket, one
//! request per connection (hyper, as the CLI does; the CLI's client lives in its binary, so
//! these few lines are repeated here rather than a crate made for them).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;
use virtnet_api::ErrorBody;
use virtnet_vm::exec::SideError;

use crate::error::{DaemonError, Result};

/// How long one request to the destination may take (a prepare starts QEMU).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A destination virtnetd.
#[derive(Debug, Clone)]
pub struct Peer {
    socket: PathBuf,
}

impl Peer {
    /// `DEST` as given: an absolute socket path, or `unix://` followed by one.
    pub fn parse(dest: &str) -> Result<Peer> {
        let path = dest
            .strip_prefix("unix://")
            .or_else(|| dest.strip_prefix("unix:"))
            .unwrap_or(dest);
        if !path.starts_with('/') {
            return Err(DaemonError::BadRequest(format!(
                "destination '{dest}': give the destination virtnetd's API socket as an \
                 absolute path or unix:///PATH (other transports are not supported)"
            )));
        }
        Ok(Peer {
            socket: PathBuf::from(path),
        })
    }

    /// `POST path` with `body`; the answer as `T`, or the destination's error (a 4xx one
    /// marked as the user's).
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> std::result::Result<T, SideError> {
        let data = serde_json::to_vec(body)
            .map_err(|e| SideError::fault(format!("request to the destination: {e}")))?;
        self.request(Method::POST, path, data).await
    }

    /// `GET path`; the answer as `T`, or the destination's error.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> std::result::Result<T, SideError> {
        self.request(Method::GET, path, Vec::new()).await
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        data: Vec<u8>,
    ) -> std::result::Result<T, SideError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.untimed(method, path, data)).await {
            Ok(r) => r,
            Err(_) => Err(SideError::fault(format!(
                "the destination virtnetd at {} did not answer {path} within {} s",
                self.socket.display(),
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn untimed<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        data: Vec<u8>,
    ) -> std::result::Result<T, SideError> {
        let at = self.socket.display();
        let fault =
            |what: String| SideError::fault(format!("destination virtnetd at {at}: {what}"));
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| fault(format!("cannot connect: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fault(format!("HTTP handshake failed: {e}")))?;
        let conn = tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "virtnetd")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(data)))
            .map_err(|e| fault(format!("request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fault(format!("closed the connection: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fault(format!("cannot read the answer: {e}")))?
            .to_bytes();
        drop(sender);
        let _ = conn.await;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(SideError {
                message: format!("the destination refused ({status}): {message}"),
                user_error: status.is_client_error(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| fault(format!("unexpected answer: {e}")))
    }
}
