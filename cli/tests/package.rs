//! `scripts/package`: the Debian package of the debug binaries holds every file, the maintainer
//! scripts and the dependencies; `dpkg -i` into a scratch root (its own dpkg database, the
//! maintainer scripts run against shims of useradd, groupadd, getent and systemctl: the
//! machine's users and services are left alone) installs it, the packaged virtnetd serves the
//! packaged `virtnet list`, installing it again (an upgrade) creates no user twice, and `dpkg -r`
//! stops the service and removes every file.

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

/// Kills the daemon when the test ends, pass or fail.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Shims in `dir` that log their arguments to `dir/log`; `getent` finds the users and groups
/// when `users_exist`, the others succeed.
fn shims(dir: &Path, users_exist: bool) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("log");
    for (name, status) in [
        ("getent", if users_exist { 0 } else { 2 }),
        ("useradd", 0),
        ("groupadd", 0),
        ("systemctl", 0),
    ] {
        let path = dir.join(name);
        let script = format!(
            "#!/bin/sh\necho \"{name} $*\" >>'{}'\nexit {status}\n",
            log.display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// `dpkg ARGS` on the scratch root `root`, in a private mount namespace where /run is a fresh
/// tmpfs holding /run/systemd/system (so the maintainer scripts take their systemd branch),
/// with the shims first on PATH.
fn dpkg(root: &Path, shim_dir: &Path, args: &[&str]) -> String {
    let path = format!(
        "{}:{}",
        shim_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg("mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && exec dpkg \"$@\"")
        .arg("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--force-depends"])
        .args(args)
        .env("PATH", path))
}

#[test]
fn package_installs_serves_and_removes() {
    let target = target_dir();
    for bin in ["virtnetd", "virtnet-vswitch"] {
        assert!(
            target.join("debug").join(bin).is_file(),
            "{} is missing: run `cargo build -p virtnetd -p virtnet-vhost-net` (scripts/test builds it)",
            target.join("debug").join(bin).display()
        );
    }
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();
    let start = Instant::now();
    let deb = run(Command::new(repo().join("scripts/package"))
        .args(["--profile", "debug", "--no-build", "--compression", "gzip"])
        .arg("--out")
        .arg(s.join("out"))
        .env("CARGO_TARGET_DIR", &target));
    let deb = PathBuf::from(deb.trim());
    eprintln!("scripts/package: {:?}", start.elapsed());

    // The control file and the maintainer scripts.
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    let depends = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends: {info}"));
    for dep in ["qemu-system-x86", "iproute2", "nftables", "libc6 (>= 2."] {
        assert!(depends.contains(dep), "{dep} not in Depends: {depends}");
    }
    for script in ["postinst", "prerm", "postrm"] {
        assert!(info.contains(&format!(" {script} ")), "{script}: {info}");
    }
    assert!(info.contains(" Package: virtnet\n"), "{info}");

    // The files.
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for file in [
        "./usr/bin/virtnet",
        "./usr/bin/virtnetd",
        "./usr/bin/virtnet-vswitch",
        "./lib/systemd/system/virtnetd.service",
        "./usr/share/bash-completion/completions/virtnet",
        "./usr/share/zsh/site-functions/_virtnet",
        "./usr/share/fish/vendor_completions.d/virtnet.fish",
        "./usr/share/man/man1/virtnet.1.gz",
        "./usr/share/man/man1/virtnet-list.1.gz",
        "./usr/share/man/man1/virtnetd.1.gz",
        "./usr/share/doc/virtnet/copyright",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(&format!(" {file}"))),
            "{file} not in the package: {contents}"
        );
    }
    assert!(
        !contents.contains("install-manifest"),
        "dpkg owns the files, scripts/uninstall must not: {contents}"
    );

    // dpkg -i into a scratch root with its own database.
    let root = s.join("root");
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let shim_dir = s.join("shims");
    shims(&shim_dir, false);
    dpkg(&root, &shim_dir, &["-i", deb.to_str().unwrap()]);
    let log = std::fs::read_to_string(shim_dir.join("log")).unwrap();
    let calls: Vec<&str> = log.lines().collect();
    for call in [
        "groupadd --system virtnet",
        "useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment virtnet QEMU virtnet-qemu",
        "useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment virtnet vhost-user switch virtnet-switch",
        "systemctl daemon-reload",
        "systemctl enable virtnetd.service",
        "systemctl restart virtnetd.service",
    ] {
        assert!(calls.contains(&call), "postinst did not run `{call}`: {log}");
    }
    let status = run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["-s", "virtnet"]));
    assert!(status.contains("Status: install ok installed"), "{status}");

    // Installing again (an upgrade): prerm stops the old daemon, postinst creates no user that
    // exists and restarts the service.
    shims(&shim_dir, true);
    std::fs::write(shim_dir.join("log"), "").unwrap();
    dpkg(&root, &shim_dir, &["-i", deb.to_str().unwrap()]);
    let log = std::fs::read_to_string(shim_dir.join("log")).unwrap();
    assert!(
        !log.contains("useradd") && !log.contains("groupadd"),
        "{log}"
    );
    let stop = log.find("systemctl stop virtnetd.service\n");
    let restart = log.find("systemctl restart virtnetd.service\n");
    assert!(
        matches!((stop, restart), (Some(s), Some(r)) if s < r),
        "an upgrade stops then restarts: {log}"
    );

    // The packaged daemon serves the packaged CLI.
    let sock = s.join("virtnetd.sock");
    let daemon = Daemon(
        Command::new(root.join("usr/bin/virtnetd"))
            .arg("--state-dir")
            .arg(s.join("state"))
            .arg("--run-dir")
            .arg(s.join("run"))
            .arg("--socket")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let waited = Instant::now();
    while !sock.exists() {
        assert!(waited.elapsed() < Duration::from_secs(20), "no socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = run(Command::new(root.join("usr/bin/virtnet"))
        .arg("--connect")
        .arg(&sock)
        .args(["list", "--all"]));
    assert!(list.contains("Name"), "{list}");
    drop(daemon);

    // dpkg -r stops the service (prerm) and removes every file it installed.
    std::fs::write(shim_dir.join("log"), "").unwrap();
    dpkg(&root, &shim_dir, &["-r", "virtnet"]);
    let log = std::fs::read_to_string(shim_dir.join("log")).unwrap();
    assert!(
        log.lines().any(|l| l == "systemctl stop virtnetd.service"),
        "prerm did not stop the service: {log}"
    );
    for file in ["usr/bin/virtnetd", "lib/systemd/system/virtnetd.service"] {
        assert!(!root.join(file).exists(), "{file} left after dpkg -r");
    }
    eprintln!("total: {:?}", start.elapsed());
}
