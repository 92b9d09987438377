//! The per-VM log file QEMU's stdout and stderr go to.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{QemuError, Result};

/// How much of the log's end goes into error messages.
const TAIL_BYTES: u64 = 4096;
const TAIL_LINES: usize = 20;

/// Opens (appending, creating with mode 0600) the log, writes a header line for this start,
/// and returns the file plus the offset where this QEMU's own output begins.
pub(crate) fn open_for_start(path: &Path, header: &str) -> Result<(File, u64)> {
    let err = |source| QemuError::LogFile {
        path: path.to_path_buf(),
        source,
    };
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    writeln!(f, "{header}").map_err(err)?;
    let start = f.seek(SeekFrom::End(0)).map_err(err)?;
    Ok((f, start))
}

/// The last lines QEMU wrote to the log since `start` (lossy UTF-8), or a note saying why
/// there are none.
pub(crate) fn tail(path: &Path, start: u64) -> String {
    let read = || -> std::io::Result<Vec<u8>> {
        let mut f = File::open(path)?;
        let end = f.seek(SeekFrom::End(0))?;
        let from = start.max(end.saturating_sub(TAIL_BYTES));
        f.seek(SeekFrom::Start(from))?;
        let mut buf = Vec::new();
        f.take(end - from).read_to_end(&mut buf)?;
        Ok(buf)
    };
    match read() {
        Ok(buf) if buf.iter().all(u8::is_ascii_whitespace) => "(QEMU wrote nothing)".into(),
        Ok(buf) => {
            let text = String::from_utf8_lossy(&buf);
            let lines: Vec<&str> = text.trim_end().lines().collect();
            lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read the log: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_shows_only_this_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vm.log");
        std::fs::write(&p, "old run\n").unwrap();
        let (mut f, start) = open_for_start(&p, "== start ==").unwrap();
        assert_eq!(tail(&p, start), "(QEMU wrote nothing)");
        for i in 0..30 {
            writeln!(f, "line {i}").unwrap();
        }
        let t = tail(&p, start);
        assert!(t.starts_with("line 10\n"), "{t}");
        assert!(t.ends_with("line 29"));
        assert!(!t.contains("old run"));
    }
}
