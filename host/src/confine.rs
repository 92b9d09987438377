//! Starting a helper process (the switch) unprivileged: between `fork` and `exec` the child
//! empties its capability bounding set, takes the given user, group and supplementary groups
//! (which clears its permitted, effective and ambient capabilities), empties its inheritable
//! set, sets NoNewPrivs, and keeps exactly the inherited fds it was given.
//!
//! The hook runs in the forked child of a possibly multi-threaded parent, so it only makes
//! async-signal-safe system calls on values prepared before the fork and allocates nothing.
//! `std`'s own `CommandExt::uid`/`gid` are not enough: they leave the bounding set full and
//! cannot set supplementary groups on stable Rust.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::error::{HostError, Result};
use crate::sysuser::SystemUser;

/// Who a confined child runs as, and which of the parent's fds it inherits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// The uid (never 0).
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplementary groups: only what the child needs.
    pub groups: Vec<u32>,
    /// Parent fds the child keeps at the same number (their close-on-exec flag is cleared in
    /// the child only, so no other child of a multi-threaded parent can inherit them).
    pub keep_fds: Vec<RawFd>,
}

impl Confinement {
    /// `user` with `groups` as its only supplementary groups. Refused for uid 0: a confined
    /// child is never root.
    pub fn new(user: &SystemUser, groups: Vec<u32>) -> Result<Confinement> {
        if user.uid == 0 {
            return Err(HostError::SystemUser {
                name: user.name.clone(),
                reason: "a confined process cannot run as uid 0; pick an unprivileged user".into(),
            });
        }
        Ok(Confinement {
            uid: user.uid,
            gid: user.gid,
            groups,
            keep_fds: Vec::new(),
        })
    }

    /// Installs the confinement as a `pre_exec` hook of `cmd` (the parent must be root, or
    /// the child fails to start with EPERM).
    pub fn install(&self, cmd: &mut Command) {
        let me = self.clone();
        let last_cap = last_cap();
        // SAFETY: the hook only makes async-signal-safe calls (prctl, setgroups, setresgid,
        // setresuid, capset, fcntl) on values moved in before the fork, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || me.apply(last_cap));
        }
    }

    /// In the child: see the module docs.
    fn apply(&self, last_cap: u32) -> io::Result<()> {
        for &fd in &self.keep_fds {
            // SAFETY: plain fcntl on an fd number.
            check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
        }
        let id = Identity {
            uid: self.uid,
            gid: self.gid,
            groups: &self.groups,
            last_cap,
        };
        id.drop_privileges().map_err(|(_, e)| e)
    }
}

/// The identity a forked child takes, and the one way it gives up every privilege: used for
/// the switch (here) and for QEMU (`virtnet_qemu`'s confinement, after its mounts).
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The uid (never 0).
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// The only supplementary groups kept.
    pub groups: &'a [u32],
    /// The highest capability number ([`last_cap`], read before the fork).
    pub last_cap: u32,
}

impl Identity<'_> {
    /// In a forked child, between fork and exec (async-signal-safe, allocates nothing):
    /// empties the bounding and ambient sets, takes the groups, gid and uid (from root to
    /// another uid the kernel clears the permitted and effective sets), empties the
    /// inheritable set, sets NoNewPrivs. On failure returns the step's name and the error.
    pub fn drop_privileges(&self) -> std::result::Result<(), (&'static str, io::Error)> {
        let step = |name: &'static str, r: libc::c_int| match check(r) {
            Ok(_) => Ok(()),
            Err(e) => Err((name, e)),
        };
        for cap in 0..=self.last_cap {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            match check(r) {
                // Past the kernel's last capability: done.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                r => r.map_err(|e| ("empty the capability bounding set", e))?,
            };
        }
        // SAFETY (every call below): plain system calls with integer arguments or pointers to
        // memory that outlives the call.
        step("clear the ambient capabilities", unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            )
        })?;
        step("setgroups", unsafe {
            libc::setgroups(self.groups.len(), self.groups.as_ptr())
        })?;
        step("setresgid", unsafe {
            libc::setresgid(self.gid, self.gid, self.gid)
        })?;
        step("setresuid", unsafe {
            libc::setresuid(self.uid, self.uid, self.uid)
        })?;
        clear_inheritable().map_err(|e| ("clear the capability sets", e))?;
        step("set no_new_privs", unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        })
    }
}

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`), read
/// before the fork; 63 when unreadable (the bounding loop stops at the kernel's last).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

/// capset(2) with every set empty (after setresuid only the inheritable set can be left).
fn clear_inheritable() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads a v3 header and two data structs, both live for the call.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } as i32)?;
    Ok(())
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_refused() {
        let root = SystemUser {
            name: "root".into(),
            uid: 0,
            gid: 0,
        };
        let e = Confinement::new(&root, vec![]).unwrap_err().to_string();
        assert!(e.contains("cannot run as uid 0"), "{e}");
    }

    /// A child started confined (as `nobody`) has no capability, NoNewPrivs, only the given
    /// supplementary group, and the one kept fd.
    #[test]
    fn child_has_no_privilege_left() {
        if !virtnet_testkit::require(&[virtnet_testkit::Need::Root]) {
            return;
        }
        let nobody = crate::sysuser::lookup_user("nobody").unwrap().unwrap();
        let kept = std::fs::File::open("/dev/null").unwrap();
        let mut c = Confinement::new(&nobody, vec![nobody.gid]).unwrap();
        c.keep_fds.push(std::os::fd::AsRawFd::as_raw_fd(&kept));
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            &format!(
                "cat /proc/self/status; ls /proc/self/fd | tr '\\n' ' '; echo; readlink /proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&kept)
            ),
        ]);
        c.install(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:")))
                .map(str::trim)
                .unwrap_or_else(|| panic!("{k} missing:\n{text}"))
                .to_string()
        };
        let uid = nobody.uid.to_string();
        assert!(field("Uid").split_whitespace().all(|u| u == uid), "{text}");
        for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(field(k), "0000000000000000", "{k}:\n{text}");
        }
        assert_eq!(field("NoNewPrivs"), "1");
        assert_eq!(field("Groups"), nobody.gid.to_string());
        assert!(text.trim_end().ends_with("/dev/null"), "{text}");
    }
}
