//! The switch confined as virtnetd and testkit run it (as root): `virtnet-switch`, no
//! capability, NoNewPrivs, seccomp; and its sockets reachable for a QEMU running as
//! `virtnet-qemu`, both ways, while its control socket is not.
//!
//! The "QEMU" is a child that switches to `virtnet-qemu` (std's `uid`/`gid`, applied before
//! the `pre_exec` hook) and then, inside the hook, makes the socket calls QEMU would make.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use virtnet_testkit::{assert_confined, require, Need, VSwitch, VsPort};

fn qemu_user() -> virtnet_host::SystemUser {
    virtnet_host::ensure_system_user(virtnet_host::QEMU_USER, "virtnet QEMU").unwrap()
}

fn sockaddr(path: &Path) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len());
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    (
        addr,
        std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
    )
}

/// Runs `call(addr)` as `virtnet-qemu` in a child (umask 002, as QEMU runs); returns its exit
/// code: 0 on success, else the errno.
fn as_qemu(path: &Path, call: fn(&libc::sockaddr_un, libc::socklen_t) -> i32) -> i32 {
    let q = qemu_user();
    let (addr, len) = sockaddr(path);
    let mut cmd = Command::new("/bin/true");
    cmd.uid(q.uid).gid(q.gid);
    // SAFETY: the hook makes plain system calls on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(0o002);
            libc::_exit(call(&addr, len))
        });
    }
    cmd.status().unwrap().code().expect("exited")
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

/// connect(2) to the socket; 0 or the errno.
fn connect(addr: &libc::sockaddr_un, len: libc::socklen_t) -> i32 {
    // SAFETY: socket/connect with a valid address of `len` bytes.
    unsafe {
        let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        if libc::connect(s, (addr as *const libc::sockaddr_un).cast(), len) == 0 {
            0
        } else {
            errno()
        }
    }
}

/// Listens on the socket (as QEMU does for `mode='server'`) and waits up to 20 s for the
/// switch to connect; 0 or the errno (ETIMEDOUT when nobody came).
fn listen_and_accept(addr: &libc::sockaddr_un, len: libc::socklen_t) -> i32 {
    // SAFETY: socket/bind/listen/poll/accept on our own fd with a valid address.
    unsafe {
        let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        if libc::bind(s, (addr as *const libc::sockaddr_un).cast(), len) != 0
            || libc::listen(s, 1) != 0
        {
            return errno();
        }
        let mut pfd = libc::pollfd {
            fd: s,
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut pfd, 1, 20_000) != 1 {
            return libc::ETIMEDOUT;
        }
        if libc::accept(s, std::ptr::null_mut(), std::ptr::null_mut()) < 0 {
            return errno();
        }
        0
    }
}

#[test]
fn confined_switch_and_qemu_user_reach_each_others_sockets_but_not_the_control_socket() {
    if !require(&[Need::Root]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served.sock");
    let qemu_listens = dir.path().join("qemu.sock");
    let sw = VSwitch::start(
        dir.path(),
        &[
            VsPort::new("s", &served, "server"),
            VsPort::new("c", &qemu_listens, "client"),
        ],
        None,
    );
    let c = assert_confined(sw.pid(), "the testkit switch");
    let q = qemu_user();
    assert_eq!(c.groups, vec![q.gid], "QEMU's group only: {c:?}");
    // Every thread (control, pollers, port threads) runs under the filter.
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{}/task", sw.pid()))
        .unwrap()
        .flatten()
        .collect();
    assert!(tasks.len() > 1, "the switch runs threads");
    let mut checked = 0;
    for t in tasks {
        // A short-lived thread may have exited since the listing.
        let status = match std::fs::read_to_string(t.path().join("status")) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", t.path().display()),
        };
        assert!(status.contains("\nSeccomp:\t2\n"), "{status}");
        checked += 1;
    }
    assert!(checked > 1, "the switch's threads were checked");

    // The switch's directory and its sockets.
    let meta = std::fs::metadata(dir.path()).unwrap();
    assert_eq!((meta.gid(), meta.mode() & 0o7777), (q.gid, 0o2770));
    let served_meta = std::fs::metadata(&served).unwrap();
    assert_eq!(served_meta.gid(), q.gid);
    assert_eq!(served_meta.mode() & 0o777, 0o770);

    // QEMU (as virtnet-qemu) connects to the socket the switch listens on.
    assert_eq!(
        as_qemu(&served, connect),
        0,
        "QEMU -> switch's server socket"
    );
    // The switch connects to the socket QEMU listens on.
    assert_eq!(
        as_qemu(&qemu_listens, listen_and_accept),
        0,
        "switch -> QEMU's listening socket"
    );
    // QEMU cannot drive the switch.
    let control = dir.path().join("vswitch-control.sock");
    assert_eq!(as_qemu(&control, connect), libc::EACCES, "QEMU -> control");
    // Root (virtnetd, this test) can.
    assert_eq!(sw.port("s")["name"], "s");
    // Opening a tap (add-uplink) is refused with EPERM by the filter; the switch lives on.
    let mut s = UnixStream::connect(&control).unwrap();
    writeln!(s, r#"{{"cmd":"add-uplink","name":"u","tap":"vswx0"}}"#).unwrap();
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply).unwrap();
    assert!(
        reply.contains(r#""ok":false"#) && reply.contains("Operation not permitted"),
        "{reply}"
    );
    assert_eq!(sw.port("s")["name"], "s");
    // SIGTERM: a clean shutdown under the filter (exit 0, not SIGSYS), its sockets removed.
    let st = sw.stop().expect("reaped");
    assert!(st.success(), "{st:?}");
    assert!(!served.exists() && !control.exists());
}
