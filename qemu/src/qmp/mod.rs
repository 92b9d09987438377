//! Async QMP client.
//!
//! ```no_run
//! # async fn demo() -> virtnet_qemu::Result<()> {
//! use serde_json::json;
//! let qmp = virtnet_qemu::QmpClient::connect("/run/virtnet/vm1.qmp").await?;
//! println!("QEMU {}", qmp.greeting().version);
//! qmp.execute("netdev_add", json!({"type": "user", "id": "h1"})).await?;
//! # Ok(()) }
//! ```
//!
//! One connection has a writer task and a reader task (see `dispatch`). [`QmpClient`] is a
//! cheap `Clone` handle; any number of tasks may call it at once. Every command has a deadline
//! ([`QmpOptions::command_timeout`], or per call with [`QmpClient::execute_with_timeout`]).
//! When the last handle is dropped both tasks stop and the socket is closed.

mod commands;
mod deleted;
mod dispatch;
mod fdpass;
mod migration;
mod wire;

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::AbortHandle;

pub use commands::{AddFdInfo, FdsetFd, FdsetInfo, VmStatus};
pub use migration::{MigrationInfo, MigrationRam};
pub use wire::{QmpEvent, QmpGreeting};

use crate::error::{QemuError, Result};
use dispatch::{Outgoing, Shared};
use wire::Outcome;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct QmpOptions {
    /// Deadline for each command unless given per call. Default 30 s.
    pub command_timeout: Duration,
    /// Deadline for QEMU's greeting after connecting. Default 10 s.
    pub greeting_timeout: Duration,
    /// Events buffered per subscriber before it starts missing some
    /// ([`broadcast::error::RecvError::Lagged`]). Default 256.
    pub event_capacity: usize,
}

impl Default for QmpOptions {
    fn default() -> Self {
        QmpOptions {
            command_timeout: Duration::from_secs(30),
            greeting_timeout: Duration::from_secs(10),
            event_capacity: 256,
        }
    }
}

/// A handle to one QMP connection. Clone it freely; all clones share the connection.
#[derive(Clone)]
pub struct QmpClient {
    inner: Arc<Inner>,
}

struct Inner {
    queue: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    greeting: QmpGreeting,
    options: QmpOptions,
    reader: AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer stops by itself when `queue` is dropped; the reader would wait for QEMU.
        self.reader.abort();
    }
}

impl std::fmt::Debug for QmpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QmpClient")
            .field("greeting", &self.inner.greeting)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl QmpClient {
    /// Connects to QEMU's QMP unix socket with default options (see [`QmpClient::connect_with`]).
    pub async fn connect(path: impl AsRef<Path>) -> Result<Self> {
        Self::connect_with(path, QmpOptions::default()).await
    }

    /// Connects to QEMU's QMP unix socket, reads the greeting and negotiates capabilities
    /// (`qmp_capabilities`), after which QEMU accepts commands.
    pub async fn connect_with(path: impl AsRef<Path>, options: QmpOptions) -> Result<Self> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| QemuError::QmpConnect {
                path: path.to_path_buf(),
                source,
            })?;
        Self::from_stream(stream, options).await
    }

    /// Runs the QMP handshake on an already connected stream (e.g. one end of a socketpair
    /// whose other end QEMU got with `-chardev socket,fd=N`).
    pub async fn from_stream(stream: UnixStream, options: QmpOptions) -> Result<Self> {
        let (read_half, write_half) = stream.into_split();
        let mut reader = BufReader::new(read_half);
        let mut line = Vec::new();
        let read = tokio::time::timeout(options.greeting_timeout, async {
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).await?;
                if n == 0 || !line.iter().all(u8::is_ascii_whitespace) {
                    return Ok::<usize, std::io::Error>(n);
                }
            }
        })
        .await;
        match read {
            Err(_) => {
                return Err(QemuError::Protocol(format!(
                    "no QMP greeting within {:?}: is this a QMP socket (mode=control)?",
                    options.greeting_timeout
                )))
            }
            Ok(Err(e)) => {
                return Err(QemuError::Protocol(format!(
                    "cannot read the QMP greeting: {e}"
                )))
            }
            Ok(Ok(0)) => {
                return Err(QemuError::Closed {
                    waiting_for: "the QMP greeting".into(),
                })
            }
            Ok(Ok(_)) => {}
        }
        let greeting = wire::parse_greeting(&line)?;

        let shared = Arc::new(Shared::new(options.event_capacity));
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(dispatch::reader_loop(reader, shared.clone())).abort_handle();
        tokio::spawn(dispatch::writer_loop(write_half, queue_rx, shared.clone()));
        let client = QmpClient {
            inner: Arc::new(Inner {
                queue,
                shared,
                next_id: AtomicU64::new(1),
                greeting,
                options,
                reader,
            }),
        };
        client.execute("qmp_capabilities", Value::Null).await?;
        Ok(client)
    }

    /// What QEMU said when we connected, including its version.
    pub fn greeting(&self) -> &QmpGreeting {
        &self.inner.greeting
    }

    /// The options this connection was made with.
    pub fn options(&self) -> &QmpOptions {
        &self.inner.options
    }

    /// Runs `command` with `args` (a JSON object, or `Value::Null` for none) and returns
    /// QEMU's `return` value. Fails with [`QemuError::CommandFailed`] (class and desc) on an
    /// error reply, [`QemuError::CommandTimeout`] after the default deadline, and
    /// [`QemuError::Closed`] if QEMU goes away first.
    pub async fn execute(&self, command: &str, args: Value) -> Result<Value> {
        self.run(command, args, None, self.inner.options.command_timeout)
            .await
    }

    /// Like [`QmpClient::execute`] with a deadline for this call only.
    pub async fn execute_with_timeout(
        &self,
        command: &str,
        args: Value,
        timeout: Duration,
    ) -> Result<Value> {
        self.run(command, args, None, timeout).await
    }

    /// Like [`QmpClient::execute`], passing `fd` to QEMU with `SCM_RIGHTS` in the same
    /// `sendmsg` as the command (for `getfd` and `add-fd`). The fd is duplicated; the caller
    /// keeps its own copy and closes it when it wants.
    pub async fn execute_with_fd(
        &self,
        command: &str,
        args: Value,
        fd: BorrowedFd<'_>,
    ) -> Result<Value> {
        let owned = fd.try_clone_to_owned().map_err(|source| QemuError::Send {
            command: command.to_string(),
            source,
        })?;
        self.run(
            command,
            args,
            Some(owned),
            self.inner.options.command_timeout,
        )
        .await
    }

    async fn run(
        &self,
        command: &str,
        args: Value,
        fd: Option<std::os::fd::OwnedFd>,
        timeout: Duration,
    ) -> Result<Value> {
        let closed = || QemuError::Closed {
            waiting_for: format!("the reply to `{command}`"),
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = wire::encode_command(command, &args, id)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.inner.shared.lock();
            if st.closed {
                return Err(closed());
            }
            st.pending.insert(id, tx);
        }
        // Removes the pending entry however this future ends (reply, timeout, dropped).
        let _guard = PendingGuard {
            shared: &self.inner.shared,
            id,
        };
        if self.inner.queue.send(Outgoing { id, bytes, fd }).is_err() {
            return Err(closed());
        }
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(QemuError::CommandTimeout {
                command: command.to_string(),
                timeout,
            }),
            Ok(Err(_)) => Err(closed()),
            Ok(Ok(Outcome::Return(v))) => Ok(v),
            Ok(Ok(Outcome::Error { class, desc })) => Err(QemuError::CommandFailed {
                command: command.to_string(),
                class,
                desc,
            }),
            Ok(Ok(Outcome::SendFailed(source))) => Err(QemuError::Send {
                command: command.to_string(),
                source,
            }),
        }
    }

    /// Subscribes to every event QEMU sends from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<QmpEvent> {
        self.inner.shared.events.subscribe()
    }

    /// Waits until QEMU reports `DEVICE_DELETED` for `alias` (a device id, or a QOM path for
    /// devices without one). Event-driven, no polling. A deletion that happened before this
    /// call but was not yet claimed by another waiter counts (QEMU may send the event before
    /// the caller gets here); [`QmpClient::device_del`] forgets stale ones for its id first.
    /// Fails with [`QemuError::DeviceDeleteTimeout`] or [`QemuError::Closed`].
    pub async fn wait_for_device_deleted(&self, alias: &str, timeout: Duration) -> Result<()> {
        let closed = || QemuError::Closed {
            waiting_for: format!("DEVICE_DELETED of `{alias}`"),
        };
        let rx = {
            let mut st = self.inner.shared.lock();
            if st.deleted.take_recent(alias) {
                return Ok(());
            }
            if st.closed {
                return Err(closed());
            }
            st.deleted.register(alias)
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(closed()),
            Err(_) => {
                self.inner.shared.lock().deleted.prune(alias);
                Err(QemuError::DeviceDeleteTimeout {
                    device: alias.to_string(),
                    timeout,
                })
            }
        }
    }

    /// True once the connection is gone (QEMU exited or closed the monitor).
    pub fn is_closed(&self) -> bool {
        self.inner.shared.lock().closed
    }

    /// Resolves when the connection closes (QEMU exited or closed the monitor).
    pub async fn closed(&self) {
        let mut rx = self.inner.shared.closed_watch();
        // Err means the sender is gone, which only happens with the connection.
        let _ = rx.wait_for(|closed| *closed).await;
    }

    fn forget_deleted(&self, alias: &str) {
        self.inner.shared.lock().deleted.forget(alias);
    }
}

struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock().pending.remove(&self.id);
    }
}
