//! `virtnet console` with the test guest (TCG, confined QEMU, its serial port a unix socket
//! QEMU listens on), run on a pty as a user would: a command typed reaches the guest's shell
//! and its output comes back; Ctrl+] leaves with status 0 and the terminal's settings back;
//! a second client is refused (409, naming the holder and --force); `--force` takes over.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Daemon;
use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{self, LocalModes};
use virtnet_testkit::{runtime, with_netns, SerialConsole, TestDomain};

const BOOT: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(20);

/// Everything read from a stream so far (a thread keeps reading it).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<u8>>>);

impl Seen {
    fn reading(mut r: impl Read + Send + 'static) -> Seen {
        let seen = Seen::default();
        let s = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    return;
                }
                s.0.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        seen
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn wait_for(&self, want: &str) {
        let end = Instant::now() + WAIT;
        while !self.text().contains(want) {
            assert!(
                Instant::now() < end,
                "no {want:?} within {WAIT:?}; got:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A pty pair: the master (ours) and the terminal side (the CLI's stdin/out/err).
fn pty() -> (File, OwnedFd) {
    let m = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    rustix::pty::grantpt(&m).unwrap();
    rustix::pty::unlockpt(&m).unwrap();
    let name = rustix::pty::ptsname(&m, Vec::new()).unwrap();
    let s = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY,
        Mode::empty(),
    )
    .unwrap();
    (File::from(m), s)
}

fn wait_exit(c: &mut Child) -> std::process::ExitStatus {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > end {
            let _ = c.kill();
            panic!("virtnet console did not exit within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn console(d: &Daemon, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_virtnet"));
    c.arg("--connect")
        .arg(&d.socket)
        .arg("console")
        .args(args)
        .env_remove("VIRTNET_CONNECT");
    c
}

/// Waits until the console put `tty` in raw mode (no line editing, no echo).
fn wait_raw(tty: &OwnedFd) {
    let end = Instant::now() + WAIT;
    while termios::tcgetattr(tty)
        .unwrap()
        .local_modes
        .intersects(LocalModes::ICANON | LocalModes::ECHO)
    {
        assert!(Instant::now() < end, "the terminal never went raw");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many of this process's fds (the daemon runs in it) link to something starting with
/// `prefix` (`/dev/pts/`, `socket:`).
fn fds(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with(prefix))
        .count()
}

/// Waits until [`fds`] of `prefix` is back to `n`: the relay let go of what it opened.
fn wait_fds(prefix: &str, n: usize) {
    let end = Instant::now() + WAIT;
    while fds(prefix) != n {
        assert!(
            Instant::now() < end,
            "{} fds on {prefix} left open (was {n})",
            fds(prefix)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The terminal settings the console changes and must put back.
fn modes(fd: &OwnedFd) -> String {
    let t = termios::tcgetattr(fd).unwrap();
    format!(
        "{:?} {:?} {:?} {:?}",
        t.input_modes, t.output_modes, t.control_modes, t.local_modes
    )
}

/// The tests count this process's pty and socket fds (the daemon runs in it): one test at a
/// time, or one's pty pair shows up in the other's counts.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn console_relays_the_guest_shell_to_one_client_at_a_time() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let d = Daemon::start_with_qemu(&qemu);
        let serial = d.dir.path().join("con.serial");
        let xml = d.dir.path().join("con.xml");
        std::fs::write(&xml, TestDomain::new("con", &serial).xml(guest)).unwrap();
        let out = d.virtnet(&["define", xml.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        let out = d.virtnet(&["start", "con"]);
        assert!(out.status.success(), "{out:?}");
        // Booted to its shell; then the socket is free for the console (QEMU serves one client).
        runtime().block_on(async {
            let mut con = SerialConsole::connect(&serial, Duration::from_secs(10))
                .await
                .unwrap();
            con.wait_ready(BOOT).await.unwrap();
        });

        let sockets = fds("socket:");
        // A: on a pty, in raw mode while attached.
        let (master, tty) = pty();
        let before = modes(&tty);
        let mut a = console(&d, &["con"])
            .stdin(Stdio::from(tty.try_clone().unwrap()))
            .stdout(Stdio::from(tty.try_clone().unwrap()))
            .stderr(Stdio::from(tty.try_clone().unwrap()))
            .spawn()
            .unwrap();
        let seen = Seen::reading(master.try_clone().unwrap());
        let mut keys = master;
        seen.wait_for("Connected to domain 'con'\r\nEscape character is ^]");
        wait_raw(&tty);
        // The shell computes it: the echo of what was typed does not contain the answer.
        keys.write_all(b"echo hello-$((6*7))-there\r").unwrap();
        seen.wait_for("hello-42-there");

        // B: refused while A holds it, naming A and --force.
        let out = console(&d, &["con"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{out:?}");
        assert!(
            err.contains(&format!("in use by pid {}", a.id())) && err.contains("--force"),
            "{err}"
        );

        // A leaves with Ctrl+]: status 0, the terminal as it was.
        keys.write_all(&[0x1d]).unwrap();
        let status = wait_exit(&mut a);
        assert!(status.success(), "{status:?}\n{}", seen.text());
        assert_eq!(
            modes(&tty),
            before,
            "the terminal's settings were not put back"
        );

        // A again, then C takes over with --force: A is told and exits 0, C gets the shell.
        let mut a = console(&d, &["con", "--devname", "serial0"])
            .stdin(Stdio::from(tty.try_clone().unwrap()))
            .stdout(Stdio::from(tty.try_clone().unwrap()))
            .stderr(Stdio::from(tty.try_clone().unwrap()))
            .spawn()
            .unwrap();
        let mark = seen.text().len();
        let end = Instant::now() + WAIT;
        while !seen.text()[mark..].contains("Escape character") {
            assert!(Instant::now() < end, "A did not reconnect: {}", seen.text());
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut c = console(&d, &["con", "--force"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let c_out = Seen::reading(c.stdout.take().unwrap());
        c_out.wait_for("Connected to domain 'con'");
        let status = wait_exit(&mut a);
        assert!(status.success(), "{status:?}");
        assert!(
            seen.text()[mark..].contains("another client took this console over with --force"),
            "{}",
            seen.text()
        );
        assert_eq!(modes(&tty), before);
        let mut c_in = c.stdin.take().unwrap();
        c_in.write_all(b"echo forced-$((2+3))-ok\r").unwrap();
        c_out.wait_for("forced-5-ok");
        drop(c_in); // end of input: C leaves
        let status = wait_exit(&mut c);
        assert!(status.success(), "{status:?}");

        // SIGTERM while raw: the terminal is put back too.
        let mut a = console(&d, &["con"])
            .stdin(Stdio::from(tty.try_clone().unwrap()))
            .stdout(Stdio::from(tty.try_clone().unwrap()))
            .stderr(Stdio::from(tty.try_clone().unwrap()))
            .spawn()
            .unwrap();
        wait_raw(&tty);
        let kill = Command::new("kill")
            .args(["-TERM", &a.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = wait_exit(&mut a);
        assert!(status.success(), "{status:?}");
        assert_eq!(modes(&tty), before, "SIGTERM left the terminal raw");
        wait_fds("socket:", sockets);

        let out = d.virtnet(&["destroy", "con"]);
        assert!(out.status.success(), "{out:?}");
    });
}

/// A pty serial port (ttyS1): virtnetd opens a confined QEMU's pty through
/// `/proc/PID/root/dev/pts/N` and relays both ways.
#[test]
fn console_reaches_a_pty_serial_port() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    with_netns(move || {
        let d = Daemon::start_with_qemu(&qemu);
        let serial = d.dir.path().join("pty.serial");
        let xml = d.dir.path().join("pty.xml");
        let dom = TestDomain::new("ptyvm", &serial)
            .xml(guest)
            .replacen(
                "<memballoon",
                "<serial type='pty'><target port='1'/></serial>\n    <memballoon",
                1,
            )
            .replace("8250.nr_uarts=1", "8250.nr_uarts=2");
        std::fs::write(&xml, dom).unwrap();
        assert!(d
            .virtnet(&["define", xml.to_str().unwrap()])
            .status
            .success());
        let out = d.virtnet(&["start", "ptyvm"]);
        assert!(out.status.success(), "{out:?}");
        let rt = runtime();
        let mut con = rt.block_on(async {
            let mut con = SerialConsole::connect(&serial, Duration::from_secs(10))
                .await
                .unwrap();
            con.wait_ready(BOOT).await.unwrap();
            // ttyS1 raw: what the console sends arrives as sent.
            let (o, rc) = con
                .run(
                    "(stty raw -echo; head -c 12 > /tmp/in) </dev/ttyS1 >/dev/null 2>&1 &",
                    WAIT,
                )
                .await
                .unwrap();
            assert_eq!(rc, 0, "{o}");
            con
        });
        let ptys = fds("/dev/pts/");
        let mut c = console(&d, &["ptyvm", "--devname", "serial1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let c_out = Seen::reading(c.stdout.take().unwrap());
        c_out.wait_for("Connected to domain 'ptyvm'");
        assert!(fds("/dev/pts/") > ptys, "virtnetd opened QEMU's pty");
        // Guest → console.
        rt.block_on(async {
            let (o, rc) = con
                .run("echo from-guest-$((3*4)) > /dev/ttyS1", WAIT)
                .await
                .unwrap();
            assert_eq!(rc, 0, "{o}");
        });
        c_out.wait_for("from-guest-12");
        // Console → guest.
        let mut c_in = c.stdin.take().unwrap();
        c_in.write_all(b"to-the-guest").unwrap();
        rt.block_on(async {
            let end = Instant::now() + WAIT;
            loop {
                let (o, _) = con.run("cat /tmp/in; echo", WAIT).await.unwrap();
                if o.contains("to-the-guest") {
                    break;
                }
                assert!(Instant::now() < end, "the guest got {o:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        c_in.write_all(&[0x1d]).unwrap();
        let status = wait_exit(&mut c);
        assert!(status.success(), "{status:?}");
        wait_fds("/dev/pts/", ptys);
        drop(con);
        assert!(d.virtnet(&["destroy", "ptyvm"]).status.success());
    });
}
