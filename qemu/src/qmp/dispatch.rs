//! The connection's two tasks and the state they share with callers.
//!
//! - The writer task owns the socket's write half and sends queued commands one at a time,
//!   so two commands' bytes (and fds) never interleave, and a caller that gives up (timeout,
//!   dropped future) can never leave half a command on the wire.
//! - The reader task owns the read half, hands each reply to the caller waiting on its `id`,
//!   broadcasts events, and on end-of-file fails every pending caller with "closed".

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::deleted::DeviceDeletions;
use super::fdpass;
use super::wire::{self, Message, Outcome, QmpEvent};

/// A command waiting in the writer's queue.
pub(crate) struct Outgoing {
    pub(crate) id: u64,
    pub(crate) bytes: Vec<u8>,
    pub(crate) fd: Option<OwnedFd>,
}

/// Mutable state behind one lock.
#[derive(Default)]
pub(crate) struct State {
    /// Callers waiting for a reply, by id.
    pub(crate) pending: HashMap<u64, oneshot::Sender<Outcome>>,
    /// Set once the connection is gone; nothing new is accepted after that.
    pub(crate) closed: bool,
    /// `DEVICE_DELETED` waiters and recent events.
    pub(crate) deleted: DeviceDeletions,
}

/// What the client handle, the reader and the writer share.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) events: broadcast::Sender<QmpEvent>,
    closed_tx: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(event_capacity: usize) -> Self {
        Shared {
            state: Mutex::new(State::default()),
            events: broadcast::channel(event_capacity.max(1)).0,
            closed_tx: watch::channel(false).0,
        }
    }

    /// Locks the state. A panic while holding the lock cannot leave it inconsistent in a way
    /// that matters here, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that turns `true` once the connection has closed.
    pub(crate) fn closed_watch(&self) -> watch::Receiver<bool> {
        self.closed_tx.subscribe()
    }

    fn complete(&self, id: u64, outcome: Outcome) {
        // Nobody waiting (timed out or cancelled): the reply is dropped.
        if let Some(tx) = self.lock().pending.remove(&id) {
            let _ = tx.send(outcome);
        }
    }

    fn is_pending(&self, id: u64) -> bool {
        self.lock().pending.contains_key(&id)
    }

    fn dispatch_event(&self, event: QmpEvent) {
        if event.name == "DEVICE_DELETED" {
            self.lock().deleted.on_event(&event.data);
        }
        // No subscriber is fine.
        let _ = self.events.send(event);
    }

    /// Marks the connection closed: pending callers and device waiters see their channel
    /// close, which they report as `QemuError::Closed`.
    pub(crate) fn close(&self) {
        {
            let mut st = self.lock();
            st.closed = true;
            st.pending.clear();
            st.deleted.drop_waiters();
        }
        self.closed_tx.send_replace(true);
    }
}

/// Reads lines until end-of-file or an I/O error, then closes the shared state.
pub(crate) async fn reader_loop<R: AsyncBufRead + Unpin>(mut reader: R, shared: Arc<Shared>) {
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match wire::parse_message(&line) {
            Ok(Message::Reply { id, outcome }) => shared.complete(id, outcome),
            Ok(Message::Event(ev)) => shared.dispatch_event(ev),
            // Replies we cannot match and garbage lines have no one to go to.
            Ok(Message::Other) | Err(_) => {}
        }
    }
    shared.close();
}

/// Sends queued commands in order until every client handle is gone.
pub(crate) async fn writer_loop(
    mut half: OwnedWriteHalf,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
) {
    while let Some(msg) = queue.recv().await {
        // The caller gave up before we got to it: don't run a command nobody waits for
        // (and don't hand QEMU an fd nobody will close).
        if !shared.is_pending(msg.id) {
            continue;
        }
        let res = match &msg.fd {
            Some(fd) => fdpass::send_with_fd(half.as_ref(), &msg.bytes, fd.as_fd()).await,
            None => half.write_all(&msg.bytes).await,
        };
        if let Err(e) = res {
            shared.complete(msg.id, Outcome::SendFailed(e));
        }
    }
}
