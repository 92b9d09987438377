//! `scripts/install` and `scripts/uninstall`: a staged install (`--destdir`) of the debug
//! binaries puts every file in place, the installed daemon serves the installed CLI, and the
//! uninstall removes every file it installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The cargo target dir holding this test's `virtnet` (target/debug/virtnet -> target).
fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_virtnet"));
    bin.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Kills the daemon when the test ends, pass or fail.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn install_serves_and_uninstall_removes_everything() {
    let target = target_dir();
    for bin in ["virtnetd", "virtnet-vswitch"] {
        assert!(
            target.join("debug").join(bin).is_file(),
            "{} is missing: run `cargo build -p virtnetd -p virtnet-vhost-net` (scripts/test builds it)",
            target.join("debug").join(bin).display()
        );
    }
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    run(Command::new(repo().join("scripts/install"))
        .args([
            "--prefix",
            "/usr",
            "--profile",
            "debug",
            "--no-build",
            "--destdir",
        ])
        .arg(d)
        .env("CARGO_TARGET_DIR", &target));

    // Binaries, executable.
    use std::os::unix::fs::PermissionsExt;
    for bin in ["virtnet", "virtnetd", "virtnet-vswitch"] {
        let meta = std::fs::metadata(d.join("usr/bin").join(bin)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o755, "{bin}");
    }
    // Completions.
    for f in [
        "usr/share/bash-completion/completions/virtnet",
        "usr/share/zsh/site-functions/_virtnet",
        "usr/share/fish/vendor_completions.d/virtnet.fish",
    ] {
        let text = std::fs::read_to_string(d.join(f)).unwrap();
        assert!(text.contains("virtnet"), "{f}");
    }

    // The unit: its keys, and systemd's own check when systemd-analyze is there.
    let unit_path = d.join("usr/lib/systemd/system/virtnetd.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    for key in [
        "After=network.target",
        "Restart=on-failure",
        "StateDirectory=virtnet",
        "RuntimeDirectory=virtnet",
        "RuntimeDirectoryPreserve=yes",
        "KillMode=process",
        "ExecStart=/usr/bin/virtnetd ",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(key)),
            "{key} missing: {unit}"
        );
    }
    if on_path("systemd-analyze") {
        // verify checks ExecStart's binary exists: point it at the staged one.
        let staged = d.join("verify/virtnetd.service");
        std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
        let bindir = d.join("usr/bin/");
        std::fs::write(&staged, unit.replace("/usr/bin/", bindir.to_str().unwrap())).unwrap();
        let out = run(Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&staged));
        assert!(!out.contains("virtnetd.service:"), "{out}");
        std::fs::remove_dir_all(d.join("verify")).unwrap();
    }

    // Man pages: roff, and man renders them when it is installed.
    let man1 = d.join("usr/share/man/man1");
    for page in [
        "virtnet.1",
        "virtnet-list.1",
        "virtnet-net-define.1",
        "virtnetd.1",
    ] {
        let text = std::fs::read_to_string(man1.join(page)).unwrap();
        assert!(text.starts_with(".ie") || text.contains("\n.TH "), "{page}");
        if on_path("man") {
            let out = run(Command::new("man")
                .args(["-P", "cat", "-l"])
                .arg(man1.join(page))
                .env("MANWIDTH", "80"));
            assert!(out.contains("SYNOPSIS"), "{page}: {out}");
        }
    }

    // The installed daemon serves the installed CLI.
    let state = tempfile::tempdir().unwrap();
    let sock = state.path().join("virtnetd.sock");
    let daemon = Daemon(
        Command::new(d.join("usr/bin/virtnetd"))
            .arg("--state-dir")
            .arg(state.path().join("state"))
            .arg("--run-dir")
            .arg(state.path().join("run"))
            .arg("--socket")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while !sock.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "no socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    run(Command::new(d.join("usr/bin/virtnet"))
        .arg("--connect")
        .arg(&sock)
        .args(["list", "--all"]));
    drop(daemon);

    // Uninstall leaves no file behind.
    run(Command::new(repo().join("scripts/uninstall"))
        .args(["--prefix", "/usr", "--destdir"])
        .arg(d));
    assert_eq!(files_under(d), Vec::<PathBuf>::new());
}
