//! Benchmark (not a test): guest-to-guest TCP throughput (iperf3, in the test guest) between
//! the same two guests through (a) a `virtnet-vswitch` network managed by virtnetd
//! (`<interface type='network'>`, vhost-user) and (b) a Linux bridge with tap NICs
//! (`<interface type='bridge'>`, QEMU's virtio-net in user space: TCG guests cannot use
//! vhost-net). Each guest has one NIC of each kind; the two paths alternate (A B B A ...), so a
//! change of the machine's load affects both. Real QEMU (TCG), root, a private network
//! namespace. Writes `daemon/bench-results/guest-iperf.md` and `guest-iperf.svg`.
//!
//! Reported: the median and the spread (min–max) of at least 5 rounds per path, the median
//! and spread of the per-round ratios, and, per round, the CPU time the two QEMU processes
//! and the switch used per GB moved (from `/proc/PID/stat`): how busy the guests' emulated
//! vCPUs were, which is what bounds the figure under TCG, and a cost that the other load
//! on a shared machine disturbs less than the throughput. The load average is recorded.
//!
//! `scripts/bench-guest-iperf [--seconds N] [--rounds N]` (builds the release binaries).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use virtnet_testkit::{bridge_nic, ip, runtime, with_netns, SerialConsole, TestDomain};

const GUESTS: [(&str, &str, &str, &str, &str); 2] = [
    // name, switch MAC, switch address, bridge MAC, bridge address
    (
        "ga",
        "52:54:00:30:00:01",
        "10.20.0.11/24",
        "52:54:00:31:00:01",
        "10.30.0.11/24",
    ),
    (
        "gb",
        "52:54:00:30:00:02",
        "10.20.0.12/24",
        "52:54:00:31:00:02",
        "10.30.0.12/24",
    ),
];

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One HTTP/1.1 request to virtnetd; (status, body).
fn http(socket: &Path, method: &str, path: &str, ct: &str, body: &str) -> (u16, String) {
    let mut s = UnixStream::connect(socket).expect("connect virtnetd");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: virtnetd\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn ok(socket: &Path, method: &str, path: &str, ct: &str, body: &str) {
    let (s, b) = http(socket, method, path, ct, body);
    assert!((200..300).contains(&s), "{method} {path}: {s} {b}");
}

/// Mbit/s of the receiver line of `iperf3 -c ... -f m`.
fn receiver_mbits(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.contains("receiver"))?;
    let w: Vec<&str> = line.split_whitespace().collect();
    let i = w.iter().position(|x| *x == "Mbits/sec")?;
    w.get(i - 1)?.parse().ok()
}

/// Median, min and max of `v` (not empty).
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (med, s[0], s[n - 1])
}

/// The kernel's clock ticks per second (for `/proc/PID/stat` times).
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// (comm, user + system CPU seconds) of every child of `parent`.
fn children_cpu(parent: u32) -> Vec<(u32, String, f64)> {
    let hz = ticks_per_second();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        // After the comm: state, ppid, ..., utime (14th field of the line), stime (15th).
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if f.len() < 13 || f[1].parse::<u32>().ok() != Some(parent) {
            continue;
        }
        let t = |i: usize| f[i].parse::<f64>().unwrap_or(0.0) / hz;
        out.push((pid, comm, t(11) + t(12)));
    }
    out
}

/// CPU seconds used so far by the QEMU processes and by the switch among `parent`'s children.
fn cpu_split(parent: u32) -> (f64, f64) {
    let mut qemu = 0.0;
    let mut switch = 0.0;
    for (_, comm, secs) in children_cpu(parent) {
        if comm.starts_with("qemu-system") {
            qemu += secs;
        } else if comm.starts_with("virtnet-vswitch") {
            switch += secs;
        }
    }
    (qemu, switch)
}

/// The 1-minute load average.
fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// One iperf3 round of one path.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// Receiver throughput.
    mbits: f64,
    /// CPU seconds of both QEMU processes (vCPU threads, device emulation) per GB moved.
    qemu_s_per_gb: f64,
    /// CPU seconds of the switch per GB moved (0 for the bridge: the kernel's work is not
    /// counted in any process).
    switch_s_per_gb: f64,
    /// QEMU CPU seconds per wall second during the round (2 = both guests' vCPUs always busy).
    qemu_busy: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`
    }
    let seconds = arg("--seconds", 10);
    let rounds = arg("--rounds", 5) as usize;
    assert!(
        rounds >= 5,
        "--rounds {rounds}: at least 5 rounds per path, for a median and a spread"
    );
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        eprintln!("guest_iperf: no usable QEMU; skipped");
        return;
    };
    let load_start = load1();
    let daemon_bin = PathBuf::from(env!("CARGO_BIN_EXE_virtnetd"));
    let vswitch = daemon_bin.with_file_name("virtnet-vswitch");
    assert!(
        vswitch.is_file(),
        "{} missing: `cargo build --release -p virtnet-vhost-net` (scripts/bench-guest-iperf does)",
        vswitch.display()
    );
    let guest = virtnet_testkit::guest();
    let res = with_netns(move || {
        ip("link set lo up");
        ip("link add br0 type bridge");
        ip("link set br0 up");
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("run/virtnetd.sock");
        let log = std::fs::File::create(tmp.path().join("virtnetd.log")).unwrap();
        let mut daemon: Child = Command::new(&daemon_bin)
            .arg("--state-dir")
            .arg(tmp.path().join("state"))
            .arg("--run-dir")
            .arg(tmp.path().join("run"))
            .arg("--qemu")
            .arg(&qemu)
            .env("VIRTNETD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "virtnetd does not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        ok(
            &socket,
            "POST",
            "/v1/networks",
            "application/xml",
            "<network><name>sw0</name><virtualport type='virtnet-vswitch'/></network>",
        );
        ok(
            &socket,
            "POST",
            "/v1/networks/sw0/start",
            "application/json",
            "",
        );
        let mut serials = Vec::new();
        for (name, smac, sip, bmac, bip) in GUESTS {
            let serial = tmp.path().join(format!("{name}.sock"));
            let mut dom = TestDomain::new(name, &serial);
            dom.shared_memory = true;
            let net = format!(
                "<interface type='network'><mac address='{smac}'/><source network='sw0'/>\
                 <model type='virtio'/></interface>"
            );
            dom = dom
                .nic(&net, smac, Some(sip))
                .nic(&bridge_nic(bmac, "br0"), bmac, Some(bip));
            ok(
                &socket,
                "POST",
                "/v1/domains",
                "application/xml",
                &dom.xml(guest),
            );
            serials.push(serial);
        }
        let results = runtime().block_on(async {
            let mut cons = Vec::new();
            for ((name, ..), serial) in GUESTS.iter().zip(&serials) {
                let s2 = socket.clone();
                let path = format!("/v1/domains/{name}/start");
                let started = tokio::task::spawn_blocking(move || {
                    ok(&s2, "POST", &path, "application/json", "")
                });
                let con = SerialConsole::connect(serial, Duration::from_secs(30));
                let (con, started) = tokio::join!(con, started);
                started.unwrap();
                cons.push(con.unwrap());
            }
            let long = Duration::from_secs(180);
            for (c, (_, smac, _, bmac, _)) in cons.iter_mut().zip(GUESTS) {
                c.wait_ready(long).await.unwrap();
                c.wait_nic_up(smac, long).await.unwrap();
                c.wait_nic_up(bmac, long).await.unwrap();
            }
            let (out, rc) = cons[1].run("iperf3 -s -D", long).await.unwrap();
            assert_eq!(rc, 0, "iperf3 -s: {out}");
            for target in ["10.20.0.12", "10.30.0.12"] {
                let cmd = format!(
                    "i=0; while [ $i -lt 30 ]; do ping -c 1 -W 1 {target} >/dev/null && break; i=$((i+1)); done"
                );
                cons[0].run(&cmd, long).await.unwrap();
            }
            let mut switch = Vec::new();
            let mut bridge = Vec::new();
            let daemon_pid = daemon.id();
            for r in 0..rounds {
                // A B, B A, A B, ...: neither path always runs first.
                let mut order = [(0, "10.20.0.12"), (1, "10.30.0.12")];
                if r % 2 == 1 {
                    order.reverse();
                }
                for (path, target) in order {
                    let cmd = format!("iperf3 -c {target} -t {seconds} -f m");
                    let (q0, s0) = cpu_split(daemon_pid);
                    let t0 = Instant::now();
                    let (out, rc) = cons[0]
                        .run(&cmd, Duration::from_secs(seconds + 120))
                        .await
                        .unwrap();
                    let wall = t0.elapsed().as_secs_f64();
                    let (q1, s1) = cpu_split(daemon_pid);
                    assert_eq!(rc, 0, "{cmd}: {out}");
                    let mbits = receiver_mbits(&out).unwrap_or_else(|| panic!("{cmd}: {out}"));
                    let gb = mbits * seconds as f64 / 8.0 / 1000.0;
                    let round = Round {
                        mbits,
                        qemu_s_per_gb: (q1 - q0) / gb,
                        switch_s_per_gb: (s1 - s0) / gb,
                        qemu_busy: (q1 - q0) / wall,
                    };
                    eprintln!("round {r}: {target}: {round:?}");
                    if path == 0 {
                        switch.push(round);
                    } else {
                        bridge.push(round);
                    }
                }
            }
            (switch, bridge)
        });
        for (name, ..) in GUESTS {
            ok(
                &socket,
                "POST",
                &format!("/v1/domains/{name}/destroy"),
                "application/json",
                "",
            );
        }
        ok(
            &socket,
            "POST",
            "/v1/networks/sw0/destroy",
            "application/json",
            "",
        );
        // SAFETY: kill with our child's pid.
        unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
        let _ = daemon.wait();
        results
    });
    let Some((switch, bridge)) = res else {
        eprintln!("guest_iperf: needs root; skipped");
        return;
    };
    report(seconds, &switch, &bridge, (load_start, load1()));
}

fn report(seconds: u64, switch: &[Round], bridge: &[Round], load: (f64, f64)) {
    let col = |v: &[Round], f: fn(&Round) -> f64| v.iter().map(f).collect::<Vec<f64>>();
    let (a, b) = (col(switch, |r| r.mbits), col(bridge, |r| r.mbits));
    let ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
    let ((ms, a_lo, a_hi), (mb, b_lo, b_hi)) = (stats(&a), stats(&b));
    let (mr, r_lo, r_hi) = stats(&ratios);
    let fmt = |v: &[f64], digits: usize| {
        v.iter()
            .map(|x| format!("{x:.digits$}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cost = |v: &[Round]| {
        let (q, ..) = stats(&col(v, |r| r.qemu_s_per_gb));
        let (sw, ..) = stats(&col(v, |r| r.switch_s_per_gb));
        let (busy, lo, hi) = stats(&col(v, |r| r.qemu_busy));
        format!("{q:.2} | {sw:.2} | {busy:.2} ({lo:.2}–{hi:.2})")
    };
    let table = format!(
        "| path | median (Mbit/s) | min–max (Mbit/s) | rounds (Mbit/s, in order) |\n|---|---|---|---|\n\
         | (a) virtnet-vswitch (vhost-user, `<interface type='network'>`) | {ms:.0} | {a_lo:.0}–{a_hi:.0} | {} |\n\
         | (b) Linux bridge + tap (`<interface type='bridge'>`) | {mb:.0} | {b_lo:.0}–{b_hi:.0} | {} |\n\
         | per-round ratio (a)/(b) | {mr:.2} | {r_lo:.2}–{r_hi:.2} | {} |\n\n\
         What bounds it, per path (medians of the rounds): CPU seconds per GB moved of the two \
         QEMU processes and of the switch, and QEMU CPU seconds per wall second (2.00 would be \
         both guests' single vCPUs busy all the time; this machine has 2 cores):\n\n\
         | path | QEMU CPU s/GB | switch CPU s/GB | QEMU CPU s per s (min–max) |\n|---|---|---|---|\n\
         | (a) virtnet-vswitch | {} |\n\
         | (b) Linux bridge + tap | {} |\n",
        fmt(&a, 0),
        fmt(&b, 0),
        fmt(&ratios, 2),
        cost(switch),
        cost(bridge),
    );
    let md = format!(
        "# Guest to guest TCP: virtnet-vswitch vs Linux bridge\n\n\
         `scripts/bench-guest-iperf --seconds {seconds} --rounds {}`: iperf3 -c (guest ga) → \
         iperf3 -s (guest gb), {seconds} s per round, the two paths alternating (A B, B A, ...); \
         QEMU 7.2 TCG, 1 vCPU and 256 MiB per guest, the test guest; receiver throughput. \
         {} cores, load average {:.1} at the start, {:.1} at the end (the machine is shared).\n\n{table}",
        switch.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.0,
        load.1,
    );
    println!("{md}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("guest-iperf.md"), &md).unwrap();
    let max = ms.max(mb).max(1.0);
    let bar = |y: u32, label: &str, v: f64, color: &str| {
        let w = (v / max * 420.0).round();
        format!(
            "<text x='10' y='{ty}'>{label}</text><rect x='200' y='{y}' width='{w}' height='26' fill='{color}'/>\
             <text x='{tx}' y='{ty}'>{v:.0} Mbit/s</text>\n",
            ty = y + 18,
            tx = 206.0 + w,
        )
    };
    let svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='760' height='130' font-family='sans-serif' font-size='13'>\n\
         <text x='10' y='20' font-weight='bold'>Guest to guest TCP (iperf3, median of {n} rounds, TCG guests); median per-round ratio {r:.2}</text>\n\
         {a}{b}</svg>\n",
        n = switch.len(),
        r = mr,
        a = bar(40, "(a) virtnet-vswitch", ms, "#3b7dd8"),
        b = bar(80, "(b) Linux bridge + tap", mb, "#999999"),
    );
    std::fs::write(dir.join("guest-iperf.svg"), svg).unwrap();
}
