//! Character-device host resources that virtnetd opens itself and hands to QEMU as fds, so a
//! confined QEMU never has to create a socket or a file by name (libvirt does the same):
//! - a unix socket QEMU listens on (`<source mode='bind'>`): virtnetd binds and listens, QEMU
//!   gets the listening fd (`-chardev socket,id=X,fd=N,server=on,wait=off`);
//! - a file QEMU writes (`type='file'`, `<log file>`): virtnetd opens it, QEMU gets it in an
//!   fdset (`-add-fd set=S,fd=N,opaque=O` + `path=/dev/fdset/S`).
//!
//! vhost-user NICs are not in here: QEMU 7.2's `netdev vhost-user` refuses a chardev made from
//! an fd ("chardev ... does not support FD passing": only a `path=` socket gets the FD_PASS
//! feature), so QEMU keeps opening those sockets by path.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use virtnet_conf::devices::{Chardev, ChrSource};
use virtnet_conf::Domain;

/// What virtnetd opens for QEMU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "open", rename_all = "snake_case")]
pub enum HostOpen {
    /// Bind a unix socket at `path` (mode 0600; a stale socket there is removed first) and
    /// listen on it; QEMU gets the listening fd.
    ListenUnix {
        /// Socket path.
        path: PathBuf,
    },
    /// Open `path` write-only (created with mode 0600 when missing), appending or truncating.
    WriteFile {
        /// File path.
        path: PathBuf,
        /// `append='on'`: keep what is there; otherwise the file is truncated.
        append: bool,
    },
}

/// Which part of a chardev an fd is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChardevRole {
    /// Its `<source>` (the socket or the file).
    Source,
    /// Its `<log file>`.
    Log,
}

impl ChardevRole {
    /// `source` or `log` (fdset opaque strings, messages).
    pub fn as_str(self) -> &'static str {
        match self {
            ChardevRole::Source => "source",
            ChardevRole::Log => "log",
        }
    }
}

/// One thing virtnetd opens for one chardev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChardevOpen {
    /// The QEMU chardev id (`charserial0`).
    pub chardev: String,
    /// Source or log.
    pub role: ChardevRole,
    /// What to open.
    pub open: HostOpen,
}

/// How QEMU is told about an fd virtnetd opened for a chardev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PassedFd {
    /// A listening socket QEMU inherits at this number.
    Listening {
        /// The fd number in QEMU.
        fd: i32,
    },
    /// A file QEMU inherits at `fd`, put in fdset `set` (`-add-fd`), opened as `/dev/fdset/S`.
    FdSet {
        /// The fdset id.
        set: u32,
        /// The fd number in QEMU.
        fd: i32,
        /// The fdset's opaque label (`charserial0-source`).
        opaque: String,
    },
}

/// An fd passed for one chardev (see [`super::RuntimePaths::chardev_fds`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChardevFd {
    /// The QEMU chardev id.
    pub chardev: String,
    /// Source or log.
    pub role: ChardevRole,
    /// How QEMU gets it.
    pub fd: PassedFd,
}

/// Every serial port, console and channel with its QEMU chardev id, in command-line order
/// (console 0 of type serial is the first serial port and is not listed again).
fn host_chardevs(domain: &Domain) -> Vec<(&Chardev, String)> {
    let d = &domain.devices;
    let mut v = Vec::new();
    for (i, c) in d.serials.iter().enumerate() {
        let port = c.target.port.unwrap_or(i as u32);
        let alias = c
            .info
            .alias
            .clone()
            .unwrap_or_else(|| format!("serial{port}"));
        v.push((c, alias));
    }
    for (i, c) in d.consoles.iter().enumerate() {
        let t = c.target_type().unwrap_or("serial");
        if t == "serial" && i < d.serials.len() {
            continue;
        }
        let alias = c
            .info
            .alias
            .clone()
            .unwrap_or_else(|| format!("console{i}"));
        v.push((c, alias));
    }
    for (i, c) in d.channels.iter().enumerate() {
        let alias = c
            .info
            .alias
            .clone()
            .unwrap_or_else(|| format!("channel{i}"));
        v.push((c, alias));
    }
    v
}

/// What virtnetd opens for the host side of `c` (chardev `chardev`): a listening socket for
/// `<source mode='bind'>` unix sockets, a file for `type='file'`, a file for `<log file>`.
pub fn chardev_opens(c: &Chardev, chardev: &str) -> Vec<ChardevOpen> {
    let mut v = Vec::new();
    let on = |a: Option<&str>| a == Some("on");
    match &c.source {
        ChrSource::Unix {
            listen: true,
            path: Some(p),
            ..
        } => v.push(ChardevOpen {
            chardev: chardev.to_string(),
            role: ChardevRole::Source,
            open: HostOpen::ListenUnix { path: p.into() },
        }),
        ChrSource::File { path, append } => v.push(ChardevOpen {
            chardev: chardev.to_string(),
            role: ChardevRole::Source,
            open: HostOpen::WriteFile {
                path: path.into(),
                append: on(append.as_deref()),
            },
        }),
        _ => {}
    }
    if let Some((path, append)) = log_of(c) {
        v.push(ChardevOpen {
            chardev: chardev.to_string(),
            role: ChardevRole::Log,
            open: HostOpen::WriteFile {
                path: path.into(),
                append: on(append),
            },
        });
    }
    v
}

/// `<log file='...' append='on|off'/>`: (file, append).
pub(crate) fn log_of(c: &Chardev) -> Option<(&str, Option<&str>)> {
    let log = c.log.as_ref()?;
    Some((log.get_attr("file")?, log.get_attr("append")))
}

/// Everything virtnetd opens for the domain's serial ports, consoles and channels, in
/// command-line order. Pure.
pub fn chardev_host_opens(domain: &Domain) -> Vec<ChardevOpen> {
    host_chardevs(domain)
        .into_iter()
        .flat_map(|(c, alias)| chardev_opens(c, &format!("char{alias}")))
        .collect()
}
