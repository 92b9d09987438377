//! Benchmark (not a test): what confining QEMU costs. Two virtnetd processes run side by side
//! in one private network namespace, the default one (QEMU sandboxed) and one started with
//! `--sandbox off`, each with its own state and run directories; rounds alternate between them
//! (A B A B ...), so a change of the machine's load affects both sides alike. From one run it
//! prints, per side, the medians of
//! - (a) `virtnet start NAME` spawned → the guest's first console line,
//! - (b) `virtnet attach-interface NAME --type bridge --source br0 --live` (a bridge NIC
//!   hot-plug, the CLI process end to end) into a booted guest,
//! - (c) `virtnet start NAME` itself (the CLI process's wall time),
//!
//! and the ratio sandboxed/unsandboxed (of the medians, and the median of the per-round
//! ratios), and writes a markdown table and an SVG plot to `daemon/bench-results/`.
//! Run it with `scripts/bench-sandbox` (root; builds the release binaries first).
//!
//! Knobs: `BENCH_RUNS=N` (rounds per side, default 10 for start and 20 for hot-plug),
//! `BENCH_OFF_BIN=PATH` (another virtnetd build for the unsandboxed side, run without
//! `--sandbox off`: e.g. main's build from before confinement), `BENCH_LOG=FILTER`
//! (virtnetd's log filter, default `warn`; logs are `virtnetd-on.log` / `-off.log` in the
//! work dir).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Start rounds per side.
const START_RUNS: usize = 10;
/// Hot-plug rounds per side.
const HOTPLUG_RUNS: usize = 20;
/// Pause before each timed operation (the guest handles the previous hot-plug event).
const SETTLE: Duration = Duration::from_millis(100);
const NIC_MAC: &str = "52:54:00:00:5b:01";
/// libvirt 9.0's `virsh start` wall time on these machines (issue 9).
const LIBVIRT_START: Duration = Duration::from_millis(361);
/// virtnet's `virtnet start` wall time before confinement (issue 9).
const BEFORE_START: Duration = Duration::from_millis(126);

fn runs(default: usize) -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One virtnetd and where it keeps things.
struct Side {
    label: &'static str,
    virtnetd: PathBuf,
    args: Vec<String>,
    state: PathBuf,
    run: PathBuf,
    socket: PathBuf,
    work: PathBuf,
    daemon: Option<Child>,
}

impl Side {
    /// A side keeping its run dir and work files in `run_root/label`, its state in
    /// `state_root/label`.
    fn new(
        label: &'static str,
        run_root: &Path,
        state_root: &Path,
        virtnetd: PathBuf,
        args: &[&str],
    ) -> Side {
        let dir = run_root.join(label);
        std::fs::create_dir_all(&dir).unwrap();
        let run = dir.join("run");
        Side {
            label,
            virtnetd,
            args: args.iter().map(|a| a.to_string()).collect(),
            state: state_root.join(label),
            socket: run.join("virtnetd.sock"),
            run,
            work: dir,
            daemon: None,
        }
    }

    fn start_daemon(&mut self, qemu: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work.join(format!("virtnetd-{}.log", self.label)))
            .unwrap();
        let child = Command::new(&self.virtnetd)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--run-dir")
            .arg(&self.run)
            .arg("--qemu")
            .arg(qemu)
            .args(&self.args)
            .env(
                "VIRTNETD_LOG",
                std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start virtnetd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "virtnetd ({}) does not listen",
                self.label
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.daemon = Some(child);
    }

    fn stop_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            // SAFETY: kill with our child's pid and a valid signal.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Runs `virtnet ARGS` against this side's daemon; its wall time. Panics with its output
    /// when it fails.
    fn virtnet(&self, virtnet: &Path, args: &[&str]) -> Duration {
        let t = Instant::now();
        let out = Command::new(virtnet)
            .env_remove("LD_LIBRARY_PATH")
            .arg("--connect")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run virtnet");
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "virtnet {args:?} ({}) failed: {}{}",
            self.label,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    /// QEMU's pid of `vm` (its live status).
    fn qemu_pid(&self, vm: &str) -> u32 {
        let st: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.run.join(format!("{vm}.json"))).unwrap(),
        )
        .unwrap();
        st["pid"].as_u64().unwrap() as u32
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        self.stop_daemon();
    }
}

/// Connects to the serial socket (retrying until it exists) and reads until `want` (a whole
/// line when `want` is empty); returns when it arrived and the open connection.
fn console_until(serial: &Path, want: &str, timeout: Duration) -> (Instant, UnixStream) {
    let deadline = Instant::now() + timeout;
    let mut s = loop {
        match UnixStream::connect(serial) {
            Ok(s) => break s,
            Err(_) => {
                assert!(
                    Instant::now() < deadline,
                    "no serial socket {}",
                    serial.display()
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    };
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 512];
    let mut seen = Vec::new();
    loop {
        let n = std::io::Read::read(&mut s, &mut buf).expect("read the serial console");
        assert!(
            n > 0,
            "the console closed before the guest printed {want:?}"
        );
        seen.extend_from_slice(&buf[..n]);
        let done = if want.is_empty() {
            seen.contains(&b'\n')
        } else {
            String::from_utf8_lossy(&seen).contains(want)
        };
        if done {
            return (Instant::now(), s);
        }
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// Median of `on[i] / off[i]`.
fn paired(on: &[Duration], off: &[Duration]) -> f64 {
    let mut r: Vec<f64> = on
        .iter()
        .zip(off)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .collect();
    r.sort_by(f64::total_cmp);
    let n = r.len();
    if n % 2 == 1 {
        r[n / 2]
    } else {
        (r[n / 2 - 1] + r[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1000.0;
    if m >= 1000.0 {
        format!("{:.2} s", m / 1000.0)
    } else {
        format!("{m:.1} ms")
    }
}

/// One measured operation, both sides.
struct Row {
    what: &'static str,
    on: Vec<Duration>,
    off: Vec<Duration>,
    /// What the ratio should stay under, if there is a target.
    target: Option<f64>,
}

impl Row {
    fn ratio(&self) -> f64 {
        median(&self.on).as_secs_f64() / median(&self.off).as_secs_f64()
    }
}

/// Where the QEMU of `pid` runs: its uid, capabilities, NoNewPrivs, seccomp mode, and whether
/// its mount namespace is virtnetd's — so the table says what was measured.
fn confinement_of(pid: u32, daemon: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_else(|| "?".into())
    };
    let ns = |p: u32| std::fs::read_link(format!("/proc/{p}/ns/mnt")).ok();
    let own_ns = ns(pid) != ns(daemon);
    let sandbox = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("-sandbox"))
        .unwrap_or(false);
    format!(
        "Uid {}, CapEff {}, NoNewPrivs {}, Seccomp {}, own mount namespace: {}, -sandbox: {}",
        field("Uid:"),
        field("CapEff:"),
        field("NoNewPrivs:"),
        field("Seccomp:"),
        if own_ns { "yes" } else { "no" },
        if sandbox { "yes" } else { "no" }
    )
}

fn run() {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf();
    let virtnet = std::env::var_os("VIRTNET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| profile_dir.join("virtnet"));
    assert!(
        virtnet.exists(),
        "{} is missing: build it with `cargo build --release -p virtnet` (scripts/bench-sandbox does)",
        virtnet.display()
    );
    let qemu = virtnet_testkit::qemu_path().expect("qemu-system-x86_64");
    let guest = virtnet_testkit::guest();
    virtnet_testkit::ip("link add br0 type bridge");
    virtnet_testkit::ip("link set br0 up");
    // The run dirs on tmpfs under /run, the state on disk under /var/tmp, as virtnetd's
    // defaults (/run/virtnet, /var/lib/virtnet); both traversable by other users as those
    // are. Not /dev/shm: a confined QEMU's private /dev covers it, and hiding directories
    // there is refused.
    use std::os::unix::fs::PermissionsExt;
    let tmp = |parent: &str| {
        let d = tempfile::Builder::new()
            .prefix("virtnet-bench-sandbox-")
            .tempdir_in(parent)
            .unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    };
    let (run_root, state_root) = (tmp("/run"), tmp("/var/tmp"));
    let daemon_bin = PathBuf::from(env!("CARGO_BIN_EXE_virtnetd"));
    let mut on = Side::new(
        "on",
        run_root.path(),
        state_root.path(),
        daemon_bin.clone(),
        &[],
    );
    let mut off = match std::env::var_os("BENCH_OFF_BIN") {
        Some(b) => Side::new(
            "off",
            run_root.path(),
            state_root.path(),
            PathBuf::from(b),
            &[],
        ),
        None => Side::new(
            "off",
            run_root.path(),
            state_root.path(),
            daemon_bin,
            &["--sandbox", "off"],
        ),
    };
    on.start_daemon(&qemu);
    off.start_daemon(&qemu);

    // (a) and (c): start → first console line, and the start command's wall time.
    let n = runs(START_RUNS);
    eprintln!("start, {n} rounds per side...");
    let mut start_wall = [Vec::new(), Vec::new()];
    let mut first_line = [Vec::new(), Vec::new()];
    let mut confinement = [String::new(), String::new()];
    for side in [&on, &off] {
        let serial = side.work.join("boot-serial.sock");
        let file = side.work.join("boot.xml");
        std::fs::write(
            &file,
            virtnet_testkit::TestDomain::new("boot", &serial).xml(guest),
        )
        .unwrap();
        side.virtnet(&virtnet, &["define", file.to_str().unwrap()]);
        // One untimed start: the first one probes the QEMU binary.
        side.virtnet(&virtnet, &["start", "boot"]);
        side.virtnet(&virtnet, &["destroy", "boot"]);
    }
    for round in 0..n {
        // Alternate which side goes first, so neither always follows the other's destroy.
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let side = if i == 0 { &on } else { &off };
            let serial = side.work.join("boot-serial.sock");
            std::thread::sleep(SETTLE);
            let t0 = Instant::now();
            let reader =
                std::thread::spawn(move || console_until(&serial, "", Duration::from_secs(120)).0);
            let wall = side.virtnet(&virtnet, &["start", "boot"]);
            let t1 = reader.join().unwrap();
            start_wall[i].push(wall);
            first_line[i].push(t1 - t0);
            if round == 0 {
                let daemon = side.daemon.as_ref().unwrap().id();
                confinement[i] = confinement_of(side.qemu_pid("boot"), daemon);
            }
            side.virtnet(&virtnet, &["destroy", "boot"]);
        }
    }

    // (b) bridge NIC hot-plug into booted guests.
    let n = runs(HOTPLUG_RUNS);
    eprintln!("hot-plug, {n} rounds per side...");
    let mut consoles = Vec::new();
    for side in [&on, &off] {
        let serial = side.work.join("hp-serial.sock");
        let file = side.work.join("hp.xml");
        std::fs::write(
            &file,
            virtnet_testkit::TestDomain::new("hp", &serial).xml(guest),
        )
        .unwrap();
        side.virtnet(&virtnet, &["define", file.to_str().unwrap()]);
        side.virtnet(&virtnet, &["start", "hp"]);
        consoles.push(console_until(&serial, "virtnet-guest: ready", Duration::from_secs(180)).1);
    }
    let attach = [
        "attach-interface",
        "hp",
        "--type",
        "bridge",
        "--source",
        "br0",
        "--mac",
        NIC_MAC,
        "--model",
        "virtio",
        "--live",
    ];
    let detach = [
        "detach-interface",
        "hp",
        "--type",
        "bridge",
        "--mac",
        NIC_MAC,
        "--live",
    ];
    // Warm both: the first attach after a start probes the QEMU binary.
    for side in [&on, &off] {
        side.virtnet(&virtnet, &attach);
        std::thread::sleep(SETTLE);
        side.virtnet(&virtnet, &detach);
    }
    let mut hotplug = [Vec::new(), Vec::new()];
    for round in 0..n {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let side = if i == 0 { &on } else { &off };
            std::thread::sleep(SETTLE);
            hotplug[i].push(side.virtnet(&virtnet, &attach));
            std::thread::sleep(SETTLE);
            side.virtnet(&virtnet, &detach);
        }
    }
    for side in [&on, &off] {
        side.virtnet(&virtnet, &["destroy", "hp"]);
    }
    drop(consoles);
    on.stop_daemon();
    off.stop_daemon();

    let [fl_on, fl_off] = first_line;
    let [hp_on, hp_off] = hotplug;
    let [sw_on, sw_off] = start_wall;
    let rows = vec![
        Row {
            what: "(a) `virtnet start` → first console line",
            on: fl_on,
            off: fl_off,
            target: Some(1.1),
        },
        Row {
            what: "(b) `attach-interface --live`, bridge NIC (CLI wall)",
            on: hp_on,
            off: hp_off,
            target: Some(1.1),
        },
        Row {
            what: "(c) `virtnet start` (CLI wall)",
            on: sw_on,
            off: sw_off,
            target: None,
        },
    ];
    report(&rows, &confinement);
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| operation | sandboxed (median) | unsandboxed (median) | ratio of medians | median of per-round ratios | target | rounds per side |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.2}× | {:.2}× | {} | {} |\n",
            r.what,
            ms(median(&r.on)),
            ms(median(&r.off)),
            r.ratio(),
            paired(&r.on, &r.off),
            r.target.map_or("–".into(), |t| format!("≤ {t:.1}×")),
            r.on.len()
        );
    }
    let c = rows.last().expect("the start row");
    s += &format!(
        "| (c) against libvirt 9.0's `virsh start` / virtnet before confinement | {} | {} / {} | {:.2}× / {:.2}× | – | – | – |\n",
        ms(median(&c.on)),
        ms(LIBVIRT_START),
        ms(BEFORE_START),
        median(&c.on).as_secs_f64() / LIBVIRT_START.as_secs_f64(),
        median(&c.on).as_secs_f64() / BEFORE_START.as_secs_f64(),
    );
    s
}

/// Horizontal bars, one pair per operation, each pair scaled to its own larger value.
fn svg(rows: &[Row]) -> String {
    let (w, row_h, left) = (980.0, 70.0, 430.0);
    let h = 50.0 + row_h * rows.len() as f64 + 30.0;
    let bar_w = w - left - 140.0;
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='13'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='10' y='24' font-size='16' font-weight='bold'>QEMU sandboxed vs not: median wall time</text>\n"
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 50.0 + row_h * i as f64;
        let (a, b) = (median(&r.on), median(&r.off));
        let max = a.max(b).as_secs_f64();
        let what = r.what.replace('`', "").replace('→', "to");
        s += &format!(
            "<text x='10' y='{}'>{}</text>\n<text x='10' y='{}' fill='#555'>ratio {:.2}×</text>\n",
            y + 20.0,
            what,
            y + 38.0,
            r.ratio()
        );
        for (j, (label, d, color)) in [("sandboxed", a, "#3b6ea5"), ("unsandboxed", b, "#9aa5b1")]
            .iter()
            .enumerate()
        {
            let by = y + 8.0 + 24.0 * j as f64;
            let bw = (d.as_secs_f64() / max * bar_w).max(1.0);
            s += &format!(
                "<rect x='{left}' y='{by}' width='{bw:.1}' height='18' fill='{color}'/>\n\
                 <text x='{}' y='{}'>{label} {}</text>\n",
                left + bw + 6.0,
                by + 14.0,
                ms(*d)
            );
        }
    }
    s += &format!(
        "<text x='10' y='{}' fill='#555' font-size='11'>Bars of one operation share a scale; QEMU under TCG, the test guest, {} cores.</text>\n</svg>\n",
        h - 10.0,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    s
}

/// Prints the table and writes the markdown and the SVG.
fn report(rows: &[Row], confinement: &[String; 2]) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let rounds = |r: &Row, side: usize| {
        let v = if side == 0 { &r.on } else { &r.off };
        v.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ")
    };
    let mut every = String::new();
    for r in rows {
        every += &format!(
            "- {}: sandboxed {}; unsandboxed {}\n",
            r.what,
            rounds(r, 0),
            rounds(r, 1)
        );
    }
    let md = format!(
        "# Benchmark: QEMU sandboxed vs not\n\n\
         `scripts/bench-sandbox` ({}), QEMU under TCG with the test guest, {} cores, load \
         average at the end: {}.\n\n{}\n\
         - Two virtnetd processes side by side (release builds, run dirs on tmpfs): the \
           default one and one with `--sandbox off`{}; rounds alternate between them, \
           the side going first alternating too. Each timed operation starts after a 100 ms \
           pause. Both were warmed by one untimed start and one untimed attach + detach.\n\
         - (a): from spawning `virtnet start` until the guest's first console line (a client \
           connected to the serial socket). (c): the same `virtnet start` process, spawn to \
           exit. (b): `virtnet attach-interface --type bridge --live` into a booted guest, \
           spawn to exit; the detach after it is not timed.\n\
         - The libvirt and \"before\" figures in the last row are from issue 9 (libvirt 9.0's \
           `virsh start` and `virtnet start` before confinement, medians on these machines), \
           not from this run.\n\
         - What ran, read from `/proc/PID/status` of the first round's QEMU: sandboxed: {}; \
           unsandboxed: {}.\n\nEvery round:\n\n{}",
        date(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        table(rows),
        if std::env::var_os("BENCH_OFF_BIN").is_some() {
            " (here: `BENCH_OFF_BIN`, another build, without that flag)"
        } else {
            ""
        },
        confinement[0],
        confinement[1],
        every
    );
    println!("{}", table(rows));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("sandbox.md"), &md).unwrap();
    std::fs::write(out.join("sandbox.svg"), svg(rows)).unwrap();
    let _ = std::io::stderr()
        .write_all(format!("wrote {0}/sandbox.md and {0}/sandbox.svg\n", out.display()).as_bytes());
}

/// Today's date (UTC) as YYYY-MM-DD, without a date crate.
fn date() -> String {
    let out = Command::new("date").args(["-u", "+%F"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would run us as a test: do nothing.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("sandbox benchmark: run it with scripts/bench-sandbox (cargo bench)");
        return;
    }
    use virtnet_testkit::Need;
    if !virtnet_testkit::require(&[Need::Root, Need::Qemu]) {
        return;
    }
    virtnet_testkit::with_netns(run);
}
