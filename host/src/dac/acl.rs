//! POSIX access ACLs (`system.posix_acl_access`): the kernel's check for a file that has one,
//! so a file an administrator opened to QEMU's user with `setfacl -m u:virtnet-qemu:rw` is
//! taken as reachable (and left alone), and one whose group entries deny it is not.
//!
//! Stored form (`linux/posix_acl_xattr.h`, little-endian): a `u32` version (2), then entries
//! of `u16 tag, u16 perm, u32 id`, sorted by tag. The check follows the kernel's
//! `posix_acl_permission`: the owner entry for the owner; a named user entry, masked; the
//! owning group and named group entries (any that grants, masked; if some matched but none
//! granted, denied); else the other entry.

use super::Identity;

const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u16,
    perm: u32,
    id: u32,
}

fn parse(acl: &[u8]) -> Option<Vec<Entry>> {
    let (head, rest) = acl.split_at_checked(4)?;
    if u32::from_le_bytes(head.try_into().ok()?) != 2 || rest.len() % 8 != 0 {
        return None;
    }
    Some(
        rest.chunks_exact(8)
            .map(|c| Entry {
                tag: u16::from_le_bytes([c[0], c[1]]),
                perm: u32::from(u16::from_le_bytes([c[2], c[3]])),
                id: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

/// Whether `who` gets `want` (rwx bits) from the ACL `acl` of a file owned by `owner`:`group`;
/// `None` when the value cannot be read as an access ACL (then the mode bits decide).
pub(super) fn permits(
    acl: &[u8],
    owner: u32,
    group: u32,
    who: &Identity,
    want: u32,
) -> Option<bool> {
    let entries = parse(acl)?;
    let mask = entries.iter().find(|e| e.tag == MASK).map_or(7, |e| e.perm);
    let masked = |perm: u32| perm & mask & want == want;
    let mut group_matched = false;
    for e in &entries {
        match e.tag {
            USER_OBJ if who.uid == owner => return Some(e.perm & want == want),
            USER if e.id == who.uid => return Some(masked(e.perm)),
            GROUP_OBJ | GROUP => {
                let gid = if e.tag == GROUP_OBJ { group } else { e.id };
                if who.in_group(gid) {
                    group_matched = true;
                    if e.perm & want == want {
                        return Some(masked(e.perm));
                    }
                }
            }
            OTHER => return Some(!group_matched && e.perm & want == want),
            _ => {}
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in entries {
            v.extend(tag.to_le_bytes());
            v.extend(perm.to_le_bytes());
            v.extend(id.to_le_bytes());
        }
        v
    }

    #[test]
    fn the_kernels_rule() {
        let who = Identity {
            name: "q".into(),
            uid: 900,
            gid: 901,
            groups: vec![902],
        };
        const U: u32 = u32::MAX;
        // root:root 0600 plus user:900:rw, mask rw.
        let named = acl(&[
            (USER_OBJ, 6, U),
            (USER, 6, 900),
            (GROUP_OBJ, 0, U),
            (MASK, 6, U),
            (OTHER, 0, U),
        ]);
        assert_eq!(permits(&named, 0, 0, &who, 6), Some(true));
        // The same with a read-only mask.
        let masked = acl(&[
            (USER_OBJ, 6, U),
            (USER, 6, 900),
            (GROUP_OBJ, 0, U),
            (MASK, 4, U),
            (OTHER, 0, U),
        ]);
        assert_eq!(permits(&masked, 0, 0, &who, 6), Some(false));
        assert_eq!(permits(&masked, 0, 0, &who, 4), Some(true));
        // A named group it is in (a supplementary one).
        let grp = acl(&[
            (USER_OBJ, 6, U),
            (GROUP_OBJ, 0, U),
            (GROUP, 4, 902),
            (MASK, 4, U),
            (OTHER, 0, U),
        ]);
        assert_eq!(permits(&grp, 0, 0, &who, 4), Some(true));
        // A matching group entry that does not grant denies, though others may read.
        let deny = acl(&[
            (USER_OBJ, 6, U),
            (GROUP_OBJ, 0, U),
            (GROUP, 0, 901),
            (MASK, 7, U),
            (OTHER, 4, U),
        ]);
        assert_eq!(permits(&deny, 0, 0, &who, 4), Some(false));
        // No entry for it: other.
        let other = acl(&[
            (USER_OBJ, 6, U),
            (USER, 6, 1234),
            (GROUP_OBJ, 0, U),
            (MASK, 6, U),
            (OTHER, 4, U),
        ]);
        assert_eq!(permits(&other, 0, 0, &who, 4), Some(true));
        // Owner: its own entry, unmasked.
        assert_eq!(permits(&masked, 900, 0, &who, 6), Some(true));
        assert_eq!(permits(b"junk", 0, 0, &who, 4), None);
    }
}
