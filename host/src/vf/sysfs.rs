//! sysfs access under a configurable root (real `/sys`, or a fake tree in tests).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{HostError, Result};

/// Called after each successful sysfs write with the full path and the value, so a test can
/// play the kernel's part (e.g. make the `driver` link appear after `drivers_probe`) or
/// fail the write. Not used on a real host.
pub type WriteHook = Arc<dyn Fn(&Path, &str) -> io::Result<()> + Send + Sync>;

/// A sysfs tree rooted at a directory (`/sys` on a real host).
#[derive(Clone)]
pub struct Sysfs {
    root: PathBuf,
    hook: Option<WriteHook>,
}

impl std::fmt::Debug for Sysfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sysfs").field("root", &self.root).finish()
    }
}

impl Sysfs {
    /// sysfs at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Sysfs {
            root: root.into(),
            hook: None,
        }
    }

    /// Adds a [`WriteHook`] (tests only).
    pub fn with_write_hook(mut self, hook: WriteHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// True if `rel` exists (following links).
    pub(crate) fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// Reads a small attribute file, trimmed.
    pub(crate) fn read(&self, rel: &str) -> Result<String> {
        let path = self.path(rel);
        fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|source| HostError::Sysfs {
                op: "read".into(),
                path,
                source,
            })
    }

    /// The last path component of the symlink `rel`'s target; `None` if there is no link.
    pub(crate) fn link_name(&self, rel: &str) -> Result<Option<String>> {
        let path = self.path(rel);
        match fs::read_link(&path) {
            Ok(t) => Ok(t.file_name().map(|n| n.to_string_lossy().into_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(HostError::Sysfs {
                op: "read link".into(),
                path,
                source,
            }),
        }
    }

    /// Names of the entries of directory `rel`, sorted.
    pub(crate) fn list(&self, rel: &str) -> Result<Vec<String>> {
        let path = self.path(rel);
        let rd = match fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(HostError::Sysfs {
                    op: "list".into(),
                    path,
                    source,
                })
            }
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Writes `value` to attribute `rel` in one write(2), as `echo value > file` does.
    pub(crate) fn write(&self, rel: &str, value: &str) -> Result<()> {
        let path = self.path(rel);
        let err = |source| HostError::Sysfs {
            op: format!("write '{}' to", value.trim()),
            path: path.clone(),
            source,
        };
        let mut f = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(err)?;
        f.write_all(value.as_bytes()).map_err(err)?;
        drop(f);
        if let Some(hook) = &self.hook {
            hook(&path, value).map_err(err)?;
        }
        Ok(())
    }
}
