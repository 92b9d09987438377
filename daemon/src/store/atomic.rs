//! Crash-safe file replacement: write a temp file in the same directory, fsync it, rename it
//! over the target, fsync the directory. A crash at any point leaves either the old file or the
//! new one, never a mix; at worst a stray temp file, which [`is_temp_name`] recognises so the
//! loader can ignore and remove it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Marker inside every temp file name: `.NAME.tmp-PID-N`.
const TEMP_MARK: &str = ".tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether a directory entry is one of our temp files (left behind by a crash).
pub fn is_temp_name(file_name: &str) -> bool {
    file_name.starts_with('.') && file_name.contains(TEMP_MARK)
}

/// Replaces `path` with `bytes` atomically; the file gets permission bits `mode`.
///
/// On error the target is unchanged and the temp file is removed. The error says which step
/// failed (`write`, `fsync`, `rename`) and on which path.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), (&'static str, io::Error)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(("name", io::Error::from(io::ErrorKind::InvalidInput)))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}{TEMP_MARK}{}-{n}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| ("create temp file for", e))?;
        f.write_all(bytes).map_err(|e| ("write", e))?;
        f.sync_all().map_err(|e| ("fsync", e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| ("rename temp file over", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir).map_err(|e| ("fsync the directory of", e))
}

/// Removes `path` (missing is fine) and makes the removal durable.
pub fn remove_durable(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsync on a directory, so a rename or unlink in it survives a crash.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.xml");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.xml")]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn failed_write_leaves_old_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.xml");
        write_atomic(&p, b"old", 0o600).unwrap();
        // A directory in the way of the rename: the step fails, the old content stays... here
        // the target itself is fine but the directory is read-only for the temp file.
        let sub = d.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let target = sub.join("b.xml");
        fs::create_dir(&target).unwrap(); // rename(file, non-empty-or-dir) fails
        fs::write(target.join("keep"), b"x").unwrap();
        let err = write_atomic(&target, b"new", 0o600).unwrap_err();
        assert_eq!(err.0, "rename temp file over");
        let left: Vec<_> = fs::read_dir(&sub)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("b.xml")],
            "temp file removed"
        );
        assert_eq!(fs::read(&p).unwrap(), b"old");
    }

    #[test]
    fn temp_names() {
        assert!(is_temp_name(".a.xml.tmp-12-0"));
        assert!(!is_temp_name("a.xml"));
        assert!(!is_temp_name(".hidden"));
    }
}
