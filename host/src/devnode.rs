//! Character device nodes for macvtap queues (`/dev/tapN`).
//!
//! devtmpfs normally creates `/dev/tapN` (N = ifindex). If it is missing (no devtmpfs, e.g.
//! in a container) we mknod it; if a node of that name is a different device (stale node,
//! or a macvtap with the same ifindex in another network namespace) we mknod a private,
//! uniquely named node next to it. Nodes we make are removed right after opening: the
//! open fds don't need them.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{HostError, Result};

/// Parses sysfs's `major:minor`.
pub(crate) fn parse_dev(text: &str) -> Option<libc::dev_t> {
    let (maj, min) = text.trim().split_once(':')?;
    Some(libc::makedev(maj.parse().ok()?, min.parse().ok()?))
}

/// A node to open, and whether we made it (then the caller removes it after opening).
pub(crate) struct Node {
    pub path: PathBuf,
    pub made: bool,
}

/// Finds or makes a node for char device `dev` named `dir/tapN`.
pub(crate) fn node_for(dir: &Path, ifindex: u32, dev: libc::dev_t) -> Result<Node> {
    let path = dir.join(format!("tap{ifindex}"));
    if is_dev(&path, dev)? {
        return Ok(Node { path, made: false });
    }
    if !path.exists() {
        match mknod(&path, dev) {
            Ok(()) => return Ok(Node { path, made: true }),
            // devtmpfs made it meanwhile: use it if it is ours.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && is_dev(&path, dev)? => {
                return Ok(Node { path, made: false })
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(HostError::device(format!("mknod {}", path.display()), e)),
        }
    }
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let private = dir.join(format!(
        ".tap{ifindex}.virtnet.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    mknod(&private, dev)
        .map_err(|e| HostError::device(format!("mknod {}", private.display()), e))?;
    Ok(Node {
        path: private,
        made: true,
    })
}

/// True if `path` is the char device `dev`; false if missing or something else.
fn is_dev(path: &Path, dev: libc::dev_t) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(md) => Ok(md.file_type().is_char_device() && md.rdev() == dev),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(HostError::device(format!("stat {}", path.display()), e)),
    }
}

fn mknod(path: &Path, dev: libc::dev_t) -> io::Result<()> {
    let c =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: plain mknod(2) on a NUL-terminated path.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, dev) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_major_minor() {
        assert_eq!(parse_dev("246:1\n"), Some(libc::makedev(246, 1)));
        assert_eq!(parse_dev("246"), None);
        assert_eq!(parse_dev("a:1"), None);
    }

    #[test]
    fn a_foreign_file_with_the_name_gets_a_private_node_instead() {
        if !virtnet_testkit::require(&[virtnet_testkit::Need::Root]) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let null = fs::metadata("/dev/null").unwrap().rdev();
        fs::write(dir.path().join("tap7"), "stale").unwrap();
        let n = node_for(dir.path(), 7, null).unwrap();
        assert!(n.made);
        assert_ne!(n.path, dir.path().join("tap7"));
        assert!(is_dev(&n.path, null).unwrap());
        fs::remove_file(&n.path).unwrap();
        // Missing: made under the normal name; present and right: used as is.
        let n = node_for(dir.path(), 8, null).unwrap();
        assert!(n.made && n.path == dir.path().join("tap8"));
        let again = node_for(dir.path(), 8, null).unwrap();
        assert!(!again.made && again.path == n.path);
    }
}
