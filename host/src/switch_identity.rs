//! Who `virtnet-vswitch` runs as, and how its directories are shared with QEMU.
//!
//! The switch runs as the system user `virtnet-switch` (created when missing), with one
//! supplementary group: QEMU's (`virtnet-qemu`), and nothing else (no capability; see
//! [`Confinement`]). A switch directory (virtnetd's `RUN_DIR/networks/NAME/`, a test's
//! scratch dir) is owned `virtnet-switch:virtnet-qemu`, mode `2770`:
//! - setgid, so every socket created in it, by the switch or by QEMU, gets group
//!   `virtnet-qemu`;
//! - the switch creates its sockets with umask 007 (`0770`): QEMU, in that group, connects;
//! - QEMU creates its listening sockets with umask 002 (`0775`, group-writable): the switch,
//!   in that group, connects;
//! - the switch's control socket is `0600` (its user; root, i.e. virtnetd, passes anyway) and
//!   the switch also checks the peer's uid: QEMU cannot drive the switch;
//! - nobody else can enter the directory.
//!
//! Nothing is chowned while VMs run: the directory is prepared once, before the switch starts.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::confine::Confinement;
use crate::error::Result;
use crate::sysuser::ensure_system_user;

/// The user the switch runs as.
pub const SWITCH_USER: &str = "virtnet-switch";
/// The user QEMU runs as by default; its primary group is the group the switch shares its
/// sockets with.
pub const QEMU_USER: &str = "virtnet-qemu";

/// The switch's identity and the group it shares sockets with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchIdentity {
    /// How the switch is started: `virtnet-switch`, supplementary group `qemu_gid` only.
    pub confinement: Confinement,
    /// The primary group of the user QEMU runs as.
    pub qemu_gid: u32,
}

impl SwitchIdentity {
    /// Looks up (creating when missing) [`SWITCH_USER`] and `qemu_user` (the user QEMU runs
    /// as, normally [`QEMU_USER`]).
    pub fn ensure(qemu_user: &str) -> Result<SwitchIdentity> {
        let switch = ensure_system_user(SWITCH_USER, "virtnet vhost-user switch")?;
        let qemu = ensure_system_user(qemu_user, "virtnet QEMU")?;
        Ok(SwitchIdentity {
            confinement: Confinement::new(&switch, vec![qemu.gid])?,
            qemu_gid: qemu.gid,
        })
    }

    /// Makes `dir` (which must exist) a switch directory: owned by the switch's user and
    /// QEMU's group, mode `2770` (see the module docs).
    pub fn prepare_dir(&self, dir: &Path) -> io::Result<()> {
        std::os::unix::fs::chown(dir, Some(self.confinement.uid), Some(self.qemu_gid))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2770))
    }
}
