//! Temporary directories a confined QEMU can reach paths in.

use std::os::unix::fs::PermissionsExt;

/// A temporary directory with mode 0711: others may pass through it (search) but not list
/// it. `tempfile::tempdir()` makes 0700 directories, which a QEMU running as its own user
/// (`virtnet-qemu`) cannot enter, so a vhost-user socket, disk image or switch socket it must
/// open by name goes in one of these.
pub fn traversable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
        .expect("make the temporary directory traversable (0711)");
    dir
}
