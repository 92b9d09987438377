//! The `virtnet-vswitch` binary for tests that run virtnetd's networks.

use std::path::{Path, PathBuf};

/// `PROFILE_DIR/virtnet-vswitch` (`PROFILE_DIR` is `target/debug` or `target/release`, where
/// cargo puts the binaries under test). `cargo test --workspace` builds it; a narrower
/// `cargo test -p virtnetd` may not, so it is built here when missing, in the same profile.
/// Panics when it cannot be built.
pub fn vswitch_binary(profile_dir: &Path) -> PathBuf {
    let bin = profile_dir.join("virtnet-vswitch");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args([
            "build",
            "-p",
            "virtnet-vhost-net",
            "--bin",
            "virtnet-vswitch",
        ]);
        if profile_dir.file_name() == Some("release".as_ref()) {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().unwrap().success(),
            "cannot build virtnet-vswitch"
        );
    }
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}
