use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;

use virtnet_testkit::{require, Need};

use super::*;

/// A QEMU user that exists only as numbers (root may chown to any uid).
fn qemu() -> Identity {
    Identity {
        name: "virtnet-qemu-test".into(),
        uid: 64_901,
        gid: 64_902,
        groups: vec![64_903],
    }
}

/// The decision, as the kernel takes it: the first class that matches decides, even when a
/// later one would allow more.
#[test]
fn permits_table() {
    let who = qemu();
    let (me, my_group, extra, other) = (64_901, 64_902, 64_903, 0);
    #[rustfmt::skip]
    let cases = [
        // mode, owner, group, want, expected
        (0o644, other, other, 4, true),   // world-readable kernel: untouched
        (0o600, other, other, 4, false),  // root's 0600 image
        (0o600, me, other, 6, true),      // already ours
        (0o400, me, other, 6, false),     // ours but read-only
        (0o640, other, my_group, 4, true),
        (0o640, other, extra, 4, true),   // a supplementary group (kvm)
        (0o640, other, my_group, 6, false),
        (0o066, me, other, 4, false),     // owner class decides, though others may read
        (0o606, other, my_group, 4, false), // group class decides
        (0o755, other, other, 2, false),  // a root socket: connect needs write
        (0o777, other, other, 2, true),
        (0o711, other, other, 1, true),   // a traversable dir
        (0o700, other, other, 1, false),
    ];
    for (mode, owner, group, want, expected) in cases {
        assert_eq!(
            permits(mode, owner, group, &who, want),
            expected,
            "mode {mode:o} owner {owner} group {group} want {want}"
        );
    }
}

#[test]
fn access_union_and_bits() {
    assert_eq!(Access::Read.union(Access::Read), Access::Read);
    assert_eq!(Access::Read.union(Access::ReadWrite), Access::ReadWrite);
    assert_eq!(Access::Connect.bits(), 2);
    let g = DacGrant {
        path: "/i".into(),
        holder: "vm1/start".into(),
        uid: 0,
        gid: 0,
        granted_uid: 5,
    };
    let json = serde_json::to_string(&crate::HostUndo::RestoreOwner(g.clone())).unwrap();
    assert_eq!(
        json,
        r#"{"undo":"restore_owner","path":"/i","holder":"vm1/start","uid":0,"gid":0,"granted_uid":5}"#
    );
    assert_eq!(
        serde_json::from_str::<crate::HostUndo>(&json).unwrap(),
        crate::HostUndo::RestoreOwner(g)
    );
}

/// A traversable directory (0711) with a root-owned file of `mode` in it.
fn file_in_dir(mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let f = dir.path().join("disk.img");
    std::fs::write(&f, b"image").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, f)
}

fn need(path: &Path, access: Access) -> PathNeed {
    PathNeed {
        path: path.into(),
        access,
        what: "disk 'vda'".into(),
        backing: false,
    }
}

fn owner(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// A root 0600 image is chowned (mode kept), recorded in its xattrs, and given back; a
/// second release changes nothing.
#[test]
fn grant_and_release_a_private_image() {
    if !require(&[Need::Root]) {
        return;
    }
    let (_dir, f) = file_in_dir(0o600);
    let who = qemu();
    let g = grant(&need(&f, Access::ReadWrite), &who, "vm1/start")
        .unwrap()
        .expect("a 0600 root file needs a grant");
    assert_eq!(owner(&f), (who.uid, who.gid, 0o600));
    assert_eq!(get_xattr(&f, XATTR_OWNER).unwrap().as_deref(), Some("0:0"));
    assert_eq!(
        get_xattr(&f, XATTR_HOLDERS).unwrap().as_deref(),
        Some("vm1/start")
    );
    assert_eq!(g.path, std::fs::canonicalize(&f).unwrap());
    release(&g).unwrap();
    assert_eq!(owner(&f), (0, 0, 0o600));
    assert_eq!(get_xattr(&f, XATTR_OWNER).unwrap(), None);
    assert_eq!(get_xattr(&f, XATTR_HOLDERS).unwrap(), None);
    release(&g).unwrap();
    assert_eq!(owner(&f), (0, 0, 0o600));
}

/// A file QEMU's user reaches already is not touched.
#[test]
fn reachable_files_are_not_touched() {
    if !require(&[Need::Root]) {
        return;
    }
    let (_dir, f) = file_in_dir(0o644);
    assert_eq!(
        grant(&need(&f, Access::Read), &qemu(), "vm1/start").unwrap(),
        None
    );
    assert_eq!(owner(&f), (0, 0, 0o644));
    assert_eq!(get_xattr(&f, XATTR_OWNER).unwrap(), None);
    // Read-write on the same file is not reachable: chowned.
    let g = grant(&need(&f, Access::ReadWrite), &qemu(), "vm1/start").unwrap();
    assert!(g.is_some());
    release(&g.unwrap()).unwrap();
    assert_eq!(owner(&f), (0, 0, 0o644));
}

/// Two VMs share one image: the first release keeps it granted, the second gives it back;
/// releasing one holder twice does not release the other's.
#[test]
fn shared_file_is_restored_by_the_last_holder() {
    if !require(&[Need::Root]) {
        return;
    }
    let (_dir, f) = file_in_dir(0o600);
    let who = qemu();
    let n = need(&f, Access::Read);
    let a = grant(&n, &who, "vm1/start").unwrap().unwrap();
    let b = grant(&n, &who, "vm2/start").unwrap().unwrap();
    assert_eq!(
        (b.uid, b.gid),
        (0, 0),
        "the second holder records the original owner"
    );
    assert_eq!(
        get_xattr(&f, XATTR_HOLDERS).unwrap().as_deref(),
        Some("vm1/start\nvm2/start")
    );
    release(&a).unwrap();
    release(&a).unwrap();
    assert_eq!(owner(&f).0, who.uid, "vm2 still holds it");
    release(&b).unwrap();
    assert_eq!(owner(&f), (0, 0, 0o600));
}

/// A held file chowned back by hand meanwhile is given to QEMU's user again by the next
/// grant, and the record still names the original owner.
#[test]
fn held_file_chowned_back_is_granted_again() {
    if !require(&[Need::Root]) {
        return;
    }
    let (_dir, f) = file_in_dir(0o600);
    let who = qemu();
    let n = need(&f, Access::Read);
    let a = grant(&n, &who, "vm1/start").unwrap().unwrap();
    std::os::unix::fs::chown(&f, Some(0), Some(0)).unwrap();
    let b = grant(&n, &who, "vm2/start").unwrap().unwrap();
    assert_eq!(owner(&f).0, who.uid);
    assert_eq!((b.uid, b.gid), (0, 0));
    release(&a).unwrap();
    release(&b).unwrap();
    assert_eq!(owner(&f), (0, 0, 0o600));
}

/// A record from before a reboot is stale: its owner is restored before the new grant, and
/// the new record names the original owner, not QEMU's user.
#[test]
fn stale_record_from_another_boot() {
    if !require(&[Need::Root]) {
        return;
    }
    let (_dir, f) = file_in_dir(0o600);
    let who = qemu();
    std::os::unix::fs::chown(&f, Some(who.uid), Some(who.gid)).unwrap();
    let stale = Record {
        uid: 0,
        gid: 0,
        boot: "an-older-boot".into(),
        holders: vec!["gone/start".into()],
    };
    stale.write(&f).unwrap();
    let g = grant(&need(&f, Access::Read), &who, "vm1/start")
        .unwrap()
        .unwrap();
    assert_eq!((g.uid, g.gid), (0, 0));
    assert_eq!(
        get_xattr(&f, XATTR_HOLDERS).unwrap().as_deref(),
        Some("vm1/start")
    );
    release(&g).unwrap();
    assert_eq!(owner(&f), (0, 0, 0o600));
}

/// A file someone chowned meanwhile is left as they made it.
#[test]
fn owner_changed_meanwhile_is_kept() {
    if !require(&[Need::Root]) {
        return;
    }
    let (_dir, f) = file_in_dir(0o600);
    let g = grant(&need(&f, Access::Read), &qemu(), "vm1/start")
        .unwrap()
        .unwrap();
    std::os::unix::fs::chown(&f, Some(4242), Some(4242)).unwrap();
    release(&g).unwrap();
    assert_eq!(owner(&f), (4242, 4242, 0o600));
    assert_eq!(get_xattr(&f, XATTR_OWNER).unwrap(), None);
}

/// A socket QEMU connects to: root's 0755 socket is chowned; a missing one is left alone.
#[test]
fn sockets() {
    if !require(&[Need::Root]) {
        return;
    }
    let (dir, _) = file_in_dir(0o600);
    let s = dir.path().join("vhost.sock");
    let _l = UnixListener::bind(&s).unwrap();
    std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
    let n = need(&s, Access::Connect);
    let g = grant(&n, &qemu(), "vm1/net0").unwrap().unwrap();
    assert_eq!(owner(&s).0, qemu().uid);
    release(&g).unwrap();
    assert_eq!(owner(&s), (0, 0, 0o755));
    let missing = need(&dir.path().join("later.sock"), Access::Connect);
    assert_eq!(check(&missing, &qemu()).unwrap(), Verdict::Absent);
    assert_eq!(grant(&missing, &qemu(), "vm1/net0").unwrap(), None);
    // A regular file is no socket.
    let e = check(
        &need(&dir.path().join("disk.img"), Access::Connect),
        &qemu(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a unix socket"), "{e}");
}

/// A parent QEMU's user cannot search is refused with the fix; nothing is changed.
#[test]
fn unreachable_parent_is_refused() {
    if !require(&[Need::Root]) {
        return;
    }
    let (dir, f) = file_in_dir(0o600);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let e = grant(&need(&f, Access::Read), &qemu(), "vm1/start").unwrap_err();
    assert!(e.is_user_error());
    let msg = e.to_string();
    assert!(msg.contains("disk 'vda'"), "{msg}");
    assert!(
        msg.contains(&format!("chmod o+x {}", dir.path().display())),
        "{msg}"
    );
    assert!(msg.contains("cannot enter directory"), "{msg}");
    assert_eq!(owner(&f), (0, 0, 0o600));
    assert_eq!(get_xattr(&f, XATTR_OWNER).unwrap(), None);
}

/// Owner bits without the access: a chown would not help, so it is refused.
#[test]
fn owner_bits_without_the_access_are_refused() {
    if !require(&[Need::Root]) {
        return;
    }
    let (_dir, f) = file_in_dir(0o400);
    let e = grant(&need(&f, Access::ReadWrite), &qemu(), "vm1/start").unwrap_err();
    assert!(e.to_string().contains("chmod u+rw"), "{e}");
    assert_eq!(owner(&f), (0, 0, 0o400));
    let e = check(&need(&f.with_extension("none"), Access::Read), &qemu()).unwrap_err();
    assert!(e.to_string().contains("cannot be resolved"), "{e}");
}

/// A symlink is followed: the target is granted and restored, the link untouched.
#[test]
fn symlinks_are_resolved() {
    if !require(&[Need::Root]) {
        return;
    }
    let (dir, f) = file_in_dir(0o600);
    let link = dir.path().join("link.img");
    std::os::unix::fs::symlink(&f, &link).unwrap();
    let g = grant(&need(&link, Access::Read), &qemu(), "vm1/start")
        .unwrap()
        .unwrap();
    assert_eq!(g.path, std::fs::canonicalize(&f).unwrap());
    assert_eq!(owner(&f).0, qemu().uid);
    release(&g).unwrap();
    assert_eq!(owner(&f), (0, 0, 0o600));
}

/// A qcow2 overlay and its backing file, both root 0600: granted together (the backing file
/// read-only), given back together; a backing file in a directory QEMU's user cannot enter
/// refuses the whole grant and leaves the overlay as it was.
#[test]
fn backing_chain_is_granted_with_its_image() {
    if !require(&[Need::Root]) {
        return;
    }
    let (dir, base) = file_in_dir(0o600);
    let top = dir.path().join("top.qcow2");
    backing::write_test_qcow2(&top, Some("disk.img"));
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut n = need(&top, Access::ReadWrite);
    n.backing = true;
    let spec = GrantSpec {
        need: n.clone(),
        who: qemu(),
        holder: "vm1/start".into(),
    };
    spec.check().unwrap();
    let undo = spec.apply().unwrap();
    assert_eq!(undo.len(), 2, "{undo:?}");
    assert_eq!(owner(&top).0, qemu().uid);
    assert_eq!(owner(&base).0, qemu().uid);
    for u in undo.iter().rev() {
        let crate::HostUndo::RestoreOwner(g) = u else {
            panic!("{u:?}")
        };
        release(g).unwrap();
    }
    assert_eq!(owner(&top), (0, 0, 0o600));
    assert_eq!(owner(&base), (0, 0, 0o600));

    let closed = tempfile::tempdir().unwrap();
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let hidden = closed.path().join("base.raw");
    std::fs::write(&hidden, b"x").unwrap();
    backing::write_test_qcow2(&top, Some(hidden.to_str().unwrap()));
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = spec.apply().unwrap_err();
    assert!(e.to_string().contains("backing file of disk 'vda'"), "{e}");
    assert_eq!(owner(&top), (0, 0, 0o600));
    assert_eq!(get_xattr(&top, XATTR_OWNER).unwrap(), None);
}

/// Sets `path`'s access ACL: root's owner bits `owner`, QEMU's user `user` (rwx bits), mask
/// `mask`, nothing for group and others (what `setfacl -m u:UID:...` makes).
fn set_acl(path: &Path, owner: u16, user: u16, mask: u16) {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (0x01u16, owner, u32::MAX),
        (0x02, user, qemu().uid),
        (0x04, 0, u32::MAX),
        (0x10, mask, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        v.extend(tag.to_le_bytes());
        v.extend(perm.to_le_bytes());
        v.extend(id.to_le_bytes());
    }
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(XATTR_ACL).unwrap();
    // SAFETY: NUL-terminated strings; `v` is valid for its length.
    let rc = unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
    assert_eq!(
        rc,
        0,
        "setxattr {XATTR_ACL}: {}",
        io::Error::last_os_error()
    );
}

/// A file and directory an administrator opened to QEMU's user with an ACL (`setfacl -m
/// u:virtnet-qemu:rw`) are reachable and left alone, though their mode bits say no.
#[test]
fn acl_granted_access_is_respected() {
    if !require(&[Need::Root]) {
        return;
    }
    let (dir, f) = file_in_dir(0o600);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    set_acl(dir.path(), 7, 1, 1);
    set_acl(&f, 6, 6, 6);
    assert_eq!(
        check(&need(&f, Access::ReadWrite), &qemu()).unwrap(),
        Verdict::Reachable
    );
    assert_eq!(
        grant(&need(&f, Access::ReadWrite), &qemu(), "vm1/start").unwrap(),
        None
    );
    assert_eq!(owner(&f).0, 0);
    // A read-only mask takes the write away: a grant is needed.
    set_acl(&f, 6, 6, 4);
    assert_eq!(
        check(&need(&f, Access::ReadWrite), &qemu()).unwrap(),
        Verdict::Grant
    );
    // Without the directory's entry, it cannot be entered.
    set_acl(dir.path(), 7, 0, 0);
    assert!(check(&need(&f, Access::Read), &qemu()).is_err());
}
