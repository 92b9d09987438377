//! `virtnet console NAME`: the guest's serial console on this terminal, as `virsh console`.
//! virtnetd opens the console (a confined QEMU's pty is not ours to open) and relays its bytes
//! over the API connection, upgraded; this terminal is in raw mode meanwhile, restored on
//! every way out (Ctrl+], the console closing, an error, SIGTERM/SIGHUP/SIGINT, a panic).

use std::io::Write;
use std::os::fd::AsFd;

use rustix::termios::{self, OptionalActions, Termios};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::client::{encode, Client, ClientError};

/// Ctrl+]: leaves the console.
const ESCAPE: u8 = 0x1d;

/// The `Upgrade` protocol virtnetd speaks for consoles.
const PROTOCOL: &str = "virtnet-console";

fn local(message: String) -> ClientError {
    ClientError {
        kind: "console".into(),
        message,
    }
}

/// This terminal in raw mode; its settings are put back when dropped.
struct RawMode {
    stdin: std::io::Stdin,
    saved: Termios,
}

impl RawMode {
    /// Raw mode on standard input, if it is a terminal (`None` if not).
    fn enter() -> Result<Option<RawMode>, ClientError> {
        let stdin = std::io::stdin();
        if !termios::isatty(stdin.as_fd()) {
            return Ok(None);
        }
        let saved = termios::tcgetattr(stdin.as_fd())
            .map_err(|e| local(format!("cannot read the terminal's settings: {e}")))?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw)
            .map_err(|e| local(format!("cannot put the terminal in raw mode: {e}")))?;
        Ok(Some(RawMode { stdin, saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.stdin.as_fd(), OptionalActions::Now, &self.saved);
    }
}

/// Runs the command.
pub async fn run(
    client: &Client,
    name: &str,
    devname: Option<&str>,
    force: bool,
) -> Result<(), ClientError> {
    let mut query = Vec::new();
    if let Some(d) = devname {
        query.push(format!("devname={}", encode(d)));
    }
    if force {
        query.push("force=true".to_string());
    }
    let mut path = format!("/v1/domains/{}/console", encode(name));
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let io = client.upgrade(&path, PROTOCOL).await?;
    // Caught before the terminal goes raw: no signal may end us with it raw.
    let signals = Signals::new()?;
    println!("Connected to domain '{name}'\nEscape character is ^]");
    let raw = RawMode::enter()?;
    let result = relay(io, signals).await;
    drop(raw);
    println!();
    result
}

/// SIGTERM, SIGHUP and SIGINT, caught: each ends the console the normal way.
struct Signals {
    term: Signal,
    hup: Signal,
    int: Signal,
}

impl Signals {
    fn new() -> Result<Signals, ClientError> {
        let sig =
            |k: SignalKind| signal(k).map_err(|e| local(format!("cannot handle signals: {e}")));
        Ok(Signals {
            term: sig(SignalKind::terminate())?,
            hup: sig(SignalKind::hangup())?,
            int: sig(SignalKind::interrupt())?,
        })
    }
}

/// Console → stdout, stdin → console, until Ctrl+], either side closes or a signal comes.
async fn relay(
    io: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    mut s: Signals,
) -> Result<(), ClientError> {
    // A thread, not tokio's stdin: its blocked read must not hold the runtime at exit.
    let (tx, mut keys) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            match std::io::Read::read(&mut std::io::stdin().lock(), &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let (mut from, mut to) = tokio::io::split(io);
    let mut buf = [0u8; 4096];
    let lost = |e: std::io::Error| local(format!("the console connection failed: {e}"));
    loop {
        tokio::select! {
            n = from.read(&mut buf) => {
                let n = n.map_err(lost)?;
                if n == 0 {
                    return Ok(());
                }
                let mut out = std::io::stdout().lock();
                out.write_all(&buf[..n])
                    .and_then(|()| out.flush())
                    .map_err(|e| local(format!("cannot write to the terminal: {e}")))?;
            }
            k = keys.recv() => {
                let Some(k) = k else { return Ok(()) };
                let (send, leave) = match k.iter().position(|b| *b == ESCAPE) {
                    Some(i) => (&k[..i], true),
                    None => (&k[..], false),
                };
                to.write_all(send).await.map_err(lost)?;
                if leave {
                    let _ = to.shutdown().await;
                    return Ok(());
                }
            }
            _ = s.term.recv() => return Ok(()),
            _ = s.hup.recv() => return Ok(()),
            _ = s.int.recv() => return Ok(()),
        }
    }
}
