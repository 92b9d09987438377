//! Raw `/dev/net/tun` and macvtap-queue ioctls.

use std::ffi::CStr;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Layer-2 tap (`IFF_TAP`).
pub const IFF_TAP: u16 = 0x0002;
/// No packet-information header (`IFF_NO_PI`).
pub const IFF_NO_PI: u16 = 0x1000;
/// virtio-net header on every packet (`IFF_VNET_HDR`).
pub const IFF_VNET_HDR: u16 = 0x4000;
/// Several queues, one fd each (`IFF_MULTI_QUEUE`).
pub const IFF_MULTI_QUEUE: u16 = 0x0100;
/// Fail with EBUSY if the name exists instead of attaching to it (`IFF_TUN_EXCL`).
pub const IFF_TUN_EXCL: u16 = 0x8000;

const TUNSETIFF: u64 = 0x4004_54ca; // _IOW('T', 202, int)
const TUNGETIFF: u64 = 0x8004_54d2; // _IOR('T', 210, unsigned int)

/// `struct ifreq` restricted to the fields the tun ioctls use.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: u16,
    _pad: [u8; 22],
}

/// Where a tun operation failed.
#[derive(Debug)]
pub(crate) enum TunError {
    /// Opening the character device failed.
    Open(io::Error),
    /// The TUNSETIFF ioctl failed (errno tells why: EBUSY = exists/in use, EINVAL = flags).
    SetIff(io::Error),
}

impl TunError {
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            TunError::Open(e) | TunError::SetIff(e) => e.raw_os_error(),
        }
    }
}

/// Opens a queue of the tap `name` on `/dev/net/tun` with `flags` (creating it if needed,
/// unless it exists and `IFF_TUN_EXCL` is set). Returns the fd and the kernel's name.
pub(crate) fn open_tun(name: &str, flags: u16) -> Result<(OwnedFd, String), TunError> {
    let fd = open_rw(Path::new("/dev/net/tun")).map_err(TunError::Open)?;
    let name = set_iff(fd.as_fd(), name, flags).map_err(TunError::SetIff)?;
    Ok((fd, name))
}

/// Opens tap `name` (`IFF_TAP|IFF_NO_PI|IFF_VNET_HDR`, created non-persistent when missing,
/// else attached to) for a process that gets the fd and no privilege: the switch's uplink.
pub fn open_tap_fd(name: &str) -> io::Result<OwnedFd> {
    open_tun(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
        .map(|(fd, _)| fd)
        .map_err(|e| match e {
            TunError::Open(e) | TunError::SetIff(e) => e,
        })
}

/// Opens a character device read-write, close-on-exec.
pub(crate) fn open_rw(path: &Path) -> io::Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    Ok(f.into())
}

/// TUNSETIFF on an open tun/macvtap fd; returns the interface name the kernel reports.
pub(crate) fn set_iff(fd: BorrowedFd<'_>, name: &str, flags: u16) -> io::Result<String> {
    let mut req = IfReq {
        name: [0; 16],
        flags,
        _pad: [0; 22],
    };
    let n = name.as_bytes();
    if n.len() > 15 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    req.name[..n.len()].copy_from_slice(n);
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `IfReq` lays out (40 bytes).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ifreq_name(&req))
}

/// TUNGETIFF: the interface name and flags of a tap (or macvtap queue) fd.
pub fn tun_fd_info(fd: BorrowedFd<'_>) -> io::Result<(String, u16)> {
    let mut req = IfReq {
        name: [0; 16],
        flags: 0,
        _pad: [0; 22],
    };
    // SAFETY: TUNGETIFF fills a `struct ifreq`, which `IfReq` lays out (40 bytes).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNGETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((ifreq_name(&req), req.flags))
}

fn ifreq_name(req: &IfReq) -> String {
    CStr::from_bytes_until_nul(&req.name)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(&req.name).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ifreq_is_40_bytes() {
        assert_eq!(std::mem::size_of::<super::IfReq>(), 40);
    }
}
