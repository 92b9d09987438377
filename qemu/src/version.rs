//! QEMU's version, from the binary (`-version`) or at run time (QMP greeting, `query-version`).

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{QemuError, Result};

/// A QEMU version. Ordered field by field (major, then minor, then micro), so options can be
/// gated with `if version >= QemuVersion::new(8, 0, 0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QemuVersion {
    /// Major version (7 in 7.2.22).
    pub major: u32,
    /// Minor version (2 in 7.2.22).
    pub minor: u32,
    /// Micro version (22 in 7.2.22).
    pub micro: u32,
}

impl QemuVersion {
    /// A version from its three parts.
    pub const fn new(major: u32, minor: u32, micro: u32) -> Self {
        QemuVersion {
            major,
            minor,
            micro,
        }
    }

    /// Parses the output of `qemu-system-* -version`, whose first line looks like
    /// `QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`.
    pub fn parse_version_output(text: &str) -> Result<Self> {
        let bad = || QemuError::VersionParse {
            what: "`-version` output".into(),
            text: text.lines().next().unwrap_or("").to_string(),
        };
        let mut words = text.split_whitespace();
        words.find(|w| *w == "version").ok_or_else(bad)?;
        words.next().ok_or_else(bad)?.parse().map_err(|_| bad())
    }
}

impl FromStr for QemuVersion {
    type Err = QemuError;

    /// Parses `MAJOR.MINOR[.MICRO]` (micro defaults to 0).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || QemuError::VersionParse {
            what: "a version number".into(),
            text: s.to_string(),
        };
        let mut parts = s.trim().split('.');
        let mut next = |required: bool| -> Result<u32> {
            match parts.next() {
                Some(p) => p.parse().map_err(|_| bad()),
                None if required => Err(bad()),
                None => Ok(0),
            }
        };
        let v = QemuVersion::new(next(true)?, next(true)?, next(false)?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

impl fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// Runs `<path> -version` (for example `/usr/bin/qemu-system-x86_64`) and parses its version.
/// Gives up after 10 s.
pub async fn qemu_binary_version(path: impl AsRef<Path>) -> Result<QemuVersion> {
    let path = path.as_ref();
    let child = tokio::process::Command::new(path)
        .arg("-version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), child)
        .await
        .map_err(|_| QemuError::VersionCommand {
            binary: path.to_path_buf(),
            detail: "no answer within 10 s".into(),
        })?
        .map_err(|source| QemuError::Exec {
            binary: path.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(QemuError::VersionCommand {
            binary: path.to_path_buf(),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    QemuVersion::parse_version_output(&String::from_utf8_lossy(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_output() {
        let text = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n\
                    Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n";
        let v = QemuVersion::parse_version_output(text).unwrap();
        assert_eq!(v, QemuVersion::new(7, 2, 22));
        assert_eq!(v.to_string(), "7.2.22");
    }

    #[test]
    fn parses_upstream_dev_output() {
        let v = QemuVersion::parse_version_output("QEMU emulator version 8.2.50 (v8.2.0-1-gabc)")
            .unwrap();
        assert_eq!(v, QemuVersion::new(8, 2, 50));
    }

    #[test]
    fn rejects_garbage() {
        assert!(QemuVersion::parse_version_output("hello world").is_err());
        assert!(QemuVersion::parse_version_output("version x.y").is_err());
        assert!("7".parse::<QemuVersion>().is_err());
        assert!("7.2.1.4".parse::<QemuVersion>().is_err());
    }

    #[test]
    fn orders_numerically() {
        let v = |s: &str| s.parse::<QemuVersion>().unwrap();
        assert!(v("7.2.22") < v("7.10.0"));
        assert!(v("7.2") < v("7.2.1"));
        assert!(v("8.0.0") > v("7.99.99"));
        assert_eq!(v("9.1"), QemuVersion::new(9, 1, 0));
    }
}
