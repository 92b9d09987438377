//! Confining QEMU between `fork` and `exec`, from a [`Sandbox`].
//!
//! Everything is decided and turned into C strings before the fork ([`Confinement::prepare`]);
//! the child only makes async-signal-safe system calls on that memory and allocates nothing
//! (the same rule as `fds.rs`). It runs after the fd placement hook, so the fds it opens for a
//! moment (detached mounts) never take one of the numbers QEMU inherits, and it closes them.
//!
//! In the child, in order:
//! 1. `unshare(CLONE_NEWNS)`, and `/` made a recursive slave: nothing mounted here reaches the
//!    host, host mounts still arrive.
//! 2. Detached copies (`open_tree(OPEN_TREE_CLONE)`) of the device nodes the VM needs and of
//!    the directories to keep, taken while they are still visible.
//! 3. A fresh tmpfs on `/dev`; each node bind-mounted back (`move_mount`) onto an empty file;
//!    a new devpts instance on `/dev/pts` with `/dev/ptmx` → `pts/ptmx`; `/dev/fd` and
//!    `stdin`/`stdout`/`stderr` links to `/proc/self/fd`.
//! 4. A tmpfs over each hidden directory (virtnetd's state, its run-dir root); the kept
//!    directories (this VM's run dir) attached back at the same path. `chdir("/")`.
//! 5. The bounding set emptied (`PR_CAPBSET_DROP` of every capability), ambient set cleared,
//!    `setgroups`, `setresgid`, `setresuid` to the sandbox user (which empties the permitted
//!    and effective sets), the inheritable set cleared, `PR_SET_NO_NEW_PRIVS`.
//!
//! A failing step writes its name to stderr (QEMU's log) and fails the spawn with its errno.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::mounts::{self, attach_tree, check, clone_tree, mkdir, mount, note, touch};
use crate::error::{QemuError, Result};
use crate::sandbox::{DevNode, Sandbox};

/// A directory kept reachable inside a hidden one.
#[derive(Debug)]
struct Keep {
    /// Its path (canonical).
    path: CString,
    /// Directories to create in the covering tmpfs, outermost first, ending with `path`.
    dirs: Vec<CString>,
}

/// A [`Sandbox`] turned into what the child needs, prepared before the fork.
#[derive(Debug)]
pub(crate) struct Confinement {
    devs: Vec<CString>,
    dev_dirs: Vec<CString>,
    hides: Vec<CString>,
    keeps: Vec<Keep>,
    /// Scratch space for the detached mounts' fds (devs, then keeps).
    fds: Vec<RawFd>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    last_cap: u32,
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| QemuError::Confine {
        what: format!("use the path {:?} (it contains a NUL byte)", p),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })
}

fn confine_err(what: String) -> impl FnOnce(io::Error) -> QemuError {
    move |source| QemuError::Confine { what, source }
}

impl Confinement {
    /// Resolves device nodes (a VFIO group from sysfs), canonicalises the paths, and checks
    /// that the identity is not root.
    pub(crate) fn prepare(sb: &Sandbox) -> Result<Confinement> {
        if sb.user.uid == 0 {
            return Err(QemuError::Confine {
                what: format!(
                    "run QEMU confined as user '{}': it has uid 0, which keeps every privilege; \
                     choose an unprivileged user",
                    sb.user.name
                ),
                source: io::Error::from(io::ErrorKind::PermissionDenied),
            });
        }
        let mut devs = Vec::new();
        let mut dev_dirs = Vec::new();
        for node in &sb.dev {
            let path = match node.fixed_path() {
                Some(p) => PathBuf::from(p),
                None => vfio_group(node)?,
            };
            std::fs::metadata(&path).map_err(confine_err(format!(
                "give QEMU the device node {} (missing on this host?)",
                path.display()
            )))?;
            if let Some(parent) = path.parent().filter(|p| *p != Path::new("/dev")) {
                let parent = cstr(parent)?;
                if !dev_dirs.contains(&parent) {
                    dev_dirs.push(parent);
                }
            }
            let path = cstr(&path)?;
            if !devs.contains(&path) {
                devs.push(path);
            }
        }
        let hides = outermost(&sb.hide)?;
        let mut keeps = Vec::new();
        for k in &sb.keep {
            let path = std::fs::canonicalize(k).map_err(confine_err(format!(
                "keep {} reachable in QEMU's mount namespace",
                k.display()
            )))?;
            let Some(root) = hides.iter().find(|h| path.starts_with(h)) else {
                continue; // not hidden: nothing to do
            };
            let mut dirs: Vec<CString> = path
                .ancestors()
                .take_while(|a| a != root)
                .map(cstr)
                .collect::<Result<_>>()?;
            dirs.reverse();
            keeps.push(Keep {
                path: cstr(&path)?,
                dirs,
            });
        }
        let last_cap = virtnet_host::confine::last_cap();
        Ok(Confinement {
            fds: vec![-1; devs.len() + keeps.len()],
            devs,
            dev_dirs,
            hides: hides.iter().map(|h| cstr(h)).collect::<Result<_>>()?,
            keeps,
            uid: sb.user.uid,
            gid: sb.user.gid,
            groups: sb.user.groups.clone(),
            last_cap,
        })
    }

    /// Installs the confinement as a `pre_exec` hook; call after the fd placement's.
    pub(crate) fn install(mut self, cmd: &mut tokio::process::Command) {
        // SAFETY: the hook only makes async-signal-safe system calls (unshare, mount,
        // open_tree, move_mount, mkdir, open, close, symlink, chdir, prctl, setgroups,
        // setres[ug]id, capset, write) on memory prepared before the fork, and allocates
        // nothing.
        unsafe {
            cmd.pre_exec(move || self.apply());
        }
    }

    /// In the child: see the module docs.
    fn apply(&mut self) -> io::Result<()> {
        step(b"unshare(CLONE_NEWNS)", || {
            // SAFETY: plain syscall with a flag.
            check(unsafe { libc::unshare(libc::CLONE_NEWNS) }.into()).map(drop)
        })?;
        step(b"make / a recursive slave", || {
            mount(None, c"/", None, libc::MS_REC | libc::MS_SLAVE, None)
        })?;
        let (dev_fds, keep_fds) = self.fds.split_at_mut(self.devs.len());
        for (fd, dev) in dev_fds.iter_mut().zip(&self.devs) {
            *fd = step(b"clone a /dev node", || clone_tree(dev, false))?;
        }
        for (fd, keep) in keep_fds.iter_mut().zip(&self.keeps) {
            *fd = step(b"clone a kept directory", || clone_tree(&keep.path, true))?;
        }
        step(b"mount a tmpfs on /dev", || {
            mount(
                Some(c"tmpfs"),
                c"/dev",
                Some(c"tmpfs"),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                Some(c"mode=0755,size=64k"),
            )
        })?;
        for d in &self.dev_dirs {
            step(b"create a /dev directory", || mkdir(d))?;
        }
        for (fd, dev) in dev_fds.iter().zip(&self.devs) {
            step(b"bind a /dev node", || {
                touch(dev)?;
                attach_tree(*fd, dev)
            })?;
        }
        devpts()?;
        for h in &self.hides {
            step(b"cover a hidden directory with a tmpfs", || {
                mount(
                    Some(c"tmpfs"),
                    h,
                    Some(c"tmpfs"),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    Some(c"mode=0755,size=64k"),
                )
            })?;
        }
        for (fd, keep) in keep_fds.iter().zip(&self.keeps) {
            step(b"attach a kept directory", || {
                for d in &keep.dirs {
                    mkdir(d)?;
                }
                attach_tree(*fd, &keep.path)
            })?;
        }
        step(b"chdir /", || mounts::chdir(c"/"))?;
        self.drop_privileges()
    }

    /// The identity change and the end of every privilege: the one implementation in
    /// [`virtnet_host::confine::Identity`], shared with the switch.
    fn drop_privileges(&self) -> io::Result<()> {
        let id = virtnet_host::confine::Identity {
            uid: self.uid,
            gid: self.gid,
            groups: &self.groups,
            last_cap: self.last_cap,
        };
        id.drop_privileges().map_err(|(name, e)| {
            note(b"virtnet: confining QEMU failed at: ");
            note(name.as_bytes());
            note(b"\n");
            e
        })
    }
}

/// A new devpts instance on `/dev/pts` and the usual links in `/dev`.
fn devpts() -> io::Result<()> {
    step(b"mount a new devpts instance", || {
        mkdir(c"/dev/pts")?;
        mount(
            Some(c"devpts"),
            c"/dev/pts",
            Some(c"devpts"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some(c"newinstance,ptmxmode=0666,mode=0620"),
        )
    })?;
    step(b"create the /dev links", || {
        mounts::symlink(c"pts/ptmx", c"/dev/ptmx")?;
        mounts::symlink(c"/proc/self/fd", c"/dev/fd")?;
        mounts::symlink(c"/proc/self/fd/0", c"/dev/stdin")?;
        mounts::symlink(c"/proc/self/fd/1", c"/dev/stdout")?;
        mounts::symlink(c"/proc/self/fd/2", c"/dev/stderr")
    })
}

/// Runs one step; on failure writes `virtnet: confining QEMU failed at: <name>` to stderr.
fn step<T>(name: &[u8], f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    f().inspect_err(|_| {
        // `inspect_err` keeps the error (errno) as it was; `note` only writes.
        note(b"virtnet: confining QEMU failed at: ");
        note(name);
        note(b"\n");
    })
}

/// The existing directories of `hide`, canonical, without those inside another one.
fn outermost(hide: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = Vec::new();
    for h in hide {
        let Ok(p) = std::fs::canonicalize(h) else {
            continue; // nothing there to hide
        };
        if p == Path::new("/") || Path::new("/dev").starts_with(&p) || p.starts_with("/dev") {
            return Err(QemuError::Confine {
                what: format!("hide {} from QEMU: it is / or holds /dev", h.display()),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            });
        }
        v.push(p);
    }
    v.sort_by_key(|p| p.as_os_str().len());
    let mut out: Vec<PathBuf> = Vec::new();
    for p in v {
        if !out.iter().any(|o| p.starts_with(o)) {
            out.push(p);
        }
    }
    Ok(out)
}

/// `/dev/vfio/N` for the IOMMU group of a PCI device (`/sys/bus/pci/devices/ADDR/iommu_group`).
fn vfio_group(node: &DevNode) -> Result<PathBuf> {
    let DevNode::VfioGroupOf { address } = node else {
        unreachable!("only VFIO groups have no fixed path");
    };
    let link = Path::new("/sys/bus/pci/devices")
        .join(address)
        .join("iommu_group");
    let target = std::fs::read_link(&link).map_err(confine_err(format!(
        "find the IOMMU group of PCI device {address} ({}; is it bound to vfio-pci?)",
        link.display()
    )))?;
    let group = target.file_name().unwrap_or(OsStr::new(""));
    Ok(Path::new("/dev/vfio").join(group))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::QemuUser;

    fn user(uid: u32) -> QemuUser {
        QemuUser {
            name: "u".into(),
            uid,
            gid: uid,
            groups: vec![],
        }
    }

    #[test]
    fn root_is_refused() {
        let e = Confinement::prepare(&Sandbox::new(user(0))).unwrap_err();
        assert!(e.to_string().contains("uid 0"), "{e}");
    }

    #[test]
    fn keeps_inside_hidden_dirs_get_their_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let kept = root.join("run/vms/a");
        std::fs::create_dir_all(&kept).unwrap();
        std::fs::create_dir_all(root.join("state")).unwrap();
        let mut sb = Sandbox::new(user(1234));
        sb.hide = vec![root.join("run"), root.join("run/vms"), root.join("missing")];
        sb.keep = vec![kept.clone(), root.join("state")];
        let c = Confinement::prepare(&sb).unwrap();
        assert_eq!(c.hides, vec![cstr(&root.join("run")).unwrap()]);
        assert_eq!(c.keeps.len(), 1, "state is not hidden: nothing to keep");
        let dirs: Vec<_> = c.keeps[0]
            .dirs
            .iter()
            .map(|d| d.to_str().unwrap())
            .collect();
        assert_eq!(
            dirs,
            [
                root.join("run/vms").to_str().unwrap(),
                kept.to_str().unwrap()
            ]
        );
        assert_eq!(c.devs.len(), 5);
        assert!(c.dev_dirs.is_empty());
    }

    #[test]
    fn hiding_dev_is_refused() {
        let mut sb = Sandbox::new(user(1234));
        sb.hide = vec!["/dev".into()];
        assert!(Confinement::prepare(&sb).is_err());
    }
}
