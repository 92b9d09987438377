//! Thin wrappers over the mount and identity system calls the confinement makes between
//! `fork` and `exec`. Each is one async-signal-safe system call on C strings prepared before
//! the fork; none allocates. Errors carry `errno` only (the caller says which step failed).

use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;
use std::ptr;

/// `-1` → the current `errno`.
pub(super) fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `mount(2)` with an optional source, file system type and data.
pub(super) fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |s: Option<&CStr>| s.map_or(ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is a NUL-terminated string or null, valid for the call.
    let r = unsafe { libc::mount(p(source), target.as_ptr(), p(fstype), flags, p(data).cast()) };
    check(r.into()).map(drop)
}

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC [| AT_RECURSIVE])`: a
/// detached copy of the mount at `path`, to attach elsewhere with [`move_mount`].
pub(super) fn clone_tree(path: &CStr, recursive: bool) -> io::Result<RawFd> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: raw syscall with a valid NUL-terminated path.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    check(r).map(|fd| fd as RawFd)
}

/// `move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`, then closes `fd`.
pub(super) fn attach_tree(fd: RawFd, target: &CStr) -> io::Result<()> {
    // SAFETY: raw syscall; "" and `target` are NUL-terminated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    close(fd);
    check(r).map(drop)
}

/// `close(2)`, ignoring errors (the fd is ours and open).
pub(super) fn close(fd: RawFd) {
    // SAFETY: closes an fd this module opened.
    unsafe { libc::close(fd) };
}

/// `mkdir(path, 0755)`; an existing directory is fine.
pub(super) fn mkdir(path: &CStr) -> io::Result<()> {
    // SAFETY: valid NUL-terminated path.
    let r = unsafe { libc::mkdir(path.as_ptr(), 0o755) };
    match check(r.into()) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r.map(drop),
    }
}

/// Creates an empty file at `path` (a mount point for a device node).
pub(super) fn touch(path: &CStr) -> io::Result<()> {
    // SAFETY: valid NUL-terminated path; the fd is closed at once.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o600 as libc::c_uint,
        )
    };
    let fd = check(fd.into())? as RawFd;
    close(fd);
    Ok(())
}

/// `symlink(target, link)`.
pub(super) fn symlink(target: &CStr, link: &CStr) -> io::Result<()> {
    // SAFETY: valid NUL-terminated strings.
    let r = unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) };
    check(r.into()).map(drop)
}

/// `chdir(path)`.
pub(super) fn chdir(path: &CStr) -> io::Result<()> {
    // SAFETY: valid NUL-terminated path.
    check(unsafe { libc::chdir(path.as_ptr()) }.into()).map(drop)
}

/// Writes `msg` to stderr (QEMU's log): `write(2)` only, for a failing step's name.
pub(super) fn note(msg: &[u8]) {
    // SAFETY: write from a valid buffer to fd 2; a short or failed write is ignored.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}
