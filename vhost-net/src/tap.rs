//! The optional uplink: a tap device opened with a virtio-net header, so offloads
//! (partial checksums, TSO) pass between guests and the host kernel unchanged.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::core::{FwdScratch, SwitchCore};
use crate::counters::{DropReason, PortCounters};
use crate::error::{Error, Result};
use crate::frame::{Frame, HEADROOM};
use crate::mac_table::PortId;
use crate::vnet_hdr::{VnetHdr, HDR_LEN_MRG};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
pub(crate) const TUNGETIFF: libc::c_ulong = 0x8004_54d2;
pub(crate) const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
pub(crate) const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUN_F_CSUM: libc::c_ulong = 0x01;
const TUN_F_TSO4: libc::c_ulong = 0x02;
const TUN_F_TSO6: libc::c_ulong = 0x04;
const TUN_F_TSO_ECN: libc::c_ulong = 0x08;
const TAP_BATCH: usize = 32;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

fn ioctl(fd: RawFd, req: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the tun ioctls used here take an integer or a pointer to an IfReq that
    // outlives the call.
    if unsafe { libc::ioctl(fd, req as _, arg) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens (creating if needed) tap `name` with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, a 12-byte
/// header and checksum/TSO offloads enabled.
pub fn open_tap(name: &str) -> Result<File> {
    let err = |source| Error::Tap {
        name: name.to_string(),
        source,
    };
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface names are 1 to 15 characters",
        )));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map_err(err)?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    ioctl(
        file.as_raw_fd(),
        TUNSETIFF,
        &mut req as *mut IfReq as libc::c_ulong,
    )
    .map_err(err)?;
    configure(&file).map_err(err)?;
    Ok(file)
}

/// Takes over a tap fd opened by someone else (virtnetd, which has the privilege to create
/// taps): it must be a tap with `IFF_NO_PI|IFF_VNET_HDR`. Sets the header size, offloads and
/// non-blocking mode as [`open_tap`] does, and returns the file with the tap's name. Needs no
/// capability.
pub fn adopt_tap(fd: OwnedFd) -> Result<(File, String)> {
    let raw = fd.as_raw_fd();
    let err = |source| Error::Tap {
        name: format!("fd {raw}"),
        source,
    };
    let file = File::from(fd);
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    ioctl(raw, TUNGETIFF, &mut req as *mut IfReq as libc::c_ulong).map_err(err)?;
    let want = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if req.flags & want != want {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "not a tap opened with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR (flags {:#x})",
                req.flags
            ),
        )));
    }
    let len = req
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(req.name.len());
    let name = String::from_utf8_lossy(&req.name[..len]).into_owned();
    // SAFETY: fcntl on an fd `file` owns.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    configure(&file).map_err(|source| Error::Tap {
        name: name.clone(),
        source,
    })?;
    Ok((file, name))
}

/// The 12-byte virtio-net header and checksum/TSO offloads on an attached tap fd.
fn configure(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    let sz: libc::c_int = HDR_LEN_MRG as libc::c_int;
    ioctl(
        fd,
        TUNSETVNETHDRSZ,
        &sz as *const libc::c_int as libc::c_ulong,
    )?;
    ioctl(
        fd,
        TUNSETOFFLOAD,
        TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
    )
}

/// The uplink port.
pub struct TapPort {
    /// Tap interface name.
    pub name: String,
    file: Arc<File>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl TapPort {
    /// Starts the reader thread of the open tap `file` (named `name`) as port `id` of `core`.
    pub fn start(
        core: Arc<SwitchCore>,
        id: PortId,
        counters: Arc<PortCounters>,
        name: &str,
        file: File,
    ) -> Result<Arc<TapPort>> {
        let file = Arc::new(file);
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (file.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("vsw-tap-{name}"))
            .spawn(move || reader(core, id, counters, f, s))
            .map_err(|source| Error::Thread {
                name: name.to_string(),
                source,
            })?;
        Ok(Arc::new(TapPort {
            name: name.to_string(),
            file,
            stop,
            thread: Mutex::new(Some(handle)),
        }))
    }

    /// Writes frames to the host through the tap (the kernel segments GSO frames).
    pub fn deliver(&self, counters: &PortCounters, frames: &mut [Frame], idx: &[usize]) {
        let (mut packets, mut bytes) = (0u64, 0u64);
        for &i in idx {
            let f = &frames[i];
            let mut hdr = [0u8; HDR_LEN_MRG];
            f.hdr.write(&mut hdr, 0);
            let iov = [
                libc::iovec {
                    iov_base: hdr.as_ptr() as *mut libc::c_void,
                    iov_len: hdr.len(),
                },
                libc::iovec {
                    iov_base: f.bytes().as_ptr() as *mut libc::c_void,
                    iov_len: f.len,
                },
            ];
            // SAFETY: both iovecs point into live buffers of the given lengths.
            let r = unsafe { libc::writev(self.file.as_raw_fd(), iov.as_ptr(), 2) };
            if r < 0 {
                counters.drop_frame(DropReason::TapError);
            } else {
                packets += 1;
                bytes += f.len as u64;
            }
        }
        counters.add_tx(packets, bytes);
    }

    /// Stops the reader thread and closes the tap.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

fn reader(
    core: Arc<SwitchCore>,
    id: PortId,
    counters: Arc<PortCounters>,
    file: Arc<File>,
    stop: Arc<AtomicBool>,
) {
    let fd = file.as_raw_fd();
    let mut frames: Vec<Frame> = (0..TAP_BATCH).map(|_| Frame::full()).collect();
    let mut fwd = FwdScratch::default();
    while !stop.load(Ordering::Acquire) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd is valid for the call.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        let mut n = 0;
        let mut bytes = 0u64;
        while n < TAP_BATCH {
            let mut hdr = [0u8; HDR_LEN_MRG];
            let f = &mut frames[n];
            let iov = [
                libc::iovec {
                    iov_base: hdr.as_mut_ptr() as *mut libc::c_void,
                    iov_len: hdr.len(),
                },
                libc::iovec {
                    iov_base: f.data[HEADROOM..].as_mut_ptr() as *mut libc::c_void,
                    iov_len: f.data.len() - HEADROOM,
                },
            ];
            // SAFETY: both iovecs point into live, writable buffers of the given lengths.
            let r = unsafe { libc::readv(fd, iov.as_ptr(), 2) };
            if r < 0 {
                break;
            }
            let r = r as usize;
            if r < HDR_LEN_MRG {
                counters.drop_frame(DropReason::ShortFrame);
                continue;
            }
            f.len = r - HDR_LEN_MRG;
            f.hdr = VnetHdr::parse(&hdr);
            match f.validate(65535) {
                Ok(()) => {
                    bytes += f.len as u64;
                    n += 1;
                }
                Err(reason) => counters.drop_frame(reason),
            }
        }
        if n > 0 {
            counters.add_rx(n as u64, bytes);
            core.forward(id, 0, &mut frames[..n], &mut fwd);
        }
    }
}
