//! A client for the test guest's serial console (a unix socket chardev QEMU listens on:
//! `<serial type='unix'><source mode='bind' path='...'/></serial>`, i.e. `server=on,wait=off`).
//!
//! The guest protocol (guest/README.md): the guest prints `virtnet-guest: ...` lines (`init
//! start`, `ready`, `nic up IFNAME MAC ADDRS`, `nic down ...`); after `ready`, each line sent is
//! run by a shell and followed by `virtnet-guest: done rc=N`.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::time::Instant;

/// Prefix of the guest's protocol lines.
pub const PREFIX: &str = "virtnet-guest: ";

/// A connected serial console. Every line received is kept ([`SerialConsole::lines`]), so a
/// wait also finds lines that arrived before it started.
#[derive(Debug)]
pub struct SerialConsole {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    partial: Vec<u8>,
    lines: Vec<String>,
    closed: bool,
}

impl SerialConsole {
    /// Connects to the socket, retrying until it accepts (QEMU creates it as it starts) or
    /// `timeout` passes. Connect before the guest runs (concurrently with the VM start, whose
    /// CPUs stay paused until `cont`) to see its first lines: QEMU drops output while no client
    /// is connected.
    pub async fn connect(path: impl AsRef<Path>, timeout: Duration) -> io::Result<SerialConsole> {
        let path = path.as_ref();
        let deadline = Instant::now() + timeout;
        loop {
            match UnixStream::connect(path).await {
                Ok(s) => {
                    let (r, w) = s.into_split();
                    return Ok(SerialConsole {
                        reader: BufReader::new(r),
                        writer: w,
                        partial: Vec::new(),
                        lines: Vec::new(),
                        closed: false,
                    });
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "connect to serial {}: {e} (waited {timeout:?})",
                            path.display()
                        ),
                    ))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    /// Every line received so far (without line endings).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Reads one more line into the history; `Ok(false)` at end of stream.
    async fn read_line(&mut self) -> io::Result<bool> {
        if self.closed {
            return Ok(false);
        }
        // read_until keeps partial data in `partial` if cancelled: safe in a timeout.
        let n = self.reader.read_until(b'\n', &mut self.partial).await?;
        if n == 0 && self.partial.is_empty() {
            self.closed = true;
            return Ok(false);
        }
        if n == 0 || self.partial.ends_with(b"\n") {
            let raw = std::mem::take(&mut self.partial);
            let line = String::from_utf8_lossy(&raw)
                .trim_end_matches(['\r', '\n'])
                .trim_start_matches('\r')
                .to_string();
            self.lines.push(line);
        }
        Ok(true)
    }

    /// Waits for a line, from index `from` of the history on, that `pred` accepts; returns its
    /// index and text.
    pub async fn wait_line_from(
        &mut self,
        from: usize,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> io::Result<(usize, String)> {
        let deadline = Instant::now() + timeout;
        let mut next = from;
        loop {
            while next < self.lines.len() {
                if pred(&self.lines[next]) {
                    return Ok((next, self.lines[next].clone()));
                }
                next += 1;
            }
            let got = tokio::time::timeout_at(deadline, self.read_line()).await;
            match got {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    return Err(self.fail(io::ErrorKind::UnexpectedEof, "the console closed"))
                }
                Ok(Err(e)) => return Err(self.fail(e.kind(), &format!("read error {e}"))),
                Err(_) => {
                    return Err(self.fail(
                        io::ErrorKind::TimedOut,
                        &format!("no matching line within {timeout:?}"),
                    ))
                }
            }
        }
    }

    /// Waits for a line (anywhere in the history) that `pred` accepts.
    pub async fn wait_line(
        &mut self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> io::Result<String> {
        self.wait_line_from(0, pred, timeout).await.map(|(_, l)| l)
    }

    /// Waits for the guest's first line of any kind.
    pub async fn first_line(&mut self, timeout: Duration) -> io::Result<String> {
        self.wait_line(|_| true, timeout).await
    }

    /// Waits for `virtnet-guest: ready` (the command loop is about to start).
    pub async fn wait_ready(&mut self, timeout: Duration) -> io::Result<()> {
        self.wait_line(|l| l == "virtnet-guest: ready", timeout)
            .await
            .map(|_| ())
    }

    /// Waits for `virtnet-guest: nic up IFNAME MAC ADDRS` for `mac`; returns the line.
    pub async fn wait_nic_up(&mut self, mac: &str, timeout: Duration) -> io::Result<String> {
        let mac = mac.to_ascii_lowercase();
        self.wait_line(
            |l| {
                l.strip_prefix("virtnet-guest: nic up ")
                    .is_some_and(|rest| rest.split_whitespace().nth(1) == Some(mac.as_str()))
            },
            timeout,
        )
        .await
    }

    /// Runs `command` in the guest (after `ready`) and returns its output lines (protocol
    /// lines printed meanwhile left out) and exit code.
    pub async fn run(&mut self, command: &str, timeout: Duration) -> io::Result<(String, i32)> {
        self.wait_ready(timeout).await?;
        self.run_now(command, timeout).await
    }

    /// [`SerialConsole::run`] without waiting for `ready` first: for a console connected
    /// after the guest printed it (a guest that moved here by live migration).
    pub async fn run_now(&mut self, command: &str, timeout: Duration) -> io::Result<(String, i32)> {
        let start = self.lines.len();
        self.writer
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        let (end, done) = self
            .wait_line_from(start, |l| l.starts_with("virtnet-guest: done rc="), timeout)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("running `{command}`: {e}")))?;
        let rc = done
            .trim_start_matches("virtnet-guest: done rc=")
            .trim()
            .parse()
            .unwrap_or(-1);
        let output = self.lines[start..end]
            .iter()
            .filter(|l| !l.starts_with(PREFIX))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        Ok((output, rc))
    }

    fn fail(&self, kind: io::ErrorKind, what: &str) -> io::Error {
        let tail: Vec<&str> = self
            .lines
            .iter()
            .rev()
            .take(15)
            .rev()
            .map(String::as_str)
            .collect();
        io::Error::new(
            kind,
            format!(
                "serial console: {what}; last lines:\n  {}",
                tail.join("\n  ")
            ),
        )
    }
}
