//! Access for a confined QEMU to the paths it opens by name (kernel, initrd, disk images,
//! sockets it connects to), as libvirt's DAC security driver gives it.
//!
//! For each path the decision is taken from the mode bits (or access ACL), owner and group
//! the kernel checks (the QEMU user's uid, primary and supplementary groups; no capability,
//! since a confined QEMU has none): when the user can already reach the file, nothing changes (shared
//! read-only files such as a `0644` kernel are never touched). Otherwise the file is
//! **chowned** to the QEMU user and group, keeping its mode, as libvirt does. A chown rather
//! than a POSIX ACL entry because it works on every filesystem that has owners (ACLs need
//! `acl` support and the mask interplays with the group bits), it is what administrators
//! know from libvirt (`ls -l` shows it), and restoring it is exact.
//!
//! The original owner and the VMs holding the grant are kept **with the file**, in extended
//! attributes (libvirt keeps `trusted.libvirt.security.dac` and a reference count the same
//! way):
//! - `trusted.virtnet.dac.owner` — the original `uid:gid`;
//! - `trusted.virtnet.dac.holders` — one holder per line (e.g. `vm1/start`): a set, not a
//!   count, so releasing is idempotent (a stop replayed after a crash does not release
//!   another VM's hold);
//! - `trusted.virtnet.dac.boot` — the kernel's boot id when granted: a record from before a
//!   reboot (every QEMU then died) is stale; the owner it names is restored first.
//!
//! The owner is restored when the last holder releases it, and only if the file still
//! belongs to the QEMU user (someone who chowned it meanwhile wins). The same data is in the
//! [`DacGrant`] undo step the daemon stores, so a stop, a failed start's rollback and crash
//! recovery release it like any other host change. Directories are never changed: a parent
//! the QEMU user cannot search is refused ([`check`]) with the fix to apply.
//!
//! A qcow2 image's backing chain ([`PathNeed::backing`]) is read from the image headers and
//! granted read-only with it, as libvirt does.
//!
//! A file or directory with a POSIX access ACL is judged by its ACL, as the kernel does
//! ([`acl`]): one an administrator opened to QEMU's user with `setfacl` is left alone.

use std::ffi::CString;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{HostError, Result};

mod acl;
mod backing;

/// The xattr holding a file's POSIX access ACL.
const XATTR_ACL: &str = "system.posix_acl_access";

/// The xattr holding the original `uid:gid`.
pub const XATTR_OWNER: &str = "trusted.virtnet.dac.owner";
/// The xattr holding the holders, one per line.
pub const XATTR_HOLDERS: &str = "trusted.virtnet.dac.holders";
/// The xattr holding the boot id the record was made under.
pub const XATTR_BOOT: &str = "trusted.virtnet.dac.boot";

/// Serialises grants and releases in this process (a read-modify-write of the holders).
static LOCK: Mutex<()> = Mutex::new(());

/// What QEMU does with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Opens it read-only (kernel, initrd, a `<readonly/>` disk, a cdrom).
    Read,
    /// Opens it read-write (a disk, a serial device, a pipe).
    ReadWrite,
    /// Connects to a unix socket (needs write permission on the socket).
    Connect,
}

impl Access {
    /// The `rwx` bits it needs (4 read, 2 write).
    pub fn bits(self) -> u32 {
        match self {
            Access::Read => 4,
            Access::ReadWrite => 6,
            Access::Connect => 2,
        }
    }

    /// `read`, `read-write`, `connect to`.
    pub fn describe(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::ReadWrite => "read and write",
            Access::Connect => "connect to",
        }
    }

    /// The access that covers both (read + connect = read-write).
    pub fn union(self, other: Access) -> Access {
        if self == other {
            self
        } else {
            Access::ReadWrite
        }
    }
}

/// Who must reach the paths: the confined QEMU's ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// User name, for messages.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids.
    pub groups: Vec<u32>,
}

impl Identity {
    fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// One path QEMU opens by name, and what for. Part of a start or attach plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathNeed {
    /// The path as the domain names it.
    pub path: PathBuf,
    /// What QEMU does with it.
    pub access: Access,
    /// What it is, for messages (`disk 'vda'`, `kernel`).
    pub what: String,
    /// A qcow2 image: its backing files are opened too (read-only), and checked and granted
    /// with it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backing: bool,
}

impl PathNeed {
    /// The backing files behind it (read-only), nearest first; none unless `backing`.
    pub fn backing_chain(&self) -> Result<Vec<PathNeed>> {
        if !self.backing {
            return Ok(Vec::new());
        }
        let files = backing::chain(&self.path).map_err(|source| HostError::Dac {
            op: "read the backing chain of".into(),
            path: self.path.clone(),
            source,
        })?;
        Ok(files
            .into_iter()
            .map(|path| PathNeed {
                path,
                access: Access::Read,
                what: format!("backing file of {}", self.what),
                backing: false,
            })
            .collect())
    }
}

/// One grant to make: `who` must reach `need`, held by `holder` (`<vm>/start`,
/// `<vm>/<device>`). A step of a start or attach plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSpec {
    /// The path and access.
    #[serde(flatten)]
    pub need: PathNeed,
    /// QEMU's user.
    pub who: Identity,
    /// Who holds the grant.
    pub holder: String,
}

impl GrantSpec {
    /// [`check`]s it and its backing chain (changes nothing).
    pub fn check(&self) -> Result<()> {
        check(&self.need, &self.who)?;
        for b in self.need.backing_chain()? {
            check(&b, &self.who)?;
        }
        Ok(())
    }

    /// [`grant`]s it and its backing chain; the undo steps of what changed. On a failure,
    /// what it granted is given back first.
    pub fn apply(&self) -> Result<Vec<crate::HostUndo>> {
        let mut done: Vec<DacGrant> = Vec::new();
        let mut all = vec![self.need.clone()];
        let r = self.need.backing_chain().and_then(|chain| {
            all.extend(chain);
            for n in &all {
                if let Some(g) = grant(n, &self.who, &self.holder)? {
                    done.push(g);
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            for g in done.iter().rev() {
                let _ = release(g);
            }
            return Err(e);
        }
        Ok(done
            .into_iter()
            .map(crate::HostUndo::RestoreOwner)
            .collect())
    }

    /// One line for plans and messages.
    pub fn describe(&self) -> String {
        format!(
            "let user '{}' {} {} ({})",
            self.who.name,
            self.need.access.describe(),
            self.need.path.display(),
            self.need.what
        )
    }
}

/// The kernel's mode-bit rule: the owner class if `who` owns the file, else the group class
/// if it is in the file's group, else other; `want` (4/2/1 bits) must all be there.
pub fn permits(mode: u32, owner: u32, group: u32, who: &Identity, want: u32) -> bool {
    let bits = if who.uid == owner {
        mode >> 6
    } else if who.in_group(group) {
        mode >> 3
    } else {
        mode
    } & 7;
    bits & want == want
}

/// What [`check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// QEMU's user reaches it already: nothing to change.
    Reachable,
    /// It must be chowned to QEMU's user (or is held by another VM already).
    Grant,
    /// A socket that does not exist yet (the back end creates it later): nothing to change;
    /// its directories are searchable.
    Absent,
}

/// A recorded grant: the undo step that releases it. Stored in the daemon's live status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DacGrant {
    /// The file (symlinks resolved).
    pub path: PathBuf,
    /// Who holds it (`<vm>/<part>`).
    pub holder: String,
    /// The original owner.
    pub uid: u32,
    /// The original group.
    pub gid: u32,
    /// The uid it was chowned to (restored only if it still has it).
    pub granted_uid: u32,
}

impl DacGrant {
    /// One line for messages.
    pub fn describe(&self) -> String {
        format!(
            "give {} back to {}:{} (held by {})",
            self.path.display(),
            self.uid,
            self.gid,
            self.holder
        )
    }
}

fn unreachable(need: &PathNeed, reason: String) -> HostError {
    HostError::PathUnreachable {
        what: need.what.clone(),
        path: need.path.clone(),
        reason,
    }
}

/// Checks that QEMU running as `who` can reach `need` once granted: every directory on the
/// way is searchable by it (never changed by virtnet), the file exists (a socket may be
/// missing: [`Verdict::Absent`]), and either it is reachable now or a chown makes it so.
/// Changes nothing; run it for every path before anything else of a start happens.
pub fn check(need: &PathNeed, who: &Identity) -> Result<Verdict> {
    check_dirs(need, &need.path, who)?;
    let real = match std::fs::canonicalize(&need.path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound && need.access == Access::Connect => {
            return Ok(Verdict::Absent)
        }
        Err(e) => {
            return Err(unreachable(
                need,
                format!("cannot be resolved ({e}): give the path of an existing file"),
            ))
        }
    };
    if real != need.path {
        check_dirs(need, &real, who)?;
    }
    let meta = stat(&real)?;
    decide(need, &real, &meta, who)
}

/// Whether `who` gets `want` on `path`: from its access ACL when it has one, else from the
/// mode bits ([`permits`]).
fn reaches(path: &Path, meta: &Metadata, who: &Identity, want: u32) -> bool {
    let acl = get_xattr_bytes(path, XATTR_ACL).ok().flatten();
    acl.and_then(|a| acl::permits(&a, meta.uid(), meta.gid(), who, want))
        .unwrap_or_else(|| permits(meta.mode(), meta.uid(), meta.gid(), who, want))
}

fn decide(need: &PathNeed, real: &Path, meta: &Metadata, who: &Identity) -> Result<Verdict> {
    let want = need.access.bits();
    if need.access == Access::Connect && !meta.file_type().is_socket() {
        return Err(unreachable(
            need,
            "is not a unix socket: give the socket the back end listens on".into(),
        ));
    }
    if meta.is_dir() {
        return Err(unreachable(need, "is a directory, not a file".into()));
    }
    if reaches(real, meta, who, want) {
        return Ok(Verdict::Reachable);
    }
    if (meta.mode() >> 6) & want != want {
        return Err(unreachable(
            need,
            format!(
                "its mode {:04o} gives even its owner no {} access, and virtnet only changes \
                 the owner: add the owner bits (`chmod u+{}`) or make it reachable by user \
                 '{}' yourself",
                meta.mode() & 0o7777,
                need.access.describe(),
                if want & 4 != 0 && want & 2 != 0 {
                    "rw"
                } else if want & 4 != 0 {
                    "r"
                } else {
                    "w"
                },
                who.name
            ),
        ));
    }
    Ok(Verdict::Grant)
}

/// Every directory from `/` down to `path`'s parent must be searchable by `who`.
fn check_dirs(need: &PathNeed, path: &Path, who: &Identity) -> Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    for dir in parent.ancestors().filter(|d| d.is_absolute()) {
        let meta = match std::fs::metadata(dir) {
            Ok(m) => m,
            Err(e) => {
                return Err(unreachable(
                    need,
                    format!("its directory {} cannot be read: {e}", dir.display()),
                ))
            }
        };
        if !reaches(dir, &meta, who, 1) {
            return Err(unreachable(
                need,
                format!(
                    "QEMU runs as user '{}', which cannot enter directory {} (mode {:04o}, \
                     owner {}:{}); virtnet never changes directories: allow it with `chmod \
                     o+x {}`, or move the file to a directory it can enter",
                    who.name,
                    dir.display(),
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

fn stat(path: &Path) -> Result<Metadata> {
    std::fs::metadata(path).map_err(|source| HostError::Dac {
        op: "read the owner of".into(),
        path: path.to_path_buf(),
        source,
    })
}

/// Makes `need` reachable for `who` on behalf of `holder` (`<vm>/<part>`): [`check`], then,
/// unless it is reachable already, records the original owner with the file and chowns it
/// (or, when another VM holds it, adds `holder` to its holders). Returns the undo step, or
/// `None` when nothing was changed.
pub fn grant(need: &PathNeed, who: &Identity, holder: &str) -> Result<Option<DacGrant>> {
    let _lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let verdict = check(need, who)?;
    if verdict == Verdict::Absent {
        return Ok(None);
    }
    let real = std::fs::canonicalize(&need.path).map_err(|source| HostError::Dac {
        op: "resolve".into(),
        path: need.path.clone(),
        source,
    })?;
    let mut meta = stat(&real)?;
    let mut record = Record::read(&real)?;
    if record.as_ref().is_some_and(|r| r.boot != boot_id()) {
        // Made before the last reboot: every QEMU that held it is gone.
        let stale = record.take().expect("checked");
        stale.restore(&real, meta.uid(), who.uid)?;
        meta = stat(&real)?;
    }
    let holder = holder.replace('\n', " ");
    match record {
        Some(mut r) => {
            if !r.holders.contains(&holder) {
                r.holders.push(holder.clone());
                r.write_holders(&real)?;
            }
            // Held, but chowned back meanwhile (by hand): give it to QEMU's user again; the
            // record keeps the original owner.
            if decide(need, &real, &meta, who)? != Verdict::Reachable {
                chown_to(&real, who)?;
            }
            Ok(Some(DacGrant {
                path: real,
                holder,
                uid: r.uid,
                gid: r.gid,
                granted_uid: who.uid,
            }))
        }
        None if decide(need, &real, &meta, who)? == Verdict::Reachable => Ok(None),
        None => {
            let r = Record {
                uid: meta.uid(),
                gid: meta.gid(),
                boot: boot_id(),
                holders: vec![holder.clone()],
            };
            r.write(&real)?;
            if let Err(e) = chown_to(&real, who) {
                let _ = Record::remove(&real);
                return Err(e);
            }
            Ok(Some(DacGrant {
                path: real,
                holder,
                uid: r.uid,
                gid: r.gid,
                granted_uid: who.uid,
            }))
        }
    }
}

fn chown_to(path: &Path, who: &Identity) -> Result<()> {
    std::os::unix::fs::chown(path, Some(who.uid), Some(who.gid)).map_err(|source| HostError::Dac {
        op: format!("give user '{}' ownership of", who.name),
        path: path.to_path_buf(),
        source,
    })
}

/// Releases `grant`: drops its holder; the last one out restores the original owner (if the
/// file still belongs to the user it was given to) and removes the record. Idempotent: a
/// missing file, record or holder is fine.
pub fn release(grant: &DacGrant) -> Result<()> {
    let _lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let meta = match std::fs::metadata(&grant.path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(HostError::Dac {
                op: "read the owner of".into(),
                path: grant.path.clone(),
                source,
            })
        }
    };
    let Some(mut r) = Record::read(&grant.path)? else {
        return Ok(());
    };
    let before = r.holders.len();
    r.holders.retain(|h| *h != grant.holder);
    if !r.holders.is_empty() {
        if r.holders.len() != before {
            r.write_holders(&grant.path)?;
        }
        return Ok(());
    }
    r.restore(&grant.path, meta.uid(), grant.granted_uid)
}

/// The record kept in the file's xattrs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    uid: u32,
    gid: u32,
    boot: String,
    holders: Vec<String>,
}

impl Record {
    fn read(path: &Path) -> Result<Option<Record>> {
        let Some(owner) = get_xattr(path, XATTR_OWNER)? else {
            return Ok(None);
        };
        let bad = || HostError::Dac {
            op: format!("parse {XATTR_OWNER} ('{owner}') of"),
            path: path.to_path_buf(),
            source: io::Error::from(io::ErrorKind::InvalidData),
        };
        let (u, g) = owner.split_once(':').ok_or_else(bad)?;
        let holders = get_xattr(path, XATTR_HOLDERS)?.unwrap_or_default();
        Ok(Some(Record {
            uid: u.parse().map_err(|_| bad())?,
            gid: g.parse().map_err(|_| bad())?,
            boot: get_xattr(path, XATTR_BOOT)?.unwrap_or_default(),
            holders: holders
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        }))
    }

    fn write(&self, path: &Path) -> Result<()> {
        set_xattr(path, XATTR_BOOT, &self.boot)?;
        self.write_holders(path)?;
        // The owner last: its presence is what makes a record.
        set_xattr(path, XATTR_OWNER, &format!("{}:{}", self.uid, self.gid))
    }

    fn write_holders(&self, path: &Path) -> Result<()> {
        set_xattr(path, XATTR_HOLDERS, &self.holders.join("\n"))
    }

    /// Gives the file back to its original owner if it still belongs to `granted_uid`, and
    /// removes the record.
    fn restore(&self, path: &Path, current_uid: u32, granted_uid: u32) -> Result<()> {
        if current_uid == granted_uid {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).map_err(|source| {
                HostError::Dac {
                    op: format!("give back to {}:{}", self.uid, self.gid),
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        }
        Record::remove(path)
    }

    fn remove(path: &Path) -> Result<()> {
        // The owner first: without it what is left is no record.
        for name in [XATTR_OWNER, XATTR_HOLDERS, XATTR_BOOT] {
            remove_xattr(path, name)?;
        }
        Ok(())
    }
}

/// The kernel's boot id (a fresh random UUID at every boot).
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn cstr(s: &[u8], path: &Path) -> Result<CString> {
    CString::new(s).map_err(|_| HostError::Dac {
        op: "name".into(),
        path: path.to_path_buf(),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })
}

fn xattr_err(op: &str, name: &str, path: &Path, source: io::Error) -> HostError {
    let hint = if source.raw_os_error() == Some(libc::EOPNOTSUPP) {
        " (this filesystem keeps no trusted xattrs, where virtnet records the owner to \
         restore: make the file reachable by QEMU's user yourself, e.g. chown or chmod)"
    } else {
        ""
    };
    HostError::Dac {
        op: format!("{op} xattr {name}{hint} of"),
        path: path.to_path_buf(),
        source,
    }
}

/// Reads an xattr as text; `None` when it is not set.
fn get_xattr(path: &Path, name: &str) -> Result<Option<String>> {
    Ok(get_xattr_bytes(path, name)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Reads an xattr; `None` when it is not set (or the filesystem has no xattrs).
fn get_xattr_bytes(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let p = cstr(path.as_os_str().as_bytes(), path)?;
    let n = cstr(name.as_bytes(), path)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: `p` and `n` are NUL-terminated; `buf` is valid for `buf.len()` bytes.
    let len = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) => Ok(None),
            Some(libc::EOPNOTSUPP) if name == XATTR_ACL => Ok(None),
            _ => Err(xattr_err("read", name, path, e)),
        };
    }
    buf.truncate(len as usize);
    Ok(Some(buf))
}

fn set_xattr(path: &Path, name: &str, value: &str) -> Result<()> {
    let p = cstr(path.as_os_str().as_bytes(), path)?;
    let n = cstr(name.as_bytes(), path)?;
    // SAFETY: `p` and `n` are NUL-terminated; `value` is valid for its length.
    let rc = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc < 0 {
        return Err(xattr_err("write", name, path, io::Error::last_os_error()));
    }
    Ok(())
}

fn remove_xattr(path: &Path, name: &str) -> Result<()> {
    let p = cstr(path.as_os_str().as_bytes(), path)?;
    let n = cstr(name.as_bytes(), path)?;
    // SAFETY: `p` and `n` are NUL-terminated.
    let rc = unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENODATA) {
            return Err(xattr_err("remove", name, path, e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
