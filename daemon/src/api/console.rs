//! `POST /v1/domains/{name}/console`: virtnetd opens the console (a confined QEMU's pty is
//! root's to open, through `/proc/PID/root`) and relays its bytes over the client's connection,
//! upgraded (`Upgrade: virtnet-console`, HTTP 101). One client per console (see
//! [`crate::consoles`]).

use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::{pipe, UCred};
use tokio::net::UnixStream;

use super::router::{query_flag, query_param};
use crate::daemon::Daemon;
use crate::error::{DaemonError, Result};
use crate::ops::ConsoleEnd;

/// The `Upgrade` protocol name of the console stream.
pub const PROTOCOL: &str = "virtnet-console";

/// Who is on the other end of an API connection (`SO_PEERCRED`), to name a console's holder.
#[derive(Clone, Debug)]
pub(crate) struct Peer(pub Option<UCred>);

impl Peer {
    fn describe(&self) -> String {
        match &self.0 {
            Some(c) => match c.pid() {
                Some(pid) => format!("pid {pid} (uid {})", c.uid()),
                None => format!("a client with uid {}", c.uid()),
            },
            None => "another client".into(),
        }
    }
}

/// Bytes both ways.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Claims and opens the console, answers 101 and relays once the connection is upgraded.
pub(crate) async fn open(
    daemon: &Arc<Daemon>,
    name: &str,
    mut req: Request<Incoming>,
    query: Option<&str>,
) -> Result<Response<Full<Bytes>>> {
    let upgrade = req
        .headers()
        .get(UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(PROTOCOL.as_bytes()));
    if !upgrade {
        return Err(DaemonError::BadRequest(format!(
            "the console is a byte stream: send `Connection: Upgrade` and `Upgrade: {PROTOCOL}` \
             (`virtnet console {name}` does)"
        )));
    }
    let devname = query_param(query, "devname");
    let force = query_flag(query, "force")?;
    let who = req
        .extensions()
        .get::<Peer>()
        .map_or_else(|| "another client".into(), Peer::describe);
    let (alias, end) = daemon.console_end(name, devname.as_deref()).await?;
    let mut claim = daemon.consoles.claim(name, &alias, &who, force).await?;
    let io = connect(&end).await.map_err(|e| {
        DaemonError::Internal(format!(
            "cannot open console {alias} of VM '{name}' at {end:?}: {e}"
        ))
    })?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let vm = name.to_string();
    tokio::spawn(async move {
        let client = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::warn!(%vm, device = %alias, error = %e, "console upgrade failed");
                return;
            }
        };
        tracing::info!(%vm, device = %alias, %who, "console attached");
        let (mut cr, mut cw) = tokio::io::split(client);
        let (mut er, mut ew) = tokio::io::split(io);
        tokio::select! {
            _ = tokio::io::copy(&mut cr, &mut ew) => {}
            _ = tokio::io::copy(&mut er, &mut cw) => {}
            () = claim.kicked() => {
                let _ = cw
                    .write_all(b"\r\n[virtnet: another client took this console over with --force]\r\n")
                    .await;
            }
        }
        let _ = cw.shutdown().await;
        tracing::info!(%vm, device = %alias, %who, "console detached");
        drop(claim);
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    resp.headers_mut()
        .insert(UPGRADE, HeaderValue::from_static(PROTOCOL));
    Ok(resp)
}

/// Opens the console's host side.
async fn connect(end: &ConsoleEnd) -> std::io::Result<Box<dyn Stream>> {
    match end {
        ConsoleEnd::Unix(p) => Ok(Box::new(UnixStream::connect(p).await?)),
        ConsoleEnd::Pty(p) => {
            // Not our controlling terminal; non-blocking for tokio's reactor.
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(p)?;
            let r = pipe::Receiver::from_file_unchecked(f.try_clone()?)?;
            let w = pipe::Sender::from_file_unchecked(f)?;
            Ok(Box::new(tokio::io::join(r, w)))
        }
    }
}
