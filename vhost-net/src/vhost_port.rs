//! A vhost-user port: the connection supervisor (connect with backoff, accept, reconnect)
//! and delivery of frames into the guest's receive queues.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use vhost::vhost_user::Listener;

use vhost_user_backend::{ShutdownHandle, VhostUserDaemon, VringT};
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_net::VIRTIO_NET_F_MRG_RXBUF;
use virtio_queue::QueueT;
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};

use crate::backend::NetBackend;
use crate::config::{PortConfig, SocketMode};
use crate::core::SwitchCore;
use crate::counters::{DropReason, PortCounters};
use crate::deliver::deliver_pass;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::guestmem::GuestView;
use crate::mac_table::PortId;
use crate::policy::PolicyCell;
use crate::rx::{Gm, RxScratch, Vring};
use crate::shim::Relay;
use crate::vnet_hdr::{HDR_LEN_LEGACY, HDR_LEN_MRG};

/// State of one vhost-user connection; replaced at every reconnect.
pub struct ConnState {
    /// The guest's memory (swapped by SET_MEM_TABLE / ADD_MEM_REG / REM_MEM_REG).
    pub mem: Gm,
    /// Bumped after every change of `mem` (the back end's `update_memory`), so polling
    /// threads can keep a snapshot and reload it only when this moves.
    pub mem_gen: AtomicU64,
    /// Virtio features the driver acknowledged.
    pub features: AtomicU64,
    /// Receive vring of each queue pair, once the driver started it.
    pub rx: Vec<RwLock<Option<Vring>>>,
    /// Set when the connection ends: worker loops return.
    pub exit: AtomicBool,
}

impl ConnState {
    fn new(queue_pairs: usize) -> Self {
        ConnState {
            mem: GuestMemoryAtomic::new(GuestMemoryMmap::new()),
            mem_gen: AtomicU64::new(0),
            features: AtomicU64::new(0),
            rx: (0..queue_pairs).map(|_| RwLock::new(None)).collect(),
            exit: AtomicBool::new(false),
        }
    }

    /// Length of the virtio-net header in this guest's layout.
    pub fn hdr_len(&self) -> usize {
        let f = self.features.load(Ordering::Relaxed);
        if f & ((1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_NET_F_MRG_RXBUF)) != 0 {
            HDR_LEN_MRG
        } else {
            HDR_LEN_LEGACY
        }
    }
}

/// A vhost-user port and its supervisor thread.
pub struct VhostPort {
    /// Its settings.
    pub config: PortConfig,
    conn: RwLock<Option<Arc<ConnState>>>,
    stop: AtomicBool,
    shutdown: Mutex<Option<ShutdownHandle>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl VhostPort {
    /// Starts serving `config`'s socket as port `id` of `core`. In server mode the
    /// socket is created before this returns (errors are reported here); in client mode
    /// the supervisor keeps trying to connect until the port is removed.
    pub fn start(
        core: Arc<SwitchCore>,
        id: PortId,
        counters: Arc<PortCounters>,
        config: PortConfig,
        policy: PolicyCell,
    ) -> Result<Arc<VhostPort>> {
        let listener = match config.mode {
            SocketMode::Server => {
                let err = |source| Error::Listen {
                    path: config.socket.clone(),
                    source,
                };
                if std::fs::symlink_metadata(&config.socket)
                    .is_ok_and(|m| m.file_type().is_socket())
                    && UnixStream::connect(&config.socket).is_err()
                {
                    let _ = std::fs::remove_file(&config.socket); // stale socket
                }
                let l = UnixListener::bind(&config.socket).map_err(err)?;
                l.set_nonblocking(true).map_err(err)?;
                Some(l)
            }
            SocketMode::Client => None,
        };
        let port = Arc::new(VhostPort {
            config: config.clone(),
            conn: RwLock::new(None),
            stop: AtomicBool::new(false),
            shutdown: Mutex::new(None),
            thread: Mutex::new(None),
        });
        let p = port.clone();
        let handle = std::thread::Builder::new()
            .name(format!("vsw-{}", config.name))
            .spawn(move || p.supervise(core, id, counters, listener, policy))
            .map_err(|source| Error::Thread {
                name: config.name.clone(),
                source,
            })?;
        *port.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(port)
    }

    /// Whether a frontend is connected right now.
    pub fn connected(&self) -> bool {
        self.conn
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Features acknowledged by the connected driver (0 when not connected).
    pub fn acked_features(&self) -> u64 {
        self.conn
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |c| c.features.load(Ordering::Relaxed))
    }

    /// Receive queues the connected driver has started (0 when not connected).
    pub fn ready_queues(&self) -> u16 {
        let conn = self.conn.read().unwrap_or_else(|e| e.into_inner()).clone();
        conn.map_or(0, |c| {
            c.rx.iter()
                .filter(|r| r.read().unwrap_or_else(|e| e.into_inner()).is_some())
                .count() as u16
        })
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps up to `d`, waking early when the port is being removed.
    fn nap(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopping() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }

    fn supervise(
        self: Arc<Self>,
        core: Arc<SwitchCore>,
        id: PortId,
        counters: Arc<PortCounters>,
        listener: Option<UnixListener>,
        policy: PolicyCell,
    ) {
        let qps = self.config.queues as usize;
        let max_backoff = core.config.max_backoff;
        let mut backoff = Duration::from_millis(10);
        let mut serial = 0u64;
        while !self.stopping() {
            // 1. The frontend's connection.
            let frontend = match listener.as_ref() {
                None => self.connect(max_backoff),
                Some(l) => self.accept(l),
            };
            let Some(frontend) = frontend else {
                continue;
            };
            // 2. A fresh back end for it, reached through the relay (see shim.rs).
            let conn = Arc::new(ConnState::new(qps));
            let backend = Arc::new(NetBackend::new(
                core.clone(),
                id,
                counters.clone(),
                conn.clone(),
                self.config.clone(),
                policy.clone(),
            ));
            backend.set_self();
            serial += 1;
            let started = Instant::now();
            if let Err(e) = self.serve(&conn, backend, frontend, &counters, id, serial) {
                log::warn!("port {}: {e}", self.config.name);
            }
            *self.conn.write().unwrap_or_else(|e| e.into_inner()) = None;
            conn.exit.store(true, Ordering::Release);
            // A connection that ends at once (handshake refused, frontend crashing) must
            // not turn into a reconnect storm.
            if started.elapsed() < Duration::from_secs(1) {
                self.nap(backoff);
                backoff = (backoff * 2).min(max_backoff);
            } else {
                backoff = Duration::from_millis(10);
            }
        }
    }

    /// Runs one connection to its end.
    fn serve(
        &self,
        conn: &Arc<ConnState>,
        backend: Arc<NetBackend>,
        frontend: UnixStream,
        counters: &PortCounters,
        id: PortId,
        serial: u64,
    ) -> std::io::Result<()> {
        let mut daemon = VhostUserDaemon::new(self.config.name.clone(), backend, conn.mem.clone())
            .map_err(|e| std::io::Error::other(format!("cannot create back end: {e}")))?;
        // Process-wide unique: several switches may live in one process (tests).
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "virtnet-vswitch-{}-{id}-{serial}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let inner = UnixListener::bind_addr(&addr)?;
        let ours = UnixStream::connect_addr(&addr)?;
        let mut listener = Listener::from(inner);
        daemon
            .start(&mut listener)
            .map_err(|e| std::io::Error::other(format!("cannot start back end: {e}")))?;
        drop(listener);
        let relay = Relay::start(frontend, ours)?;
        *self.shutdown.lock().unwrap_or_else(|e| e.into_inner()) = daemon.shutdown_handle();
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        counters.add_connection();
        if self.stopping() {
            daemon.request_shutdown();
        }
        let res = daemon.wait();
        *self.shutdown.lock().unwrap_or_else(|e| e.into_inner()) = None;
        relay.stop();
        conn.exit.store(true, Ordering::Release);
        drop(daemon); // joins the vring worker threads
        if let Err(e) = res {
            log::info!("port {}: connection ended: {e}", self.config.name);
        }
        Ok(())
    }

    /// Client mode: connect, retrying with exponential backoff until the socket
    /// appears (QEMU starting) or comes back (QEMU restarted).
    fn connect(&self, max: Duration) -> Option<UnixStream> {
        let mut backoff = Duration::from_millis(10);
        while !self.stopping() {
            match UnixStream::connect(&self.config.socket) {
                Ok(s) => return Some(s),
                Err(e) => {
                    log::debug!(
                        "port {}: connect {}: {e}",
                        self.config.name,
                        self.config.socket.display()
                    );
                    self.nap(backoff);
                    backoff = (backoff * 2).min(max);
                }
            }
        }
        None
    }

    /// Server mode: wait (interruptibly) for a frontend to connect.
    fn accept(&self, l: &UnixListener) -> Option<UnixStream> {
        while !self.stopping() {
            let mut pfd = libc::pollfd {
                fd: l.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: pfd is a valid pollfd for the duration of the call.
            if unsafe { libc::poll(&mut pfd, 1, 100) } > 0 {
                if let Ok((s, _)) = l.accept() {
                    let _ = s.set_nonblocking(false);
                    return Some(s);
                }
            }
        }
        None
    }

    /// Disconnects, stops the supervisor and (server mode) removes the socket file.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self
            .shutdown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            h.shutdown();
        }
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
        if self.config.mode == SocketMode::Server {
            let _ = std::fs::remove_file(&self.config.socket);
        }
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.config.socket.clone()
    }

    /// Delivers `frames[idx]` into the receive queue chosen for `src_qp`, adapting the
    /// offload metadata to what this guest negotiated: a partial checksum is completed
    /// in software for a guest without GUEST_CSUM; a TCP GSO frame to a guest without the
    /// matching GUEST_TSO4/6 (or GUEST_ECN) is segmented in software; other GSO types it
    /// cannot take (UDP) are dropped and counted (`offload_unsupported`).
    pub fn deliver(
        &self,
        counters: &PortCounters,
        frames: &mut [Frame],
        idx: &[usize],
        src_qp: usize,
        sc: &mut RxScratch,
    ) {
        let conn = self.conn.read().unwrap_or_else(|e| e.into_inner()).clone();
        let drop_all = |reason| {
            for _ in idx {
                counters.drop_frame(reason);
            }
        };
        let Some(conn) = conn else {
            return drop_all(DropReason::QueueNotReady);
        };
        let vring = {
            let pick = |i: usize| conn.rx[i].read().unwrap_or_else(|e| e.into_inner()).clone();
            pick(src_qp % conn.rx.len()).or_else(|| pick(0))
        };
        let Some(vring) = vring else {
            return drop_all(DropReason::QueueNotReady);
        };
        let f = conn.features.load(Ordering::Relaxed);
        let hdr_len = conn.hdr_len();
        let guard = conn.mem.memory();
        let mem = GuestView::new(&guard);
        let mut st = vring.get_mut();
        if !st.get_queue().ready() || !st.is_enabled() {
            return drop_all(DropReason::QueueNotReady);
        }
        let notify = deliver_pass(
            &mem,
            st.get_queue_mut(),
            f,
            hdr_len,
            counters,
            frames,
            idx,
            sc,
        );
        if notify {
            let _ = st.signal_used_queue();
        }
    }
}
