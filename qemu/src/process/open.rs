//! Opening, on QEMU's behalf, what it would otherwise create by name: a listening unix
//! socket (the QMP monitor, a chardev with `<source mode='bind'>`) and a file it writes (a
//! file chardev, a chardev log). The caller passes the fd (inherited at start, `getfd` or
//! `add-fd` over QMP), so a confined QEMU needs no write access to any directory.

use std::fs::{OpenOptions, Permissions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;

use super::start::remove_stale_socket;
use crate::argv::HostOpen;
use crate::error::{QemuError, Result};

/// Binds a unix socket at `path` (a stale socket file there is removed first, as QEMU itself
/// does), makes it mode 0600 and listens (backlog `SOMAXCONN`). Connections made before QEMU
/// accepts wait in the backlog, so a client can connect as soon as this returns.
pub fn listen_unix(path: &Path) -> Result<OwnedFd> {
    let err = |source| QemuError::HostOpen {
        what: "listen on the unix socket",
        path: path.to_path_buf(),
        source,
    };
    remove_stale_socket(path);
    let listener = UnixListener::bind(path).map_err(err)?;
    if let Err(e) = std::fs::set_permissions(path, Permissions::from_mode(0o600)) {
        let _ = std::fs::remove_file(path);
        return Err(err(e));
    }
    Ok(listener.into())
}

/// Opens `path` write-only for QEMU, created with mode 0600 when missing, appended to
/// (`append`) or truncated, as QEMU's own file chardev would.
pub fn open_for_writing(path: &Path, append: bool) -> Result<OwnedFd> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).mode(0o600);
    if append {
        o.append(true);
    } else {
        o.truncate(true);
    }
    o.open(path)
        .map(OwnedFd::from)
        .map_err(|source| QemuError::HostOpen {
            what: "open for writing",
            path: path.to_path_buf(),
            source,
        })
}

/// Opens what `open` says.
pub fn open_host(open: &HostOpen) -> Result<OwnedFd> {
    match open {
        HostOpen::ListenUnix { path } => listen_unix(path),
        HostOpen::WriteFile { path, append } => open_for_writing(path, *append),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use super::*;

    #[test]
    fn listens_at_once_with_mode_0600_over_a_stale_socket() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sock");
        drop(UnixListener::bind(&p).unwrap()); // a stale socket file
        let fd = listen_unix(&p).unwrap();
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.mode() & 0o777, 0o600);
        // The backlog holds a connection before anyone accepts.
        std::os::unix::net::UnixStream::connect(&p).unwrap();
        drop(fd);
        // Not a socket: left alone, and the bind fails.
        let f = dir.path().join("file");
        std::fs::write(&f, "x").unwrap();
        assert!(matches!(listen_unix(&f), Err(QemuError::HostOpen { .. })));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "x");
    }

    #[test]
    fn opens_files_appending_or_truncating() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.log");
        std::fs::write(&p, "old\n").unwrap();
        let w = |append| {
            let fd = open_for_writing(&p, append).unwrap();
            std::io::Write::write_all(&mut std::fs::File::from(fd), b"new\n").unwrap();
        };
        w(true);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old\nnew\n");
        w(false);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new\n");
        let q = dir.path().join("created.log");
        drop(open_for_writing(&q, true).unwrap());
        assert_eq!(std::fs::metadata(&q).unwrap().mode() & 0o777, 0o600);
        assert!(open_for_writing(&dir.path().join("no/such/dir"), true).is_err());
    }
}
