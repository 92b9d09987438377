//! Benchmark (not a test): virtnetd driven by the `virtnet` CLI against bare QEMU/QMP, on the
//! same machine, with real QEMU (TCG) and the test guest, in a private network namespace.
//!
//! From one run it prints the median wall time of
//! - `virtnet attach-device NAME nic.xml --live` for a bridge NIC (the CLI process end to end),
//!   beside the floor: a bare client *process* (this binary re-run with
//!   `VIRTNET_BENCH_FLOOR_CHILD=attach`) that connects to the VM's QMP socket (greeting +
//!   `qmp_capabilities`), creates a tap, makes it a port of the bridge, sends `getfd`,
//!   `netdev_add`, `device_add` and exits, timed spawn to exit like the CLI;
//! - `virtnet detach-device NAME nic.xml --live`, beside such a process doing `device_del` +
//!   wait for `DEVICE_DELETED` + `netdev_del`;
//! - the same operations as one in-process API request, and the same QMP steps from an
//!   in-process client already connected to QMP (the lower floor: no process, no connect);
//! - `virtnet define` + `virtnet start` until the guest's first console line, beside launching
//!   the same QEMU argv by hand (without `-S`, so no QMP is needed) until that line;
//!
//! and writes a markdown table and an SVG bar plot to `daemon/bench-results/`.
//! Run it with `scripts/bench-hotplug` (root; builds the release binaries first).
//!
//! While the bare client runs, virtnetd is stopped (SIGTERM leaves VMs running): QEMU's
//! monitor serves one client at a time. The sides alternate every round (ours, floor, ours,
//! floor, ...), so a change of the machine's load during the run affects both; after each
//! restart virtnetd is warmed by an untimed attach + detach (see [`warm_start`]).
//!
//! Knobs for finding where time goes: `BENCH_PARTS=hotplug|boot`, `BENCH_DIAG=1` (prints
//! CLI vs in-process medians for a trivial request and for hot-plug), `BENCH_STRACE=DIR`
//! (one attach and one detach under `strace -f -tt -T`, virtnetd traced meanwhile),
//! `VIRTNETD_BIN=PATH` (another virtnetd build, for A/B runs), `BENCH_HOLD=SECS` (keeps the daemon and the VM up for measuring by hand), `BENCH_RUNS=N`
//! (hot-plug rounds instead of 40), `BENCH_LOG=FILTER` (virtnetd's log filter, default
//! `warn`; its log is `virtnetd.log` in the work dir).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use virtnet_host::{BridgePortOpts, HostNet, LinuxHost, TapSpec};
use virtnet_qemu::QmpClient;

/// Hot-plug rounds per side (attach + detach each).
const HOTPLUG_RUNS: usize = 40;
/// `BENCH_RUNS` (for trying changes) or [`HOTPLUG_RUNS`].
fn hotplug_runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(HOTPLUG_RUNS)
}
/// Pause before each timed hot-plug operation (see [`settle`]).
const SETTLE: Duration = Duration::from_millis(100);
/// Untimed attach + detach rounds after each virtnetd start.
const WARM_ROUNDS: usize = 2;
/// define+start rounds per side.
const BOOT_RUNS: usize = 5;
const NIC_MAC: &str = "52:54:00:00:be:01";
const FLOOR_MAC: &str = "52:54:00:00:be:02";

struct Bins {
    virtnet: PathBuf,
    virtnetd: PathBuf,
    qemu: PathBuf,
}

/// `target/<profile>/virtnet` next to this benchmark's own `target/<profile>/deps/` binary.
fn bins() -> Bins {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf();
    let pick = |env: &str, name: &str| {
        std::env::var_os(env)
            .map(PathBuf::from)
            .unwrap_or_else(|| profile_dir.join(name))
    };
    let b = Bins {
        virtnet: pick("VIRTNET_BIN", "virtnet"),
        virtnetd: std::env::var_os("VIRTNETD_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_virtnetd"))),
        qemu: virtnet_testkit::qemu_path().expect("qemu-system-x86_64"),
    };
    assert!(
        b.virtnet.exists(),
        "{} is missing: build it with `cargo build --release -p virtnet` (scripts/bench-hotplug does)",
        b.virtnet.display()
    );
    b
}

struct Env {
    bins: Bins,
    /// State dir (disk, as /var/lib/virtnet).
    state: PathBuf,
    /// Run dir (tmpfs, as /run/virtnet).
    run: PathBuf,
    socket: PathBuf,
    work: PathBuf,
    daemon: Option<Child>,
}

impl Env {
    fn start_daemon(&mut self) {
        assert!(self.daemon.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work.join("virtnetd.log"))
            .unwrap();
        let child = Command::new(&self.bins.virtnetd)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--run-dir")
            .arg(&self.run)
            .arg("--qemu")
            .arg(&self.bins.qemu)
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
            assert!(Instant::now() < deadline, "virtnetd does not listen");
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

    /// Runs `virtnet ARGS`; its wall time. Panics with its output when it fails.
    fn virtnet(&self, args: &[&str]) -> Duration {
        let t = Instant::now();
        let out = Command::new(&self.bins.virtnet)
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
            "virtnet {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }
}

/// `POST path` with a JSON body over the API socket (an in-process client: no CLI process);
/// its wall time. Panics unless the answer is 200.
fn api_post(socket: &Path, path: &str, body: &str) -> Duration {
    let t = Instant::now();
    let mut s = UnixStream::connect(socket).expect("connect to virtnetd");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: virtnetd\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut s, &mut resp).unwrap();
    let took = t.elapsed();
    assert!(resp.starts_with("HTTP/1.1 200"), "{path}: {resp}");
    took
}

/// Connects to the serial socket (retrying while QEMU creates it) and waits for the first
/// line the guest prints; returns when it arrived.
fn first_console_line(serial: &Path, timeout: Duration) -> Instant {
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
        assert!(n > 0, "the console closed before the guest printed a line");
        seen.extend_from_slice(&buf[..n]);
        if seen.contains(&b'\n') {
            return Instant::now();
        }
    }
}

/// Waits for `virtnet-guest: ready` on the serial console; returns the open connection.
fn wait_ready(serial: &Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut s = loop {
        if let Ok(s) = UnixStream::connect(serial) {
            break s;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    };
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains("virtnet-guest: ready") {
        let n = std::io::Read::read(&mut s, &mut buf).expect("read the serial console");
        assert!(n > 0, "console closed before ready");
        seen.extend_from_slice(&buf[..n]);
    }
    s
}

fn domain_xml(name: &str, serial: &Path) -> String {
    virtnet_testkit::TestDomain::new(name, serial).xml(virtnet_testkit::guest())
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

/// QEMU's argv (`/proc/PID/cmdline`).
fn argv_of(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn pid_of(env: &Env, vm: &str) -> u32 {
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.run.join(format!("{vm}.json"))).unwrap())
            .unwrap();
    st["pid"].as_u64().unwrap() as u32
}

/// `define` + `start` until the first console line, `BOOT_RUNS` times; returns the times and
/// the argv QEMU was started with.
fn boot_virtnet(env: &Env) -> (Vec<Duration>, Vec<String>) {
    let serial = env.work.join("boot-serial.sock");
    let file = env.work.join("boot.xml");
    std::fs::write(&file, domain_xml("boot", &serial)).unwrap();
    let mut times = Vec::new();
    let mut argv = Vec::new();
    for _ in 0..BOOT_RUNS {
        let t0 = Instant::now();
        env.virtnet(&["define", file.to_str().unwrap()]);
        let serial2 = serial.clone();
        let reader =
            std::thread::spawn(move || first_console_line(&serial2, Duration::from_secs(120)));
        env.virtnet(&["start", "boot"]);
        let t1 = reader.join().unwrap();
        times.push(t1 - t0);
        argv = argv_of(pid_of(env, "boot"));
        env.virtnet(&["destroy", "boot"]);
        env.virtnet(&["undefine", "boot"]);
    }
    (times, argv)
}

/// The same argv launched by hand (without `-S`) until the first console line.
fn boot_by_hand(env: &Env, argv: &[String]) -> Vec<Duration> {
    let serial = env.work.join("boot-serial.sock");
    let run_dir = env.run.join("vms/boot");
    let args: Vec<&String> = argv[1..].iter().filter(|a| *a != "-S").collect();
    let mut times = Vec::new();
    for _ in 0..BOOT_RUNS {
        std::fs::create_dir_all(&run_dir).unwrap();
        let t0 = Instant::now();
        let mut q = Command::new(&argv[0])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("launch QEMU");
        let t1 = first_console_line(&serial, Duration::from_secs(120));
        times.push(t1 - t0);
        let _ = q.kill();
        let _ = q.wait();
        let _ = std::fs::remove_dir_all(&run_dir);
        let _ = std::fs::remove_file(&serial);
    }
    times
}

/// The bare client's attach: tap + bridge port + `getfd` + `netdev_add` + `device_add`.
/// Returns the tap (QEMU holds a dup of its fd, so dropping ours keeps the device).
async fn floor_attach(host: &LinuxHost, qmp: &QmpClient) -> virtnet_host::TapHandle {
    let mut spec = TapSpec::new(FLOOR_MAC.parse().unwrap());
    spec.vnet_hdr = true;
    let tap = host.create_tap(&spec).expect("create tap");
    host.attach_to_bridge(&tap.name, "br0", &BridgePortOpts::default())
        .expect("bridge port");
    qmp.getfd("tapfd-net9", std::os::fd::AsFd::as_fd(&tap.fds[0]))
        .await
        .unwrap();
    qmp.execute(
        "netdev_add",
        json!({"type": "tap", "id": "hostnet9", "fd": "tapfd-net9"}),
    )
    .await
    .unwrap();
    qmp.execute(
        "device_add",
        json!({"driver": "virtio-net-pci", "netdev": "hostnet9", "id": "net9",
               "mac": FLOOR_MAC, "bus": "pci.0", "addr": "0x9"}),
    )
    .await
    .unwrap();
    tap
}

/// The bare client's detach: `device_del` + wait for `DEVICE_DELETED` + `netdev_del` (QEMU
/// closes its tap fd then; a non-persistent tap without fds vanishes).
async fn floor_detach(qmp: &QmpClient) {
    qmp.device_del_and_wait("net9", Duration::from_secs(30))
        .await
        .unwrap();
    qmp.execute("netdev_del", json!({"id": "hostnet9"}))
        .await
        .unwrap();
}

/// The bare client's attach and detach, `n` times, in this process on one QMP connection
/// (no process start, no connect, no handshake: the in-process floor).
fn hotplug_floor(qmp_socket: &Path, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let rt = virtnet_testkit::runtime();
    rt.block_on(async {
        let host = LinuxHost::new().expect("host networking");
        let qmp = QmpClient::connect(qmp_socket).await.expect("QMP");
        let (mut att, mut det) = (Vec::new(), Vec::new());
        for _ in 0..n {
            settle();
            let t0 = Instant::now();
            let tap = floor_attach(&host, &qmp).await;
            att.push(t0.elapsed());
            drop(tap.fds);
            settle();
            let t0 = Instant::now();
            floor_detach(&qmp).await;
            det.push(t0.elapsed());
            let _ = host.delete_link(&tap.name, Some(tap.ifindex));
        }
        (att, det)
    })
}

/// The env var that makes this binary the bare client process (`attach` or `detach`).
const FLOOR_CHILD: &str = "VIRTNET_BENCH_FLOOR_CHILD";

/// Runs as the bare client process: connect to QMP (greeting + `qmp_capabilities`), do the
/// attach or the detach, exit. Built like the CLI: one current-thread tokio runtime.
fn floor_child(op: &str) {
    let qmp_socket = std::env::var_os("VIRTNET_BENCH_QMP").expect("VIRTNET_BENCH_QMP");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let qmp = QmpClient::connect(&qmp_socket).await.expect("QMP");
        match op {
            "attach" => {
                let host = LinuxHost::new().expect("host networking");
                floor_attach(&host, &qmp).await;
            }
            "detach" => floor_detach(&qmp).await,
            other => panic!("{FLOOR_CHILD}={other}: attach or detach"),
        }
    });
}

/// Runs the bare client process for `op`; its wall time, spawn to exit (as for the CLI).
fn floor_process(qmp_socket: &Path, op: &str) -> Duration {
    let exe = std::env::current_exe().expect("current_exe");
    let t = Instant::now();
    let out = Command::new(exe)
        .env_remove("LD_LIBRARY_PATH")
        .env(FLOOR_CHILD, op)
        .env("VIRTNET_BENCH_QMP", qmp_socket)
        .stdin(Stdio::null())
        .output()
        .expect("run the bare client");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "bare client {op} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

struct Row {
    what: &'static str,
    ours: Duration,
    floor: Duration,
    runs: usize,
    /// Median of the per-round ratios ours/floor (rounds alternate, so each pair saw the
    /// same machine load), when the floor ran in the same rounds.
    paired: Option<f64>,
}

/// Median of `ours[i] / floor[i]`.
fn paired(ours: &[Duration], floor: &[Duration]) -> Option<f64> {
    let mut r: Vec<f64> = ours
        .iter()
        .zip(floor)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .collect();
    r.sort_by(f64::total_cmp);
    let n = r.len();
    (n > 0).then(|| {
        if n % 2 == 1 {
            r[n / 2]
        } else {
            (r[n / 2 - 1] + r[n / 2]) / 2.0
        }
    })
}

fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1000.0;
    if m >= 1000.0 {
        format!("{:.2} s", m / 1000.0)
    } else {
        format!("{m:.1} ms")
    }
}

fn ratio(r: &Row) -> f64 {
    r.ours.as_secs_f64() / r.floor.as_secs_f64()
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| operation | virtnet (median) | bare QEMU/QMP floor (median) | ratio of medians | median of per-round ratios | runs per side |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.2}× | {} | {} |\n",
            r.what,
            ms(r.ours),
            ms(r.floor),
            ratio(r),
            r.paired.map_or("–".to_string(), |p| format!("{p:.2}×")),
            r.runs
        );
    }
    s
}

/// Horizontal bars, one pair per operation, each pair scaled to its own larger value (the
/// operations differ by two orders of magnitude).
fn svg(rows: &[Row]) -> String {
    let (w, row_h, left) = (980.0, 70.0, 470.0);
    let h = 50.0 + row_h * rows.len() as f64 + 30.0;
    let bar_w = w - left - 140.0;
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='13'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='10' y='24' font-size='16' font-weight='bold'>virtnetd (virtnet CLI) vs bare QEMU/QMP: median wall time</text>\n"
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 50.0 + row_h * i as f64;
        let max = r.ours.max(r.floor).as_secs_f64();
        s += &format!(
            "<text x='10' y='{}'>{}</text>\n<text x='10' y='{}' fill='#555'>ratio {:.2}×</text>\n",
            y + 20.0,
            r.what,
            y + 38.0,
            ratio(r)
        );
        for (j, (label, d, color)) in [
            ("virtnet", r.ours, "#3b6ea5"),
            ("floor", r.floor, "#9aa5b1"),
        ]
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
        "<text x='10' y='{}' fill='#555' font-size='11'>Bars of one operation share a scale; QEMU {} under TCG, the test guest, {} cores.</text>\n</svg>\n",
        h - 10.0,
        qemu_version(),
        num_cores()
    );
    s
}

fn qemu_version() -> String {
    let out = Command::new(virtnet_testkit::qemu_path().unwrap())
        .arg("-version")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(3)
        .unwrap_or("?")
        .to_string()
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn run() {
    let bins = bins();
    let _ = virtnet_testkit::guest();
    virtnet_testkit::ip("link add br0 type bridge");
    virtnet_testkit::ip("link set br0 up");
    let disk = tempfile::Builder::new()
        .prefix("virtnet-bench-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let shm = tempfile::Builder::new()
        .prefix("vnb-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let run = shm.path().join("run");
    let mut env = Env {
        bins,
        state: disk.path().join("state"),
        socket: run.join("virtnetd.sock"),
        run,
        work: shm.path().to_path_buf(),
        daemon: None,
    };
    env.start_daemon();
    // BENCH_PARTS=boot or =hotplug runs one part (for trying changes); the default is both.
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "boot,hotplug".into());

    let mut rows = Vec::new();
    if parts.contains("boot") {
        eprintln!("define + start, {BOOT_RUNS} runs per side...");
        let (boot_ours, argv) = boot_virtnet(&env);
        let boot_floor = boot_by_hand(&env, &argv);
        rows.push(Row {
            what: "define + start → first console line",
            ours: median(&boot_ours),
            floor: median(&boot_floor),
            runs: boot_ours.len(),
            paired: None,
        });
    }
    let mut notes = Vec::new();
    if parts.contains("hotplug") {
        let (hp, note) = hotplug(&mut env);
        rows.splice(0..0, hp);
        notes.push(note);
    }
    env.stop_daemon();
    report(&rows, &notes);
}

/// The hot-plug rows, and a note on virtnetd's scheduling during an attach.
fn hotplug(env: &mut Env) -> (Vec<Row>, String) {
    let runs = hotplug_runs();
    eprintln!("hot-plug, {runs} runs per side...");
    let serial = env.work.join("hp-serial.sock");
    let file = env.work.join("hp.xml");
    std::fs::write(&file, domain_xml("hp", &serial)).unwrap();
    env.virtnet(&["define", file.to_str().unwrap()]);
    env.virtnet(&["start", "hp"]);
    let _console = wait_ready(&serial);
    let nic = env.work.join("nic.xml");
    std::fs::write(
        &nic,
        format!(
            "<interface type='bridge'><mac address='{NIC_MAC}'/><source bridge='br0'/>\
             <model type='virtio'/></interface>"
        ),
    )
    .unwrap();
    let nic = nic.to_str().unwrap().to_string();
    let qmp_socket = env.run.join("vms/hp/qmp.sock");
    let nic_xml = std::fs::read_to_string(&nic).unwrap();
    let body = json!({ "xml": nic_xml, "live": true }).to_string();
    if let Some(dir) = std::env::var_os("BENCH_STRACE") {
        strace_one(env, Path::new(&dir), &nic);
    }
    if let Ok(secs) = std::env::var("BENCH_HOLD") {
        // For measuring by hand: the daemon, the VM and nic.xml stay up for SECS seconds.
        eprintln!(
            "holding {secs} s: virtnet --connect {} attach-device hp {nic} --live",
            env.socket.display()
        );
        std::thread::sleep(Duration::from_secs(secs.parse().unwrap()));
    }
    if std::env::var_os("BENCH_DIAG").is_some() {
        diag(env, &nic, &body);
    }
    env.stop_daemon();
    warm_start(env, &body);
    let (mut att, mut det, mut fatt, mut fdet) = (vec![], vec![], vec![], vec![]);
    let (mut aatt, mut adet, mut patt, mut pdet) = (vec![], vec![], vec![], vec![]);
    // virtnetd's own scheduling during each API attach (all its threads).
    let mut sched = Vec::new();
    // One round = ours (CLI, then API request) then the floor (process, then in-process):
    // A B A B, so a change of the machine's load hits both sides alike.
    for _ in 0..runs {
        settle();
        att.push(env.virtnet(&["attach-device", "hp", &nic, "--live"]));
        settle();
        det.push(env.virtnet(&["detach-device", "hp", &nic, "--live"]));
        settle();
        let pid = env.daemon.as_ref().unwrap().id();
        let before = Sched::of(pid);
        aatt.push(api_post(&env.socket, "/v1/domains/hp/devices", &body));
        sched.push(Sched::of(pid).since(&before));
        settle();
        adet.push(api_post(
            &env.socket,
            "/v1/domains/hp/devices/detach",
            &body,
        ));
        env.stop_daemon();
        settle();
        patt.push(floor_process(&qmp_socket, "attach"));
        settle();
        pdet.push(floor_process(&qmp_socket, "detach"));
        let (a, d) = hotplug_floor(&qmp_socket, 1);
        fatt.extend(a);
        fdet.extend(d);
        warm_start(env, &body);
    }
    env.virtnet(&["destroy", "hp"]);
    env.virtnet(&["undefine", "hp"]);
    for (what, v) in [
        ("CLI attach", &att),
        ("API attach", &aatt),
        ("floor process attach", &patt),
        ("floor in-process attach", &fatt),
    ] {
        let mut v = v.clone();
        v.sort();
        let ms: Vec<String> = v
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
            .collect();
        eprintln!("{what} (ms, sorted): {}", ms.join(" "));
    }
    let mid = |f: fn(&Sched) -> u64| {
        let mut v: Vec<u64> = sched.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    let note = format!(
        "virtnetd per API attach (medians, from /proc/PID/task/*/schedstat): on a CPU {} µs, \
         runnable but waiting for a CPU {} µs, scheduled in {} times, {} thread(s) ran.",
        mid(|s| s.run_ns) / 1000,
        mid(|s| s.wait_ns) / 1000,
        mid(|s| s.slices),
        mid(|s| s.threads),
    );
    eprintln!("{note}");
    let rows = vec![
        Row {
            what: "attach-device --live (bridge NIC), CLI vs client process",
            ours: median(&att),
            floor: median(&patt),
            runs: att.len(),
            paired: paired(&att, &patt),
        },
        Row {
            what: "detach-device --live (until DEVICE_DELETED), CLI vs client process",
            ours: median(&det),
            floor: median(&pdet),
            runs: det.len(),
            paired: paired(&det, &pdet),
        },
        Row {
            what: "attach, CLI vs in-process QMP client",
            ours: median(&att),
            floor: median(&fatt),
            runs: att.len(),
            paired: paired(&att, &fatt),
        },
        Row {
            what: "detach, CLI vs in-process QMP client",
            ours: median(&det),
            floor: median(&fdet),
            runs: det.len(),
            paired: paired(&det, &fdet),
        },
        Row {
            what: "attach, API request vs in-process QMP client",
            ours: median(&aatt),
            floor: median(&fatt),
            runs: aatt.len(),
            paired: paired(&aatt, &fatt),
        },
        Row {
            what: "detach, API request vs in-process QMP client",
            ours: median(&adet),
            floor: median(&fdet),
            runs: adet.len(),
            paired: paired(&adet, &fdet),
        },
    ];
    (rows, note)
}

/// Scheduler counters summed over a process's threads (`/proc/PID/task/*/schedstat`).
#[derive(Default)]
struct Sched {
    run_ns: u64,
    wait_ns: u64,
    slices: u64,
    /// Threads that ran (in a difference: that were scheduled in at least once).
    threads: u64,
    per_thread: Vec<(String, u64)>,
}

impl Sched {
    fn of(pid: u32) -> Sched {
        let mut s = Sched::default();
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return s;
        };
        for t in dir.flatten() {
            let Ok(text) = std::fs::read_to_string(t.path().join("schedstat")) else {
                continue;
            };
            let f: Vec<u64> = text
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if f.len() == 3 {
                s.run_ns += f[0];
                s.wait_ns += f[1];
                s.slices += f[2];
                s.threads += 1;
                s.per_thread
                    .push((t.file_name().to_string_lossy().into_owned(), f[2]));
            }
        }
        s
    }

    fn since(&self, before: &Sched) -> Sched {
        let ran = self
            .per_thread
            .iter()
            .filter(|(tid, n)| {
                before
                    .per_thread
                    .iter()
                    .find(|(b, _)| b == tid)
                    .is_none_or(|(_, m)| m != n)
            })
            .count() as u64;
        Sched {
            run_ns: self.run_ns.saturating_sub(before.run_ns),
            wait_ns: self.wait_ns.saturating_sub(before.wait_ns),
            slices: self.slices.saturating_sub(before.slices),
            threads: ran,
            per_thread: Vec::new(),
        }
    }
}

/// Lets the guest finish handling the last hot-plug event (it probes or ejects the NIC under
/// TCG, busying a core), so every timed operation starts from the same quiet machine.
fn settle() {
    std::thread::sleep(SETTLE);
}

/// Starts virtnetd and warms it, untimed: the first attach after a start probes the QEMU
/// binary's capabilities (tens of ms, once per daemon), which is not what the rows measure.
fn warm_start(env: &mut Env, body: &str) {
    env.start_daemon();
    env.virtnet(&["list"]);
    for _ in 0..WARM_ROUNDS {
        api_post(&env.socket, "/v1/domains/hp/devices", body);
        api_post(&env.socket, "/v1/domains/hp/devices/detach", body);
    }
}

/// Where the CLI's time goes, with a warm daemon: a trivial request as a CLI process and
/// as an in-process request, `true` as a process, attach/detach back to back and right after
/// a daemon restart. Prints medians to stderr.
fn diag(env: &mut Env, nic: &str, body: &str) {
    let n = 10;
    let get = |socket: &Path| {
        let t = Instant::now();
        let mut s = UnixStream::connect(socket).unwrap();
        s.write_all(b"GET /v1/domains HTTP/1.1\r\nHost: virtnetd\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut r = String::new();
        std::io::Read::read_to_string(&mut s, &mut r).unwrap();
        t.elapsed()
    };
    let (mut cl, mut al, mut tr, mut ca, mut aa, mut cd, mut ad) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        cl.push(env.virtnet(&["list"]));
        al.push(get(&env.socket));
        let t = Instant::now();
        Command::new("true").status().unwrap();
        tr.push(t.elapsed());
        ca.push(env.virtnet(&["attach-device", "hp", nic, "--live"]));
        cd.push(env.virtnet(&["detach-device", "hp", nic, "--live"]));
        aa.push(api_post(&env.socket, "/v1/domains/hp/devices", body));
        ad.push(api_post(&env.socket, "/v1/domains/hp/devices/detach", body));
    }
    let mut first = vec![];
    let mut second = vec![];
    for _ in 0..4 {
        env.stop_daemon();
        env.start_daemon();
        env.virtnet(&["list"]);
        first.push(api_post(&env.socket, "/v1/domains/hp/devices", body));
        api_post(&env.socket, "/v1/domains/hp/devices/detach", body);
        second.push(api_post(&env.socket, "/v1/domains/hp/devices", body));
        api_post(&env.socket, "/v1/domains/hp/devices/detach", body);
    }
    eprintln!(
        "diag (medians of {n}): CLI list {:?}, API GET list {:?}, `true` process {:?}, \
         CLI attach {:?}, API attach {:?}, CLI detach {:?}, API detach {:?}; \
         API attach right after a daemon restart {:?}, the one after it {:?}",
        median(&cl),
        median(&al),
        median(&tr),
        median(&ca),
        median(&aa),
        median(&cd),
        median(&ad),
        first,
        second
    );
}

/// One `attach-device` and one `detach-device` under `strace -f -tt -T` (files `cli-*.txt`
/// in `dir`), with virtnetd traced meanwhile (`daemon-*.txt`): where the CLI's time goes.
fn strace_one(env: &Env, dir: &Path, nic: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let pid = env.daemon.as_ref().unwrap().id();
    for op in ["attach-device", "detach-device"] {
        let mut d = Command::new("strace")
            .args(["-f", "-tt", "-T", "-o"])
            .arg(dir.join(format!("daemon-{op}.txt")))
            .arg("-p")
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .spawn()
            .expect("strace");
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        let st = Command::new("strace")
            .args(["-f", "-tt", "-T", "-o"])
            .arg(dir.join(format!("cli-{op}.txt")))
            .arg(&env.bins.virtnet)
            .arg("--connect")
            .arg(&env.socket)
            .args([op, "hp", nic, "--live"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        eprintln!("strace {op}: {:?} ({st})", t.elapsed());
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: SIGINT to our own strace child detaches it from virtnetd.
        unsafe { libc::kill(d.id() as i32, libc::SIGINT) };
        let _ = d.wait();
    }
}

/// Prints the table and writes the markdown and the SVG.
fn report(rows: &[Row], notes: &[String]) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let md = format!(
        "# Benchmark: virtnetd vs bare QEMU\n\n\
         `scripts/bench-hotplug` ({}), QEMU {} under TCG with the test guest, {} cores, load \
         average at the end: {}.\n\n{}\n\
         - virtnet: the `virtnet` CLI process end to end (spawn to exit), talking to a warm \
           virtnetd (release builds; state dir on disk, run dir on tmpfs as /run is). \
           \"API request\": the same operation as one HTTP request from an in-process client, \
           i.e. without starting a process. Both processes (CLI, bare client) run \
           without the `LD_LIBRARY_PATH` cargo sets (as a user runs them: no library search \
           through cargo's directories).\n\
         - Floor, hot-plug, \"client process\": a bare QMP client as its own process, timed \
           spawn to exit like the CLI (virtnetd stopped meanwhile): connect to QEMU's QMP \
           socket (greeting + `qmp_capabilities`), create tap + make it a bridge port + \
           `getfd` + `netdev_add` + `device_add`, exit; or `device_del` + wait for \
           `DEVICE_DELETED` + `netdev_del`, exit.\n\
         - Floor, hot-plug, \"in-process QMP client\": the same QMP steps from a client \
           already connected to QMP inside the benchmark (no process, no connect); it deletes \
           its tap after the clock stops, virtnetd's detach includes that.\n\
         - Rounds alternate ours / floor (A B A B); each timed operation starts after a \
           100 ms pause (the guest handles the previous hot-plug event meanwhile); virtnetd is \
           restarted around each floor round and warmed by two untimed attach + detach rounds \
           (its first attach after a start probes the QEMU binary, ~20 ms once).\n\
         - Floor, boot: the argv virtnetd started QEMU with, launched by hand without `-S`.\n\
         - Detach is bound by the guest (ACPI eject under TCG); attach by QEMU's `device_add`.\n{}",
        chrono_free_date(),
        qemu_version(),
        num_cores(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        table(rows),
        notes.iter().map(|n| format!("- {n}\n")).collect::<String>()
    );
    println!("{}", table(rows));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("hotplug.md"), &md).unwrap();
    std::fs::write(out.join("hotplug.svg"), svg(rows)).unwrap();
    let _ = std::io::stderr()
        .write_all(format!("wrote {0}/hotplug.md and {0}/hotplug.svg\n", out.display()).as_bytes());
}

/// Today's date (UTC) as YYYY-MM-DD, without a date crate.
fn chrono_free_date() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn main() {
    if let Ok(op) = std::env::var(FLOOR_CHILD) {
        floor_child(&op);
        return;
    }
    // `cargo bench` passes --bench; `cargo test --benches` would run us as a test: do nothing.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("hotplug benchmark: run it with scripts/bench-hotplug (cargo bench)");
        return;
    }
    use virtnet_testkit::Need;
    if !virtnet_testkit::require(&[Need::Root, Need::Qemu]) {
        return;
    }
    virtnet_testkit::with_netns(run);
}
