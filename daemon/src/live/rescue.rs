//! Ending a QEMU 7.2 stall inside `netdev_add` of a vhost-user NIC whose socket QEMU listens
//! on (`mode='server'`), once its back end has gone.
//!
//! Measured (QEMU 7.2.22): a back end that connects and never answers blocks `netdev_add`;
//! when it disconnects, QEMU logs `vhost_backend_init failed: Protocol error` and, still inside
//! `netdev_add`, waits for the next connection: only a back end that completes the handshake
//! releases it (a client that connects and closes does not). So when an attach stalls there,
//! virtnetd connects to the socket itself (the connection waits in the listen backlog while
//! the silent back end is still connected) and answers the handshake of `vhost_net_init` as a
//! back end with no device features: `GET_FEATURES` gets only `PROTOCOL_FEATURES`,
//! `GET_PROTOCOL_FEATURES` only `CONFIGURE_MEM_SLOTS` and `GET_MAX_MEM_SLOTS` 32 (without
//! them QEMU 7.2 allows the back end no memory slot and fails `vhost memory slots limit is less
//! than current number of present memory slots`, then waits again); everything else
//! (`SET_OWNER`, `SET_PROTOCOL_FEATURES`, `SET_VRING_CALL`/`SET_VRING_ERR`, whose fds the kernel
//! closes as they are not read) needs no reply. Then
//! `netdev_add` returns, the `netdev_del` and `chardev-remove` queued by the failed attach run
//! and close the connection. It ends by itself when the socket closes (QEMU killed or the
//! chardev removed). If the real back end comes back first and completes the handshake, this
//! connection just waits in the backlog until the queued undo closes the socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The requests that need an answer, and the answer (a u64): `GET_FEATURES` →
/// `VHOST_USER_F_PROTOCOL_FEATURES`, `GET_PROTOCOL_FEATURES` →
/// `VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS`, `GET_MAX_MEM_SLOTS` → 32.
const ANSWERS: [(u32, u64); 3] = [(1, 1 << 30), (15, 1 << 15), (36, 32)];
/// Header flags of a reply: version 1, reply bit.
const REPLY_FLAGS: u32 = 0x1 | 0x4;
/// The largest payload QEMU 7.2 sends (`VhostUserMsg`'s union is well below this).
const MAX_PAYLOAD: usize = 4096;
/// How long to wait for QEMU to take the connection once it is there.
const IDLE: Duration = Duration::from_secs(24 * 3600);

/// Starts answering QEMU's handshake on `socket` in the background (see the module docs).
pub(crate) fn spawn_rescue(vm: &str, socket: PathBuf) {
    let vm = vm.to_string();
    tokio::spawn(async move {
        match answer_handshake(&socket).await {
            Ok(n) => {
                tracing::info!(vm = %vm, socket = %socket.display(), messages = n,
                    "vhost-user stand-in: the socket closed")
            }
            Err(e) => {
                tracing::debug!(vm = %vm, socket = %socket.display(), error = %e,
                    "vhost-user stand-in ended")
            }
        }
    });
}

/// Connects to `socket` and answers vhost-user requests until it closes; returns how many
/// messages QEMU sent.
async fn answer_handshake(socket: &Path) -> std::io::Result<usize> {
    let mut s = UnixStream::connect(socket).await?;
    let mut seen = 0;
    let mut payload = vec![0u8; MAX_PAYLOAD];
    loop {
        let mut header = [0u8; 12];
        match tokio::time::timeout(IDLE, s.read_exact(&mut header)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(seen),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(seen),
        }
        seen += 1;
        let word =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (request, size) = (word(0), word(8) as usize);
        if size > MAX_PAYLOAD {
            return Err(std::io::Error::other(format!(
                "vhost-user message {request} with a {size}-byte payload"
            )));
        }
        s.read_exact(&mut payload[..size]).await?;
        if let Some((_, value)) = ANSWERS.iter().find(|(r, _)| *r == request) {
            let mut reply = Vec::with_capacity(20);
            reply.extend_from_slice(&request.to_le_bytes());
            reply.extend_from_slice(&REPLY_FLAGS.to_le_bytes());
            reply.extend_from_slice(&8u32.to_le_bytes());
            reply.extend_from_slice(&value.to_le_bytes());
            s.write_all(&reply).await?;
        }
    }
}
