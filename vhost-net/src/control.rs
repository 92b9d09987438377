//! The control socket: one JSON object per line in each direction (see CONTROL.md).

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use virtnet_vswitch_control::{Request, Response};

use crate::error::{Error, Result};
use crate::switch::Switch;

/// Runs one request against the switch.
pub fn execute(switch: &Switch, req: Request) -> Response {
    let done = |r: Result<()>| match r {
        Ok(()) => Response::ok(),
        Err(e) => Response::err(e),
    };
    match req {
        Request::AddPort(cfg) => done(switch.add_port(*cfg)),
        Request::AddUplink { name, tap } => done(switch.add_tap_port(&name, &tap)),
        Request::DelPort { name } => done(switch.del_port(&name)),
        Request::SetPolicy { name, policy } => done(switch.set_policy(&name, policy)),
        Request::ListPorts => Response {
            ports: Some(switch.list_ports()),
            ..Response::ok()
        },
        Request::MacTable => Response {
            macs: Some(switch.mac_table()),
            ..Response::ok()
        },
    }
}

/// Parses and runs one request line.
pub fn execute_line(switch: &Switch, line: &str) -> Response {
    match Request::from_line(line) {
        Ok(req) => execute(switch, req),
        Err(refusal) => refusal,
    }
}

/// The listening control socket and its thread.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ControlServer {
    /// Listens on `path` (a stale socket file there is replaced) and serves requests
    /// for `switch` until [`ControlServer::stop`].
    pub fn start(switch: Arc<Switch>, path: &Path) -> Result<ControlServer> {
        let err = |source| Error::Control {
            path: path.to_path_buf(),
            source,
        };
        if path.exists() && UnixStream::connect(path).is_err() {
            let _ = std::fs::remove_file(path);
        }
        let listener = UnixListener::bind(path).map_err(err)?;
        // Owner-only: the switch's directory is shared with QEMU (its group), but only the
        // switch's own user and root (virtnetd) may drive it. Peers are checked too (below),
        // which also covers the moment between bind and chmod.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vsw-control".into())
            .spawn(move || accept_loop(switch, listener, s))
            .map_err(|source| Error::Thread {
                name: "vsw-control".into(),
                source,
            })?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops serving and removes the socket file.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_readable(fd: i32, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is valid for the call.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

/// Whether the peer of a control connection is root or the switch's own user (SO_PEERCRED).
fn peer_allowed(stream: &UnixStream) -> bool {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which lives for the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    // SAFETY: geteuid has no preconditions.
    rc == 0 && (cred.uid == 0 || cred.uid == unsafe { libc::geteuid() })
}

fn accept_loop(switch: Arc<Switch>, listener: UnixListener, stop: Arc<AtomicBool>) {
    let mut clients: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        if !wait_readable(listener.as_raw_fd(), 100) {
            clients.retain(|c| !c.is_finished());
            continue;
        }
        if let Ok((stream, _)) = listener.accept() {
            if !peer_allowed(&stream) {
                log::warn!("control socket: refused a peer that is neither root nor our user");
                continue;
            }
            let (sw, st) = (switch.clone(), stop.clone());
            if let Ok(h) = std::thread::Builder::new()
                .name("vsw-control-client".into())
                .spawn(move || serve_client(&sw, stream, &st))
            {
                clients.push(h);
            }
        }
    }
    for c in clients {
        let _ = c.join();
    }
}

fn serve_client(switch: &Switch, stream: UnixStream, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !stop.load(Ordering::Acquire) {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {
                if line.ends_with('\n') {
                    let resp = execute_line(switch, line.trim());
                    line.clear();
                    if out.write_all(resp.to_line().as_bytes()).is_err() {
                        return;
                    }
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

/// A client of the control socket (what virtnetd uses).
pub struct ControlClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl ControlClient {
    /// Connects to the switch's control socket.
    pub fn connect(path: &Path) -> Result<ControlClient> {
        let err = |source| Error::Control {
            path: path.to_path_buf(),
            source,
        };
        let s = UnixStream::connect(path).map_err(err)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(err)?;
        let writer = s.try_clone().map_err(err)?;
        Ok(ControlClient {
            reader: BufReader::new(s),
            writer,
        })
    }

    /// Sends one request and waits (up to 10 s) for its reply.
    pub fn request(&mut self, req: &Request) -> std::io::Result<Response> {
        self.writer.write_all(req.to_line().as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        Response::from_line(&line).map_err(std::io::Error::other)
    }
}
