//! System users for confined processes (QEMU, the switch): look one up, or create it the way
//! Debian packages do (`useradd --system`, no home, no login shell, its own group).
//!
//! Lookups use `getpwnam_r`/`getgrnam_r` from libc, so NSS (files, and whatever else the host
//! configures) answers exactly as it does for `id`. No crate in the tree does this, and the
//! two calls are short.

use std::ffi::{CStr, CString};
use std::process::Command;

use crate::error::{HostError, Result};

/// A user's ids as the kernel sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUser {
    /// The user name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

/// Looks `name` up; `Ok(None)` when no such user exists.
pub fn lookup_user(name: &str) -> Result<Option<SystemUser>> {
    let cname = c_name(name)?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero `passwd` is a valid value (null pointers, zero ids); it is only
    // read after getpwnam_r filled it.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives `pw`'s string pointers,
    // which are not kept.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 {
        return Err(lookup_error("user", name, rc));
    }
    if found.is_null() {
        return Ok(None);
    }
    Ok(Some(SystemUser {
        name: name.to_string(),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
    }))
}

/// The gid of group `name`; `Ok(None)` when no such group exists.
pub fn lookup_group(name: &str) -> Result<Option<u32>> {
    let cname = c_name(name)?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: an all-zero `group` is a valid value; only read after getgrnam_r filled it.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `lookup_user`.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 {
        return Err(lookup_error("group", name, rc));
    }
    Ok((!found.is_null()).then_some(gr.gr_gid))
}

/// Looks `name` up and creates it when missing: a system user with its own group, no home
/// directory and `/usr/sbin/nologin` as shell (`useradd --system --user-group`).
pub fn ensure_system_user(name: &str, comment: &str) -> Result<SystemUser> {
    if let Some(u) = lookup_user(name)? {
        return Ok(u);
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            comment,
            name,
        ])
        .output()
        .map_err(|e| HostError::SystemUser {
            name: name.to_string(),
            reason: format!("cannot run useradd: {e}"),
        })?;
    // Another process may have created it meanwhile (useradd then exits 9): look again.
    if let Some(u) = lookup_user(name)? {
        return Ok(u);
    }
    Err(HostError::SystemUser {
        name: name.to_string(),
        reason: format!(
            "useradd failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

/// Looks group `name` up and creates it when missing (`groupadd --system`, as Debian packages
/// do for a group that grants access, like libvirt's `libvirt`); returns its gid.
pub fn ensure_system_group(name: &str) -> Result<u32> {
    let group_error = |reason: String| HostError::SystemGroup {
        name: name.to_string(),
        reason,
    };
    if let Some(gid) = lookup_group(name).map_err(|e| group_error(e.to_string()))? {
        return Ok(gid);
    }
    let out = Command::new("groupadd")
        .args(["--system", name])
        .output()
        .map_err(|e| group_error(format!("cannot run groupadd: {e}")))?;
    // Another process may have created it meanwhile (groupadd then exits 9): look again.
    if let Some(gid) = lookup_group(name).map_err(|e| group_error(e.to_string()))? {
        return Ok(gid);
    }
    Err(group_error(format!(
        "groupadd failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

fn c_name(name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| HostError::SystemUser {
        name: name.escape_default().to_string(),
        reason: "a user or group name cannot contain a NUL byte".into(),
    })
}

fn lookup_error(what: &str, name: &str, rc: i32) -> HostError {
    // SAFETY: strerror returns a pointer to a static (or thread-local) NUL-terminated string.
    let msg = unsafe { CStr::from_ptr(libc::strerror(rc)) };
    HostError::SystemUser {
        name: name.to_string(),
        reason: format!("looking up the {what} failed: {}", msg.to_string_lossy()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_missing() {
        let root = lookup_user("root").unwrap().unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup_group("root").unwrap(), Some(0));
        assert_eq!(lookup_user("virtnet-no-such-user-x").unwrap(), None);
        assert_eq!(lookup_group("virtnet-no-such-group-x").unwrap(), None);
        assert!(lookup_user("a\0b").is_err());
        assert_eq!(ensure_system_group("root").unwrap(), 0);
        assert!(ensure_system_group("a\0b").is_err());
    }
}
