//! A script's output: one pipe for stdout and stderr, read line by line on a thread, written
//! to the VM's log with a prefix naming the NIC and the script.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc::{self, Receiver};

use super::types::ScriptRun;

/// Longest line kept (longer lines are cut).
const MAX_LINE: u64 = 4096;

/// A pipe, both ends close-on-exec (the child gets dup2'ed copies).
pub(super) fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are open fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads lines from `rd` on a thread until EOF; the receiver ends when the pipe does.
pub(super) fn read_lines(rd: OwnedFd) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(File::from(rd));
        loop {
            let mut line = Vec::new();
            match r.by_ref().take(MAX_LINE).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// The script's lines in the VM's log, and the last one for the error.
#[derive(Debug)]
pub(super) struct ScriptLog {
    file: Option<File>,
    prefix: String,
    /// The last non-empty line.
    pub(super) last: String,
}

impl ScriptLog {
    pub(super) fn open(run: &ScriptRun) -> Self {
        let file = run.log.as_ref().and_then(|p| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(p)
                .ok()
        });
        ScriptLog {
            file,
            prefix: format!("{} {} {}", run.nic, run.kind, run.path.display()),
            last: String::new(),
        }
    }

    pub(super) fn line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end();
        if !text.trim().is_empty() {
            self.last = text.to_string();
        }
        self.write(&format!("{}: {text}", self.prefix));
    }

    pub(super) fn note(&mut self, what: &str) {
        self.write(&format!("{}: -- {what}", self.prefix));
    }

    fn write(&mut self, line: &str) {
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{line}");
        }
    }
}
