//! The test guest (`scripts/build-guest`): built once per test process, cached on disk.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The test guest's files and its recommended kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestArtifacts {
    /// The directory holding them (`<repo>/.cache/guest`).
    pub dir: PathBuf,
    /// Uncompressed ELF kernel (boots through QEMU's PVH entry).
    pub kernel: PathBuf,
    /// The initramfs (busybox, the guest scripts, NIC modules).
    pub initrd: PathBuf,
    /// The kernel command line to start from; append `virtnet.ip=MAC=ADDR/LEN,...`.
    pub cmdline: String,
    /// The guest kernel's version.
    pub kernel_version: String,
}

/// The repository root (where `scripts/` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit is one level below the repository root")
        .to_path_buf()
}

/// Builds the test guest with `scripts/build-guest` the first time it is called in this
/// process (the script itself skips the work when its inputs have not changed) and returns its
/// artifacts. Panics with the script's output if the build fails: run `scripts/setup`.
pub fn guest() -> &'static GuestArtifacts {
    static GUEST: OnceLock<GuestArtifacts> = OnceLock::new();
    GUEST.get_or_init(|| {
        let root = repo_root();
        let dir = root.join(".cache/guest");
        let out = Command::new(root.join("scripts/build-guest"))
            .arg(&dir)
            .output()
            .expect("run scripts/build-guest");
        assert!(
            out.status.success(),
            "scripts/build-guest failed (run scripts/setup?):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        read_artifacts(&dir)
    })
}

fn read_artifacts(dir: &Path) -> GuestArtifacts {
    let text = std::fs::read_to_string(dir.join("guest.json"))
        .unwrap_or_else(|e| panic!("read {}/guest.json: {e}", dir.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("guest.json is JSON");
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("guest.json has no string '{k}'"))
            .to_string()
    };
    GuestArtifacts {
        dir: dir.to_path_buf(),
        kernel: dir.join(s("kernel")),
        initrd: dir.join(s("initrd")),
        cmdline: s("cmdline"),
        kernel_version: s("kernel_version"),
    }
}

/// What an end-to-end test needs: root and QEMU ([`crate::require`]). Returns QEMU's path, or
/// `None` when one is missing and the test is to be counted as ignored (then it returns early).
pub fn e2e_qemu() -> Option<PathBuf> {
    if !crate::require(&[crate::Need::Root, crate::Need::Qemu]) {
        return None;
    }
    crate::need::qemu_path()
}
