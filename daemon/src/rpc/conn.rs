//! One client connection: frames read in order, each call answered by its own task (so a
//! long operation never holds up a keepalive or a query), replies written by one writer in
//! the order they finish, matched to their calls by serial.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, Semaphore};
use virtnet_rpc::frame::{self, LEN_SIZE};
use virtnet_rpc::xdr::to_bytes;
use virtnet_rpc::{
    ErrorCode, Header, MessageType, Procedure, Status, KEEPALIVE_PROC_PING, KEEPALIVE_PROC_PONG,
    KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION,
};

use super::dispatch::{self, ConnState};
use super::errors::Refusal;
use crate::daemon::Daemon;

/// Calls of one client running at once (libvirtd's `max_client_requests` default); the next
/// frame is read when one finishes.
const CALLS_IN_FLIGHT: usize = 5;

/// Serves `stream` until the client closes it or sends what is not a frame. Nothing a client
/// sends reaches beyond its own connection.
pub(super) async fn serve(stream: UnixStream, daemon: Arc<Daemon>) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CALLS_IN_FLIGHT + 2);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let conn = Arc::new(ConnState::default());
    conn.events.set_writer(tx.downgrade());
    let slots = Arc::new(Semaphore::new(CALLS_IN_FLIGHT));
    loop {
        let body = match read_frame(&mut rd).await {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(why) => {
                tracing::info!(%why, "libvirt socket: closing a connection");
                break;
            }
        };
        let (header, payload) = match frame::split_body(&body) {
            Ok(x) => x,
            Err(e) => {
                // No header to answer to: libvirtd closes such a client too.
                tracing::info!(error = %e, "libvirt socket: bad header, closing the connection");
                break;
            }
        };
        match (header.prog, header.type_) {
            (KEEPALIVE_PROGRAM, _) => {
                if let Some(pong) = keepalive(&header) {
                    let _ = tx.send(pong).await;
                }
            }
            (REMOTE_PROGRAM, MessageType::Call) if header.vers == REMOTE_PROTOCOL_VERSION => {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (tx, daemon, conn) = (tx.clone(), daemon.clone(), conn.clone());
                let payload = payload.to_vec();
                tokio::spawn(async move {
                    let p = Procedure::from_u32(header.proc_);
                    let reply = dispatch::call(&daemon, &conn, p, &payload).await;
                    if let Err(e) = &reply {
                        tracing::debug!(procedure = %p, code = ?e.code, "libvirt call refused");
                    }
                    // The client may be gone: the operation is done either way.
                    let _ = tx.send(reply_frame(&header, reply)).await;
                    drop(slot);
                });
            }
            (_, MessageType::Call) => {
                let e = if header.prog == REMOTE_PROGRAM {
                    Refusal::new(
                        ErrorCode::Rpc,
                        format!(
                            "program 0x{:x} version {} is not served (version {} is)",
                            header.prog, header.vers, REMOTE_PROTOCOL_VERSION
                        ),
                    )
                } else {
                    Refusal::new(
                        ErrorCode::Rpc,
                        format!(
                            "cannot find program 0x{:x} version {}: virtnetd serves the remote \
                             program 0x{REMOTE_PROGRAM:x} and keepalive 0x{KEEPALIVE_PROGRAM:x}",
                            header.prog, header.vers
                        ),
                    )
                };
                let _ = tx.send(reply_frame(&header, Err(e.by_protocol()))).await;
            }
            (_, MessageType::CallWithFds) => {
                let e = Refusal::new(
                    ErrorCode::NoSupport,
                    "this function is not supported by the connection driver: file descriptor \
                     passing",
                );
                let _ = tx.send(reply_frame(&header, Err(e))).await;
            }
            // Replies, messages and stream data a client sends unasked: nothing waits for
            // them (virtnetd serves no streams yet).
            (prog, t) => tracing::debug!(prog, ?t, "libvirt socket: ignored a message"),
        }
    }
    // Its event registrations go with it.
    conn.events.close();
    drop(tx);
    let _ = writer.await;
}

/// The next frame's body (header and payload); `None` at a clean end of stream (between
/// frames), an error for a bad length or a stream cut inside a frame.
async fn read_frame(rd: &mut (impl AsyncRead + Unpin)) -> Result<Option<Vec<u8>>, String> {
    let mut word = [0u8; LEN_SIZE as usize];
    let mut got = 0;
    while got < word.len() {
        match rd.read(&mut word[got..]).await {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err("connection closed inside a length word".into()),
            Ok(n) => got += n,
            Err(e) => return Err(e.to_string()),
        }
    }
    let len = frame::body_len(word).map_err(|e| e.to_string())?;
    // Read as the bytes come, so a length that lies costs no memory up front.
    let mut body = Vec::new();
    rd.take(len as u64)
        .read_to_end(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    if body.len() != len {
        return Err(format!(
            "connection closed inside a frame ({} of {len} bytes)",
            body.len()
        ));
    }
    Ok(Some(body))
}

/// The PONG to a PING (`virkeepaliveprotocol.x`); a PONG (the answer to a PING the client
/// thinks we sent, or an unasked one) and anything else of the program needs no answer.
fn keepalive(h: &Header) -> Option<Vec<u8>> {
    if h.vers != KEEPALIVE_PROTOCOL_VERSION || h.type_ != MessageType::Message {
        tracing::debug!(?h, "libvirt socket: ignored a keepalive message");
        return None;
    }
    match h.proc_ {
        KEEPALIVE_PROC_PING => Some(frame::encode_frame(
            &Header {
                prog: KEEPALIVE_PROGRAM,
                vers: KEEPALIVE_PROTOCOL_VERSION,
                proc_: KEEPALIVE_PROC_PONG,
                type_: MessageType::Message,
                serial: 0,
                status: Status::Ok,
            },
            &[],
        )),
        _ => None,
    }
}

fn reply_frame(call: &Header, reply: Result<Vec<u8>, Refusal>) -> Vec<u8> {
    match reply {
        Ok(ret) => frame::encode_frame(&call.reply(Status::Ok), &ret),
        Err(e) => frame::encode_frame(&call.reply(Status::Error), &to_bytes(&e.to_remote())),
    }
}
