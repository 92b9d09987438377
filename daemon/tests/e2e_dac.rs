//! Files a confined QEMU opens by name (`virtnetd --qemu-user virtnet-qemu`): a root-owned
//! 0600 disk image and a root-owned chardev socket QEMU connects to are chowned to
//! `virtnet-qemu` for the VM's lifetime and given back at stop, after a failed start, and
//! after a daemon crash (QEMU alive or dead meanwhile); two VMs sharing an image keep it
//! until the last stops; a directory QEMU's user cannot enter refuses the start before
//! anything happens. The guest's kernel and initrd (0644 in 0755 directories) are never
//! touched.
//!
//! Only ownership is checked: it depends on the start plan's sandbox alone, whoever QEMU
//! runs as.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::e2e::{alive, wait_until};
use common::TestDaemon;
use virtnet_testkit::{
    bridge_nic, runtime, traversable_tempdir, vhostuser_nic, with_netns, TestDomain, VSwitch,
    VsPort,
};

const QEMU_USER: &str = "virtnet-qemu";

fn owner(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

fn xattr_set(p: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: both strings are NUL-terminated; a zero-size query writes nothing.
    unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}

/// A root-owned 0600 raw image in `dir`.
fn image(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// The test guest with `disk` (read-only if `readonly`), a serial port connecting to
/// `chr` if given, and `extra` devices.
fn domain(
    name: &str,
    dir: &Path,
    disk: &Path,
    readonly: bool,
    chr: Option<&Path>,
    nic: Option<String>,
) -> String {
    let guest = virtnet_testkit::guest();
    let mut d = TestDomain::new(name, dir.join(format!("{name}-serial.sock")));
    if let Some(n) = nic {
        d = d.nic(&n, "52:54:00:da:c0:01", None);
    }
    let mut devices = format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='vda' bus='virtio'/>{}</disk>",
        disk.display(),
        if readonly { "<readonly/>" } else { "" }
    );
    if let Some(c) = chr {
        devices.push_str(&format!(
            "<serial type='unix'><source mode='connect' path='{}'/><target port='1'/></serial>",
            c.display()
        ));
    }
    d.xml(guest)
        .replace("<memballoon", &format!("{devices}\n    <memballoon"))
}

fn start(d: &TestDaemon, name: &str) -> u64 {
    let (s, v) = d.post(&format!("/v1/domains/{name}/start"));
    assert_eq!(s, 200, "start {name}: {v}\n{}", d.log());
    v["pid"].as_u64().unwrap()
}

fn destroy(d: &TestDaemon, name: &str, pid: u64) {
    let (s, v) = d.post(&format!("/v1/domains/{name}/destroy"));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["leftovers"], serde_json::json!([]), "{v}");
    wait_until("QEMU to be gone", Duration::from_secs(15), || !alive(pid));
}

#[test]
fn files_qemu_opens_are_granted_and_given_back() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let user = virtnet_host::ensure_system_user(QEMU_USER, "virtnet QEMU").unwrap();
    let mine = (user.uid, user.gid);
    let guest = virtnet_testkit::guest();
    let kernel_before = owner(&guest.kernel);
    with_netns(move || {
        let tmp = tempfile::tempdir().unwrap();
        let files = traversable_tempdir();
        let disk = image(files.path(), "disk.img");
        let chr = files.path().join("chr.sock");
        let _listener = UnixListener::bind(&chr).unwrap();
        std::fs::set_permissions(&chr, std::fs::Permissions::from_mode(0o700)).unwrap();
        let root_disk = (0, 0, 0o600);
        let root_chr = (0, 0, 0o700);

        let mut d =
            TestDaemon::start_with_args(tmp.path(), Some(&qemu), &["--qemu-user", QEMU_USER]);
        let xml = domain("dac", files.path(), &disk, false, Some(&chr), None);
        assert_eq!(d.define(&xml).0, 201);

        // Start: chowned, mode kept, recorded with the file; the kernel untouched.
        let pid = start(&d, "dac");
        assert_eq!(owner(&disk), (mine.0, mine.1, 0o600));
        assert_eq!(owner(&chr), (mine.0, mine.1, 0o700));
        assert!(xattr_set(&disk, "trusted.virtnet.dac.owner"));
        assert_eq!(owner(&guest.kernel), kernel_before);
        let status = std::fs::read_to_string(d.base.join("run/dac.json")).unwrap();
        assert!(status.contains("\"restore_owner\""), "{status}");
        // Stop: given back.
        destroy(&d, "dac", pid);
        assert_eq!(owner(&disk), root_disk);
        assert_eq!(owner(&chr), root_chr);
        assert!(!xattr_set(&disk, "trusted.virtnet.dac.owner"));

        // Crash with QEMU alive: the restarted daemon finds the VM; destroy gives back.
        let pid = start(&d, "dac");
        d.kill9();
        d.restart();
        assert_eq!(owner(&disk).0, mine.0, "still granted while the VM runs");
        destroy(&d, "dac", pid);
        assert_eq!(owner(&disk), root_disk);
        assert_eq!(owner(&chr), root_chr);

        // Crash, and QEMU dies while no daemon runs: recovery gives back.
        let pid = start(&d, "dac");
        d.kill9();
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        wait_until("QEMU to die", Duration::from_secs(15), || !alive(pid));
        d.restart();
        wait_until(
            "recovery to give the image back",
            Duration::from_secs(15),
            || owner(&disk) == root_disk,
        );
        assert_eq!(owner(&chr), root_chr);

        // A failed start (its bridge does not exist: a host step after the grants fails)
        // gives back what it granted.
        let bad = domain(
            "dac-bad",
            files.path(),
            &disk,
            false,
            None,
            Some(bridge_nic("52:54:00:da:c0:01", "nobr0")),
        );
        assert_eq!(d.define(&bad).0, 201);
        let (s, v) = d.post("/v1/domains/dac-bad/start");
        assert_ne!(s, 200, "{v}");
        assert!(v.to_string().contains("nobr0"), "{v}");
        assert_eq!(owner(&disk), root_disk);
        assert!(!xattr_set(&disk, "trusted.virtnet.dac.owner"));

        // Two VMs share a read-only image: the first stop keeps it granted.
        let shared = image(files.path(), "shared.img");
        for n in ["dac-a", "dac-b"] {
            assert_eq!(
                d.define(&domain(n, files.path(), &shared, true, None, None))
                    .0,
                201
            );
        }
        let a = start(&d, "dac-a");
        let b = start(&d, "dac-b");
        assert_eq!(owner(&shared).0, mine.0);
        destroy(&d, "dac-a", a);
        assert_eq!(owner(&shared).0, mine.0, "dac-b still holds it");
        destroy(&d, "dac-b", b);
        assert_eq!(owner(&shared), root_disk);

        // A directory QEMU's user cannot enter: refused before anything happens.
        let closed = tempfile::tempdir().unwrap();
        std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let hidden = image(closed.path(), "hidden.img");
        assert_eq!(
            d.define(&domain(
                "dac-closed",
                files.path(),
                &hidden,
                false,
                None,
                None
            ))
            .0,
            201
        );
        let (s, v) = d.post("/v1/domains/dac-closed/start");
        assert_ne!(s, 200, "{v}");
        let msg = v.to_string();
        assert!(
            msg.contains(&format!("chmod o+x {}", closed.path().display())),
            "{msg}"
        );
        assert!(msg.contains("disk 'vda'"), "{msg}");
        assert!((400..500).contains(&s), "a user error: {s} {msg}");
        assert_eq!(owner(&hidden), root_disk);
        assert!(!d.base.join("run/vms/dac-closed").exists(), "no run dir");

        assert_eq!(owner(&guest.kernel), kernel_before);
        d.stop();
    });
}

/// A vhost-user socket QEMU connects to (`mode='client'`, the switch listens), owner-only
/// (0700): granted for a NIC present at start and at hot-plug, each held by its NIC's alias,
/// and given back when that NIC is detached, while the VM runs on; nothing left at stop.
#[test]
fn vhost_user_client_socket_follows_its_nic() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let user = virtnet_host::ensure_system_user(QEMU_USER, "virtnet QEMU").unwrap();
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let tmp = tempfile::tempdir().unwrap();
        let files = traversable_tempdir();
        let (p1, p2) = (files.path().join("vu1.sock"), files.path().join("vu2.sock"));
        let ports = [
            VsPort::new("p1", &p1, "server"),
            VsPort::new("p2", &p2, "server"),
        ];
        let _sw = VSwitch::start(files.path(), &ports, None);
        // The switch makes its sockets reachable by QEMU's group; owner-only, they need a
        // grant (a back end that does not share them).
        for p in [&p1, &p2] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let root_sock = owner(&p1);
        assert_eq!(owner(&p2), root_sock);
        assert_ne!(root_sock.0, user.uid, "the switch owns its sockets");
        let mut d =
            TestDaemon::start_with_args(tmp.path(), Some(&qemu), &["--qemu-user", QEMU_USER]);
        let serial = files.path().join("vu-serial.sock");
        let mut dom = TestDomain::new("vu", &serial).nic(
            &vhostuser_nic("52:54:00:da:c1:01", &p1, "client"),
            "52:54:00:da:c1:01",
            None,
        );
        dom.shared_memory = true;
        assert_eq!(d.define(&dom.xml(guest)).0, 201);

        let pid = start(&d, "vu");
        assert_eq!(owner(&p1), (user.uid, user.gid, 0o700));
        assert_eq!(owner(&p2), root_sock, "not used yet");

        // Hot-plug a second NIC on p2: granted, held by its alias.
        runtime().block_on(async {
            let _con = common::e2e::ready_console(&serial).await;
        });
        let mac2 = "52:54:00:da:c1:02";
        let (s, v) = common::e2e::post_json(
            &d,
            "/v1/domains/vu/devices",
            &serde_json::json!({ "xml": vhostuser_nic(mac2, &p2, "client"), "live": true }),
        );
        assert_eq!(s, 200, "{v}\n{}", d.log());
        assert_eq!(owner(&p2), (user.uid, user.gid, 0o700));
        let detach = |mac: &str| {
            let (s, v) = common::e2e::post_json(
                &d,
                "/v1/domains/vu/devices/detach",
                &serde_json::json!({
                    "xml": format!("<interface type='bridge'><mac address='{mac}'/><source bridge='x'/></interface>"),
                    "live": true,
                    "timeout_secs": 30,
                }),
            );
            assert_eq!(s, 200, "{v}\n{}", d.log());
        };
        detach(mac2);
        assert_eq!(owner(&p2), root_sock, "given back at detach");
        assert_eq!(owner(&p1).0, user.uid, "the start's NIC keeps its socket");
        // The NIC the VM started with holds its own socket too: unplugged, it is given back
        // while the VM runs on.
        detach("52:54:00:da:c1:01");
        assert_eq!(
            owner(&p1),
            root_sock,
            "the start's NIC's socket given back at detach"
        );

        destroy(&d, "vu", pid);
        assert_eq!(owner(&p1), root_sock);
        assert_eq!(owner(&p2), root_sock);
        d.stop();
    });
}

/// `chardev-change` to a socket QEMU connects to: the new socket is granted (held by the
/// device's alias), the one the VM started with or an earlier change granted is given back,
/// and a change to a source QEMU opens no path for gives back the last one; stop leaves
/// nothing granted.
#[test]
fn chardev_change_follows_the_same_rules() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let user = virtnet_host::ensure_system_user(QEMU_USER, "virtnet QEMU").unwrap();
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let tmp = tempfile::tempdir().unwrap();
        let files = traversable_tempdir();
        let socks = [files.path().join("c1.sock"), files.path().join("c2.sock")];
        let _listeners: Vec<UnixListener> = socks
            .iter()
            .map(|s| {
                let l = UnixListener::bind(s).unwrap();
                std::fs::set_permissions(s, std::fs::Permissions::from_mode(0o700)).unwrap();
                l
            })
            .collect();
        let root_sock = (0, 0, 0o700);
        let mut d =
            TestDaemon::start_with_args(tmp.path(), Some(&qemu), &["--qemu-user", QEMU_USER]);
        let start_sock = files.path().join("c0.sock");
        let _l0 = UnixListener::bind(&start_sock).unwrap();
        std::fs::set_permissions(&start_sock, std::fs::Permissions::from_mode(0o700)).unwrap();
        let dom = common::e2e::with_second_serial(
            &TestDomain::new("chrdac", files.path().join("chrdac.sock")).xml(guest),
            &format!(
                "type='unix'><source mode='connect' path='{}'/>",
                start_sock.display()
            ),
        );
        assert_eq!(d.define(&dom).0, 201);
        let pid = start(&d, "chrdac");
        let change = |body: serde_json::Value| {
            let (s, v) = common::e2e::post_json(&d, "/v1/domains/chrdac/chardevs/serial1", &body);
            assert_eq!(s, 200, "{body}: {v}\n{}", d.log());
        };
        let connect = |p: &Path| serde_json::json!({"type": "unix", "mode": "connect", "path": p, "live": true});
        assert_eq!(
            owner(&start_sock),
            (user.uid, user.gid, 0o700),
            "granted at start"
        );
        change(connect(&socks[0]));
        assert_eq!(owner(&socks[0]), (user.uid, user.gid, 0o700));
        assert_eq!(
            owner(&start_sock),
            root_sock,
            "the start's socket given back"
        );
        change(connect(&socks[1]));
        assert_eq!(owner(&socks[0]), root_sock, "the earlier socket given back");
        assert_eq!(owner(&socks[1]).0, user.uid);
        change(connect(&socks[1]));
        assert_eq!(
            owner(&socks[1]).0,
            user.uid,
            "the same socket again keeps its hold"
        );
        change(serde_json::json!({"type": "null", "live": true}));
        assert_eq!(owner(&socks[1]), root_sock);
        change(connect(&socks[0]));
        destroy(&d, "chrdac", pid);
        assert_eq!(owner(&socks[0]), root_sock, "given back at stop");
        d.stop();
    });
}
