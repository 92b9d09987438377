//! The backing chain of a qcow2 image: the files QEMU opens (read-only) behind the one the
//! domain names, read from each image's header as libvirt's storage code does.
//!
//! qcow2 header (big-endian): magic `QFI\xfb` at 0, version at 4, `backing_file_offset` (u64)
//! at 8, `backing_file_size` (u32) at 16. A relative backing name is relative to the directory
//! of the image that names it. Names QEMU does not open as local files (`json:{...}`,
//! `nbd://...`) end the chain. A backing file that is not qcow2 itself (raw) ends it too.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Longest chain followed (a loop or a runaway chain stops here).
const MAX_DEPTH: usize = 16;
/// Longest backing file name (QEMU's own limit is 1023 bytes).
const MAX_NAME: u32 = 1023;

/// The backing files of `image`, nearest first; empty for a raw image or one without a
/// backing file.
pub fn chain(image: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut cur = image.to_path_buf();
    while out.len() < MAX_DEPTH {
        let Some(next) = backing_of(&cur)? else {
            break;
        };
        if out.contains(&next) || next == image {
            break;
        }
        out.push(next.clone());
        cur = next;
    }
    Ok(out)
}

/// The backing file `image` names, if it is a qcow2 image that names one.
fn backing_of(image: &Path) -> io::Result<Option<PathBuf>> {
    let mut f = match File::open(image) {
        Ok(f) => f,
        // A backing file that is not there: QEMU will say so; nothing to grant.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; 20];
    if f.read_exact(&mut head).is_err() || &head[..4] != b"QFI\xfb" {
        return Ok(None);
    }
    let offset = u64::from_be_bytes(head[8..16].try_into().expect("8 bytes"));
    let size = u32::from_be_bytes(head[16..20].try_into().expect("4 bytes"));
    if offset == 0 || size == 0 || size > MAX_NAME {
        return Ok(None);
    }
    let mut name = vec![0u8; size as usize];
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(&mut name)?;
    let name = String::from_utf8_lossy(&name).into_owned();
    if name.starts_with("json:") || name.contains("://") {
        return Ok(None);
    }
    let p = PathBuf::from(&name);
    Ok(Some(if p.is_absolute() {
        p
    } else {
        image.parent().unwrap_or(Path::new("/")).join(p)
    }))
}

/// Writes a minimal qcow2 header naming `backing` (what `qemu-img create -b` writes, as far
/// as the chain is concerned).
#[cfg(test)]
pub(crate) fn write_test_qcow2(path: &Path, backing: Option<&str>) {
    let mut h = vec![0u8; 512];
    h[..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    if let Some(b) = backing {
        h[8..16].copy_from_slice(&200u64.to_be_bytes());
        h[16..20].copy_from_slice(&(b.len() as u32).to_be_bytes());
        h[200..200 + b.len()].copy_from_slice(b.as_bytes());
    }
    std::fs::write(path, h).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qcow2(path: &Path, backing: Option<&str>) {
        write_test_qcow2(path, backing)
    }

    #[test]
    fn follows_relative_and_absolute_names_and_stops_at_raw_and_loops() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("base.raw"), vec![0u8; 64]).unwrap();
        qcow2(&d.join("mid.qcow2"), Some("base.raw"));
        let mid = d.join("mid.qcow2");
        qcow2(&d.join("top.qcow2"), Some(mid.to_str().unwrap()));
        assert_eq!(
            chain(&d.join("top.qcow2")).unwrap(),
            vec![mid, d.join("base.raw")]
        );
        assert!(chain(&d.join("base.raw")).unwrap().is_empty());
        qcow2(&d.join("alone.qcow2"), None);
        assert!(chain(&d.join("alone.qcow2")).unwrap().is_empty());
        qcow2(&d.join("nbd.qcow2"), Some("nbd://host/x"));
        assert!(chain(&d.join("nbd.qcow2")).unwrap().is_empty());
        qcow2(&d.join("a.qcow2"), Some("b.qcow2"));
        qcow2(&d.join("b.qcow2"), Some("a.qcow2"));
        assert_eq!(
            chain(&d.join("a.qcow2")).unwrap(),
            vec![d.join("b.qcow2")],
            "a loop ends"
        );
    }

    /// The header `qemu-img` writes, when it is installed.
    #[test]
    fn reads_what_qemu_img_writes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let base = d.join("base.qcow2");
        let top = d.join("top.qcow2");
        if !virtnet_testkit::require(&[virtnet_testkit::Need::Binary("qemu-img")]) {
            return;
        }
        let run = |args: &[&str]| std::process::Command::new("qemu-img").args(args).status();
        let s = run(&["create", "-q", "-f", "qcow2", base.to_str().unwrap(), "1M"]).unwrap();
        assert!(s.success());
        let s = run(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            "base.qcow2",
            top.to_str().unwrap(),
        ])
        .unwrap();
        assert!(s.success());
        assert_eq!(chain(&top).unwrap(), vec![base]);
    }
}
