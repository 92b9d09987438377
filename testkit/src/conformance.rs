//! Conformance tables (per-case results against libvirt's corpus) that `scripts/test` prints
//! after the run: libtest captures what a passing test prints, so the tests write them here.

use std::path::PathBuf;

/// `<target>/conformance`, next to the profile dir of the running test binary.
pub fn dir() -> PathBuf {
    let profile = crate::vswitch::test_profile_dir();
    profile
        .parent()
        .expect("the profile dir is inside the target dir")
        .join("conformance")
}

/// Writes `table` to `<target>/conformance/<name>.txt` (replacing an older one) and prints it
/// (visible with `--nocapture`). Panics when it cannot be written.
pub fn write_table(name: &str, table: &str) {
    println!("{table}");
    let dir = dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let path = dir.join(format!("{name}.txt"));
    std::fs::write(&path, table).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
