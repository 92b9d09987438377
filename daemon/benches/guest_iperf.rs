//! Benchmark (not a test): guest-to-guest TCP throughput (iperf3, in the test guest) between
//! the same two guests through (a) a `virtnet-vswitch` network managed by virtnetd
//! (`<interface type='network'>`, vhost-user) and (b) a Linux bridge with tap NICs
//! (`<interface type='bridge'>`, QEMU's virtio-net in user space: TCG guests cannot use
//! vhost-net). Each guest has one NIC of each kind; the two paths alternate per round, so a
//! change of the machine's load affects both. Real QEMU (TCG), root, a private network
//! namespace. Writes `daemon/bench-results/guest-iperf.md` and `guest-iperf.svg`.
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

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`
    }
    let seconds = arg("--seconds", 10);
    let rounds = arg("--rounds", 3) as usize;
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        eprintln!("guest_iperf: no usable QEMU; skipped");
        return;
    };
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
            for r in 0..rounds {
                for (target, into) in [("10.20.0.12", &mut switch), ("10.30.0.12", &mut bridge)] {
                    let cmd = format!("iperf3 -c {target} -t {seconds} -f m");
                    let (out, rc) = cons[0]
                        .run(&cmd, Duration::from_secs(seconds + 120))
                        .await
                        .unwrap();
                    assert_eq!(rc, 0, "{cmd}: {out}");
                    let mbits = receiver_mbits(&out).unwrap_or_else(|| panic!("{cmd}: {out}"));
                    eprintln!("round {r}: {target}: {mbits} Mbit/s");
                    into.push(mbits);
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
    report(seconds, &switch, &bridge);
}

fn report(seconds: u64, switch: &[f64], bridge: &[f64]) {
    let (ms, mb) = (median(switch), median(bridge));
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let table = format!(
        "| path | median (Mbit/s) | rounds (Mbit/s) |\n|---|---|---|\n\
         | (a) virtnet-vswitch (vhost-user, `<interface type='network'>`) | {ms:.0} | {} |\n\
         | (b) Linux bridge + tap (`<interface type='bridge'>`) | {mb:.0} | {} |\n\
         | ratio (a)/(b) | {:.2} | |\n",
        fmt(switch),
        fmt(bridge),
        ms / mb
    );
    let md = format!(
        "# Guest to guest TCP: virtnet-vswitch vs Linux bridge\n\n\
         `scripts/bench-guest-iperf --seconds {seconds} --rounds {}`: iperf3 -c (guest ga) → \
         iperf3 -s (guest gb), {seconds} s per round, the two paths alternating; QEMU 7.2 TCG, \
         1 vCPU and 256 MiB per guest, the test guest; receiver throughput.\n\n{table}",
        switch.len()
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
         <text x='10' y='20' font-weight='bold'>Guest to guest TCP (iperf3, median of {n}, TCG guests); ratio {r:.2}</text>\n\
         {a}{b}</svg>\n",
        n = switch.len(),
        r = ms / mb,
        a = bar(40, "(a) virtnet-vswitch", ms, "#3b7dd8"),
        b = bar(80, "(b) Linux bridge + tap", mb, "#999999"),
    );
    std::fs::write(dir.join("guest-iperf.svg"), svg).unwrap();
}
