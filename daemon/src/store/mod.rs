//! The state store: plain files, no server.
//!
//! - persistent definitions: `<state_dir>/domains/NAME.xml` (canonical domain XML, as
//!   `virtnet dumpxml --inactive` prints it);
//! - live status of running VMs: `<run_dir>/NAME.json` ([`LiveStatus`]).
//!
//! Every write is atomic ([`atomic::write_atomic`]): temp file in the same directory, fsync,
//! rename, fsync the directory. Loading never fails as a whole: each file comes back with its
//! content or with a problem naming the file, so one corrupt file cannot stop the daemon.

pub mod atomic;
mod status;

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub use status::{LiveStatus, STATUS_FORMAT};

use crate::error::{DaemonError, Result};

/// Whether `dir` is on tmpfs or ramfs (`statfs`); false when that cannot be told.
fn in_memory(dir: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)]
    let t = st.f_type as i64;
    t == TMPFS_MAGIC || t == RAMFS_MAGIC
}

/// Permission bits of the files we write: they may name host devices and sockets.
const FILE_MODE: u32 = 0o600;
/// Permission bits of the directories we create.
const DIR_MODE: u32 = 0o700;

/// Where the store lives.
#[derive(Debug, Clone)]
pub struct Store {
    state_dir: PathBuf,
    run_dir: PathBuf,
    /// Whether `run_dir` is on tmpfs (as `/run` is): writing there never waits for a disk.
    run_in_memory: bool,
}

/// One file found at load time.
#[derive(Debug)]
pub struct StoredFile<T> {
    /// The VM name (the file name without its extension).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Its content, or what is wrong with it (the message names the file).
    pub content: std::result::Result<T, String>,
}

/// Everything found in the store at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// `domains/NAME.xml`, sorted by name.
    pub definitions: Vec<StoredFile<String>>,
    /// `NAME.json` in the run directory, sorted by name.
    pub statuses: Vec<StoredFile<LiveStatus>>,
    /// Temp files left by an interrupted write, removed (the files they were to replace are
    /// intact).
    pub removed_temps: Vec<PathBuf>,
}

impl Store {
    /// Opens (and creates, mode 0700) `<state_dir>/domains` and `<run_dir>`.
    pub fn open(state_dir: impl Into<PathBuf>, run_dir: impl Into<PathBuf>) -> Result<Store> {
        let mut store = Store {
            state_dir: state_dir.into(),
            run_dir: run_dir.into(),
            run_in_memory: false,
        };
        for dir in [
            store.domains_dir(),
            store.run_dir.clone(),
            store.run_dir.join("vms"),
        ] {
            DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(&dir)
                .map_err(|e| DaemonError::store("create directory", &dir, e))?;
        }
        store.run_in_memory = in_memory(&store.run_dir);
        Ok(store)
    }

    /// Whether the run directory is on tmpfs (or ramfs), as `/run` is: a status write there
    /// is a memory copy (fsync is a no-op), cheap enough to do on the request's own thread.
    pub fn run_in_memory(&self) -> bool {
        self.run_in_memory
    }

    /// `<state_dir>`.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `<run_dir>`.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// `<state_dir>/domains`.
    pub fn domains_dir(&self) -> PathBuf {
        self.state_dir.join("domains")
    }

    /// `<state_dir>/domains/NAME.xml`.
    pub fn definition_path(&self, name: &str) -> PathBuf {
        self.domains_dir().join(format!("{name}.xml"))
    }

    /// `<run_dir>/NAME.json`.
    pub fn status_path(&self, name: &str) -> PathBuf {
        self.run_dir.join(format!("{name}.json"))
    }

    /// `<run_dir>/vms/NAME`: the VM's run directory while it runs (QMP socket, QEMU log).
    pub fn vm_run_dir(&self, name: &str) -> PathBuf {
        self.run_dir.join("vms").join(name)
    }

    /// Stores (atomically replaces) the persistent definition of `name`.
    pub fn save_definition(&self, name: &str, xml: &str) -> Result<()> {
        let path = self.definition_path(name);
        atomic::write_atomic(&path, xml.as_bytes(), FILE_MODE)
            .map_err(|(action, e)| DaemonError::store(action, path, e))
    }

    /// Removes the persistent definition of `name` (missing is fine).
    pub fn remove_definition(&self, name: &str) -> Result<()> {
        let path = self.definition_path(name);
        atomic::remove_durable(&path).map_err(|e| DaemonError::store("remove", path, e))
    }

    /// Stores (atomically replaces) the live status of `name`.
    pub fn save_status(&self, status: &LiveStatus) -> Result<()> {
        let path = self.status_path(&status.name);
        let mut json = serde_json::to_vec_pretty(status)
            .map_err(|e| DaemonError::Internal(format!("cannot serialise live status: {e}")))?;
        json.push(b'\n');
        atomic::write_atomic(&path, &json, FILE_MODE)
            .map_err(|(action, e)| DaemonError::store(action, path, e))
    }

    /// Removes the live status of `name` (missing is fine).
    pub fn remove_status(&self, name: &str) -> Result<()> {
        let path = self.status_path(name);
        atomic::remove_durable(&path).map_err(|e| DaemonError::store("remove", path, e))
    }

    /// Reads everything. Unreadable directories are errors; unreadable or corrupt files are
    /// reported per file.
    pub fn load(&self) -> Result<Loaded> {
        let mut loaded = Loaded::default();
        for (name, path) in self.scan(&self.domains_dir(), "xml", &mut loaded.removed_temps)? {
            let content = read_text(&path);
            loaded.definitions.push(StoredFile {
                name,
                path,
                content,
            });
        }
        for (name, path) in self.scan(&self.run_dir, "json", &mut loaded.removed_temps)? {
            let content = read_text(&path).and_then(|text| {
                serde_json::from_str::<LiveStatus>(&text).map_err(|e| {
                    format!(
                        "live status {} is corrupt: {e} (the VM's QEMU, if still running, must be stopped by hand)",
                        path.display()
                    )
                })
            });
            loaded.statuses.push(StoredFile {
                name,
                path,
                content,
            });
        }
        Ok(loaded)
    }

    /// `(name, path)` of every `*.EXT` file in `dir`, sorted; removes stray temp files.
    fn scan(
        &self,
        dir: &Path,
        ext: &str,
        temps: &mut Vec<PathBuf>,
    ) -> Result<Vec<(String, PathBuf)>> {
        let entries =
            fs::read_dir(dir).map_err(|e| DaemonError::store("read directory", dir, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| DaemonError::store("read directory", dir, e))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                tracing::warn!(dir = %dir.display(), name = ?file_name, "ignoring a file whose name is not UTF-8");
                continue;
            };
            let path = entry.path();
            if atomic::is_temp_name(file_name) {
                match fs::remove_file(&path) {
                    Ok(()) => temps.push(path),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot remove a stray temp file")
                    }
                }
                continue;
            }
            let Some(name) = file_name.strip_suffix(&format!(".{ext}")) else {
                continue;
            };
            if crate::names::check_vm_name(name).is_err() {
                tracing::warn!(path = %path.display(), "ignoring a file whose name is not a valid VM name");
                continue;
            }
            found.push((name.to_string(), path));
        }
        found.sort();
        Ok(found)
    }
}

/// The file as text, or a problem naming it.
fn read_text(path: &Path) -> std::result::Result<String, String> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| format!("{} is not UTF-8 text (corrupt?)", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(format!("{} vanished while loading", path.display()))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests;
