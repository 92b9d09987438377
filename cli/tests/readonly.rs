//! The read-only API socket as a non-root user: a member of the group `virtnet` queries with
//! `virtnet --readonly` and gets 403 for every change (nothing changes); a user outside the
//! group cannot connect at all, and neither can reach the root-only socket.
//!
//! Needs root (it creates two users, removed after, and the group `virtnet` when missing).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::Daemon;

const XML: &str = "<domain type='qemu'>
  <name>ro1</name>
  <memory unit='MiB'>64</memory>
  <os><type>hvm</type></os>
</domain>
";

/// A user created for one test (`useradd`), removed (`userdel`) when dropped.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create(name: &str, groups: &[&str]) -> TestUser {
        let _ = Command::new("userdel").arg(name).output();
        let mut cmd = Command::new("useradd");
        cmd.args(["--no-create-home", "--shell", "/usr/sbin/nologin"]);
        if !groups.is_empty() {
            cmd.args(["--groups", &groups.join(",")]);
        }
        let out = cmd.arg(name).output().expect("run useradd");
        assert!(out.status.success(), "useradd {name}: {out:?}");
        let u = virtnet_host::lookup_user(name).unwrap().expect("created");
        TestUser {
            name: name.into(),
            uid: u.uid,
            gid: u.gid,
        }
    }

    /// `virtnet` as this user: its uid, its own gid and exactly `groups` as supplementary
    /// groups (setpriv sets all three before exec).
    fn virtnet(&self, socket: &Path, groups: &[u32], args: &[&str]) -> Output {
        let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid));
        if groups.is_empty() {
            cmd.arg("--clear-groups");
        } else {
            cmd.arg(format!("--groups={}", groups.join(",")));
        }
        cmd.arg(env!("CARGO_BIN_EXE_virtnet"))
            .arg("--connect")
            .arg(socket)
            .args(args)
            .env_remove("VIRTNET_CONNECT")
            .output()
            .expect("run setpriv")
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// One raw HTTP/1.1 request on `socket`: the whole answer.
fn raw(socket: &Path, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: virtnetd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refused(o: &Output, needle: &str) {
    assert!(!o.status.success(), "succeeded: {}", text(o));
    let t = text(o);
    assert!(t.contains(needle), "'{needle}' not in: {t}");
}

#[test]
fn readonly_socket_serves_its_group_queries_only() {
    let d = Daemon::start_with(|c| c.ro_socket = Some(c.run_dir.join("virtnetd-ro.sock")));
    let ro = d.socket.with_file_name("virtnetd-ro.sock");
    let gid = virtnet_host::lookup_group("virtnet")
        .unwrap()
        .expect("virtnetd created the group virtnet");
    // The sockets: the API one root's alone, the read-only one root:virtnet 0660.
    let rw_meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(rw_meta.mode() & 0o777, 0o600);
    let ro_meta = std::fs::metadata(&ro).unwrap();
    assert_eq!(
        (ro_meta.mode() & 0o777, ro_meta.uid(), ro_meta.gid()),
        (0o660, 0, gid)
    );
    // The users need to reach the run directory (a root-only temp dir here).
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let xml_dir = d.dir.path().join("xml");
    std::fs::create_dir(&xml_dir).unwrap();
    std::fs::set_permissions(&xml_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let vm1 = xml_dir.join("ro1.xml");
    let vm2 = xml_dir.join("ro2.xml");
    std::fs::write(&vm1, XML).unwrap();
    std::fs::write(&vm2, XML.replace("ro1", "ro2")).unwrap();
    ok(&d.virtnet(&["define", vm1.to_str().unwrap()]));
    let before = ok(&d.virtnet(&["list", "--all"]));

    let member = TestUser::create("vnro-member", &["virtnet"]);
    let outsider = TestUser::create("vnro-outsider", &[]);

    // Queries through the read-only socket.
    let list = ok(&member.virtnet(&d.socket, &[gid], &["--readonly", "list", "--all"]));
    assert!(list.contains("ro1") && list.contains("shut off"), "{list}");
    let info = ok(&member.virtnet(&d.socket, &[gid], &["-r", "dominfo", "ro1"]));
    assert!(info.contains("ro1"), "{info}");
    ok(&member.virtnet(&d.socket, &[gid], &["-r", "dumpxml", "ro1"]));

    // Changes: 403, naming the read-write socket.
    let rw = d.socket.display().to_string();
    for args in [
        vec!["start", "ro1"],
        vec!["destroy", "ro1"],
        vec!["undefine", "ro1"],
        vec!["define", vm2.to_str().unwrap()],
        vec!["console", "ro1"],
    ] {
        let mut all = vec!["--readonly"];
        all.extend(&args);
        let o = member.virtnet(&d.socket, &[gid], &all);
        refused(&o, "is read-only");
        refused(&o, &rw);
    }
    // The same through the raw API: 403 with kind read_only, for QMP passthrough too.
    for (method, path) in [
        ("POST", "/v1/domains/ro1/start"),
        ("POST", "/v1/domains/ro1/qmp"),
        ("POST", "/v1/domains/ro1/console"),
        ("DELETE", "/v1/domains/ro1"),
    ] {
        let answer = raw(&ro, method, path);
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(answer.contains("\"kind\":\"read_only\""), "{answer}");
    }
    assert!(raw(&ro, "GET", "/v1/domains/ro1").starts_with("HTTP/1.1 200"));
    // Nothing changed.
    assert_eq!(ok(&d.virtnet(&["list", "--all"])), before);
    assert!(!d.virtnet(&["dominfo", "ro2"]).status.success());

    // The read-write socket stays root's, even for the group.
    refused(
        &member.virtnet(&d.socket, &[gid], &["list"]),
        "permission denied",
    );
    // Outside the group: no connection to either socket (EACCES).
    refused(
        &outsider.virtnet(&d.socket, &[], &["--readonly", "list"]),
        "permission denied",
    );
    refused(
        &outsider.virtnet(&d.socket, &[], &["list"]),
        "permission denied",
    );
}
