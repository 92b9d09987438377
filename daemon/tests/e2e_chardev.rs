//! chardev-change with real QEMU and the test guest: the guest writes a tick to its second
//! serial port (ttyS1) every 0.2 s while the daemon switches that port's host side from a file
//! to a unix socket, to a pty, and to another file; the ticks arrive at each new back end, the
//! old one stops receiving, and the live (and with `persistent` the stored) definition says
//! where the port goes. virtnetd opens every socket QEMU listens on and every file it writes
//! (at start and at each change) and passes the fd: QEMU's command line names no such path,
//! and its fds and fdsets do not pile up over the changes.

mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::e2e::{fd_count, post_json, qmp, size, wait_until, with_second_serial, BOOT, CMD};
use common::TestDaemon;
use serde_json::json;
use virtnet_testkit::{runtime, with_netns, SerialConsole, TestDomain};

/// Reads from `r` on a thread until `want` was seen or `timeout` passed.
fn read_until(mut r: impl Read + Send + 'static, want: &str, timeout: Duration) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    let want = want.to_string();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&seen).contains(&want) {
                let _ = tx.send(());
                return;
            }
        }
    });
    rx.recv_timeout(timeout).is_ok()
}

/// Whether `p` keeps growing for a second.
fn grows(p: &Path) -> bool {
    let a = size(p);
    std::thread::sleep(Duration::from_millis(1000));
    size(p) > a
}

fn change(d: &TestDaemon, body: serde_json::Value) -> serde_json::Value {
    let (s, v) = post_json(d, "/v1/domains/chr/chardevs/serial1", &body);
    assert_eq!(s, 200, "{body}: {v}\n{}", d.log());
    v
}

fn xml(d: &TestDaemon, inactive: bool) -> String {
    let (_, v) = d.get(&format!("/v1/domains/chr/xml?inactive={inactive}"));
    v["xml"].as_str().unwrap().to_string()
}

#[test]
fn serial_follows_chardev_changes_while_the_guest_writes() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let serial = tmp.path().join("serial.sock");
        let file_a = tmp.path().join("ticks-a.log");
        let file_b = tmp.path().join("ticks-b.log");
        let sock = tmp.path().join("ticks.sock");
        let log = tmp.path().join("ticks.txt");
        let dom = with_second_serial(
            &TestDomain::new("chr", &serial).xml(guest),
            &format!(
                "type='file'><source path='{}'/><log file='{}' append='on'/>",
                file_a.display(),
                log.display()
            ),
        );
        assert_eq!(d.define(&dom).0, 201);
        let (s, v) = d.post("/v1/domains/chr/start");
        assert_eq!(s, 200, "{v}\n{}", d.log());
        let pid = v["pid"].as_u64().unwrap();
        // The monitor and the console socket come as listening fds, the file in an fdset.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(cmdline.contains("socket,id=charmonitor,fd="), "{cmdline}");
        assert!(cmdline.contains("socket,id=charserial0,fd="), "{cmdline}");
        assert!(
            cmdline.contains("file,id=charserial1,path=/dev/fdset/0,logfile=/dev/fdset/1"),
            "{cmdline}"
        );
        for p in [&serial, &file_a, &log] {
            assert!(!cmdline.contains(&p.display().to_string()), "{cmdline}");
        }
        // The fds QEMU holds in fdsets (a set whose fd was removed stays listed, empty, while
        // a chardev holds its copy).
        let fdsets = |d: &TestDaemon| {
            let sets = qmp(d, "chr", "query-fdsets", json!({})).unwrap();
            let mut fds: Vec<String> = sets
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["fds"].as_array().unwrap().clone())
                .map(|f| f.to_string())
                .collect();
            fds.sort();
            fds
        };
        let at_start = (fd_count(pid), fdsets(&d));
        let live = xml(&d, false);
        assert!(live.contains("<alias name='serial1'/>"), "{live}");

        runtime().block_on(async {
            let mut con = SerialConsole::connect(&serial, Duration::from_secs(10))
                .await
                .unwrap();
            con.wait_ready(BOOT).await.unwrap();
            let (out, rc) = con
                .run(
                    "(while true; do echo tick > /dev/ttyS1; sleep 0.2; done) </dev/null >/dev/null 2>&1 &",
                    CMD,
                )
                .await
                .unwrap();
            assert_eq!(rc, 0, "{out}");
        });
        wait_until("ticks in the first file", Duration::from_secs(10), || {
            size(&file_a) > 0
        });
        assert!(grows(&file_a));
        assert!(grows(&log), "the <log file> receives the ticks too");

        // file → unix socket (QEMU listens): a client receives ticks; the file stops growing.
        let v = change(&d, json!({"type": "unix", "path": sock, "live": true}));
        assert_eq!(v["live"], true);
        assert_eq!(v["config"], false);
        let client = UnixStream::connect(&sock).expect("QEMU listens on the new socket");
        assert!(
            read_until(client, "tick", Duration::from_secs(10)),
            "no tick on the unix socket"
        );
        assert!(!grows(&file_a), "the old file still receives ticks");
        let live = xml(&d, false);
        assert!(
            live.contains(&format!(
                "<serial type='unix'>\n      <source mode='bind' path='{}'/>",
                sock.display()
            )),
            "{live}"
        );
        assert!(
            xml(&d, true).contains(&file_a.display().to_string()),
            "config untouched"
        );

        // unix → pty: the pty QEMU allocated receives ticks; the socket is gone.
        let v = change(&d, json!({"type": "pty"}));
        let pty = v["path"].as_str().expect("the pty path").to_string();
        // A confined QEMU's pty is in its own devpts, reached through /proc/PID/root.
        assert!(
            pty.starts_with("/proc/") && pty.contains("/root/dev/pts/"),
            "{v}"
        );
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&pty)
            .unwrap();
        // Raw, no echo: echoing the ticks back into the guest's ttyS1 would loop.
        // SAFETY: termios calls on an open tty fd with a zeroed, then filled, struct.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(f.as_raw_fd(), &mut t), 0);
            libc::cfmakeraw(&mut t);
            assert_eq!(libc::tcsetattr(f.as_raw_fd(), libc::TCSANOW, &t), 0);
        }
        assert!(
            read_until(f, "tick", Duration::from_secs(10)),
            "no tick on {pty}"
        );
        assert!(!sock.exists(), "the socket QEMU listened on is removed");
        assert!(xml(&d, false).contains(&format!("<source path='{pty}'/>")));

        // pty → another file, live and in the definition.
        let v = change(
            &d,
            json!({"type": "file", "path": file_b, "persistent": true}),
        );
        assert_eq!(
            (v["live"].as_bool(), v["config"].as_bool()),
            (Some(true), Some(true))
        );
        wait_until("ticks in the second file", Duration::from_secs(10), || {
            size(&file_b) > 0
        });
        assert!(grows(&file_b));
        for inactive in [false, true] {
            let x = xml(&d, inactive);
            assert!(
                x.contains(&format!("<source path='{}'/>", file_b.display())),
                "inactive={inactive}: {x}"
            );
        }
        let stored = std::fs::read_to_string(tmp.path().join("state/domains/chr.xml")).unwrap();
        assert!(stored.contains(&file_b.display().to_string()));

        // A back end QEMU cannot use: refused, nothing changes.
        let before = xml(&d, false);
        let (s, v) = post_json(
            &d,
            "/v1/domains/chr/chardevs/serial1",
            &json!({"type": "file", "path": "/nonexistent-dir/x.log"}),
        );
        // QEMU refused the path the user gave: the user's error.
        assert_eq!(
            (s, v["error"]["kind"].as_str()),
            (409, Some("refused")),
            "{v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains("serial1"),
            "{v}"
        );
        assert_eq!(xml(&d, false), before);
        assert!(grows(&file_b), "the guest's ticks still arrive");
        // Back to a file and to a socket: nothing piles up in QEMU (the fdsets of the changes
        // are removed, the getfd names consumed), whatever the changes were.
        change(&d, json!({"type": "unix", "path": sock}));
        let client = UnixStream::connect(&sock).expect("QEMU listens on the new socket");
        assert!(read_until(client, "tick", Duration::from_secs(10)));
        change(&d, json!({"type": "file", "path": file_a, "append": true}));
        assert!(
            !sock.exists(),
            "virtnetd removes the socket nobody listens on"
        );
        wait_until(
            "ticks appended to the first file",
            Duration::from_secs(10),
            || grows(&file_a),
        );
        assert_eq!((fd_count(pid), fdsets(&d)), at_start);
        assert!(grows(&log), "the log follows every change");

        let started = Instant::now();
        let (s, v) = d.post("/v1/domains/chr/destroy");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["leftovers"], json!([]), "{v}");
        assert!(started.elapsed() < Duration::from_secs(15));
        d.stop();
    });
}
