//! Sending a command's bytes together with one file descriptor (`SCM_RIGHTS`).
//!
//! QEMU attaches a received fd to the command whose bytes arrived in the same `recvmsg`, so
//! the fd must travel in the same `sendmsg` as the start of the command's JSON.
//!
//! Why rustix rather than nix: rustix's `sendmsg` takes the fds as `BorrowedFd`s in a typed
//! `SendAncillaryMessage::ScmRights`, so there is no `unsafe` and no hand-made `cmsghdr`
//! arithmetic in our code; it also gives safe `pidfd_open`/`pidfd_send_signal`, which the process
//! module uses for race-free signalling. nix would need `RawFd`s and its API has changed a lot
//! between releases; rustix's 1.x API is stable and compiles only the modules we enable.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::io::Interest;
use tokio::net::UnixStream;

/// Writes all of `bytes` to `stream`, with `fd` attached to the first chunk.
///
/// Tokio's `UnixStream` cannot send ancillary data, so the `sendmsg` runs inside
/// `try_io(Interest::WRITABLE, ..)` on the stream's own fd; tokio then keeps its readiness
/// bookkeeping right when the socket buffer is full (`EWOULDBLOCK`). The caller serialises
/// writes (one writer task), so no other command's bytes can come in between.
pub(crate) async fn send_with_fd(
    stream: &UnixStream,
    bytes: &[u8],
    fd: BorrowedFd<'_>,
) -> io::Result<()> {
    let mut sent = loop {
        stream.writable().await?;
        match stream.try_io(Interest::WRITABLE, || sendmsg_with_fd(stream, bytes, fd)) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    // A partial write is possible when the socket buffer is nearly full; the fd has gone with
    // the first byte, the rest is plain data.
    while sent < bytes.len() {
        stream.writable().await?;
        match stream.try_write(&bytes[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn sendmsg_with_fd(stream: &UnixStream, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<usize> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("SCM_RIGHTS control buffer too small"));
    }
    // NOSIGNAL: a closed peer gives EPIPE, never SIGPIPE.
    let n = rustix::net::sendmsg(
        stream,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(n)
}
