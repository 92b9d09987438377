//! Benchmark (not a test): a plot of what an operator's scraper sees. One virtnetd (QEMU
//! confined, the default) with `--metrics-listen`, one TCG test guest on a bridge in a private
//! network namespace; `/metrics` is scraped every 200 ms over TCP while the guest pings the
//! bridge in three phases (idle, 50 small pings/s, 100 pings/s of 1400 bytes, idle). The NIC's
//! packet counters (`virtnet_nic_{rx,tx}_packets_total`) become rates, written as an SVG line
//! plot to `daemon/bench-results/metrics.svg`. Run it with `scripts/bench-metrics-plot`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use virtnet_testkit::{bridge_nic, ip, SerialConsole, TestDomain};

const LISTEN: &str = "127.0.0.1:9861";
const MAC: &str = "52:54:00:00:08:02";
const PERIOD: Duration = Duration::from_millis(200);

/// One HTTP/1.1 request on `stream`; the status and body.
fn http(
    mut s: impl Read + Write,
    method: &str,
    path: &str,
    ctype: &str,
    body: &str,
) -> (u16, String) {
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The value of sample `name` of the bench NIC in an exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    let mac = format!("mac=\"{MAC}\"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&mac))
        .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
}

/// (seconds since the start, tx packets/s, rx packets/s), the guest's view.
type Point = (f64, f64, f64);

fn svg(points: &[Point], phases: &[(f64, &str)]) -> String {
    let (w, h, left, top, bottom) = (720.0, 320.0, 60.0, 30.0, 50.0);
    let t_max = points.last().map_or(1.0, |p| p.0).max(1.0);
    let y_max = points.iter().map(|p| p.1.max(p.2)).fold(10.0, f64::max) * 1.1;
    let x = |t: f64| left + (w - left - 20.0) * t / t_max;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / y_max);
    let line = |pick: fn(&Point) -> f64| {
        points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(pick(p))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='{left}' y='18' font-size='14'>virtnet_nic_*_packets_total as rates (scraped every {} ms)</text>\n",
        PERIOD.as_millis()
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        s += &format!(
            "<line x1='{left}' x2='{}' y1='{1:.1}' y2='{1:.1}' stroke='#ddd'/><text x='{2}' y='{3:.1}' text-anchor='end'>{v:.0}</text>\n",
            w - 20.0,
            y(v),
            left - 5.0,
            y(v) + 4.0
        );
    }
    for (t, label) in phases {
        s += &format!(
            "<line x1='{0:.1}' x2='{0:.1}' y1='{top}' y2='{1}' stroke='#aaa' stroke-dasharray='3,3'/><text x='{2:.1}' y='{3}' fill='#555'>{label}</text>\n",
            x(*t),
            h - bottom,
            x(*t) + 3.0,
            top + 12.0
        );
    }
    s += &format!(
        "<polyline fill='none' stroke='#c0392b' stroke-width='2' points='{}'/>\n\
         <polyline fill='none' stroke='#2471a3' stroke-width='2' stroke-dasharray='5,3' points='{}'/>\n\
         <text x='{left}' y='{}'>seconds</text><text x='{}' y='{}' fill='#c0392b'>tx (guest sent)</text><text x='{}' y='{}' fill='#2471a3'>rx (guest received)</text>\n\
         <text x='10' y='{}' transform='rotate(-90 10,{})' >packets/s</text>\n</svg>\n",
        line(|p| p.1),
        line(|p| p.2),
        h - 15.0,
        left + 120.0,
        h - 15.0,
        left + 260.0,
        h - 15.0,
        h / 2.0,
        h / 2.0
    );
    s
}

fn main() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        eprintln!("metrics_plot: needs root and QEMU");
        return;
    };
    let guest = virtnet_testkit::guest();
    let out = virtnet_testkit::repo_root().join("daemon/bench-results");
    virtnet_testkit::with_netns(move || {
        ip("link add br0 type bridge");
        ip("addr add 10.0.8.1/24 dev br0");
        ip("link set br0 up");
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        if let Some(sb) = virtnet_testkit::sandbox() {
            virtnet_testkit::sandbox_run_dir(base, &sb);
        }
        let socket = base.join("run/virtnetd.sock");
        let log = std::fs::File::create(base.join("virtnetd.log")).unwrap();
        let mut daemon = Command::new(env!("CARGO_BIN_EXE_virtnetd"))
            .arg("--state-dir")
            .arg(base.join("state"))
            .arg("--run-dir")
            .arg(base.join("run"))
            .arg("--qemu")
            .arg(&qemu)
            .args(["--metrics-listen", LISTEN])
            .env("VIRTNETD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start virtnetd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "virtnetd does not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        let api = |method: &str, path: &str, ctype: &str, body: &str| {
            http(
                UnixStream::connect(&socket).unwrap(),
                method,
                path,
                ctype,
                body,
            )
        };
        let serial = base.join("serial.sock");
        let xml = TestDomain::new("plot", &serial)
            .nic(&bridge_nic(MAC, "br0"), MAC, Some("10.0.8.2/24"))
            .xml(guest);
        assert_eq!(api("POST", "/v1/domains", "application/xml", &xml).0, 201);
        let (s, v) = api("POST", "/v1/domains/plot/start", "application/json", "");
        assert_eq!(s, 200, "{v}");
        let rt = virtnet_testkit::runtime();
        let mut con = rt.block_on(async {
            let mut c = SerialConsole::connect(&serial, Duration::from_secs(10))
                .await
                .unwrap();
            c.wait_ready(Duration::from_secs(180)).await.unwrap();
            c.wait_nic_up(MAC, Duration::from_secs(60)).await.unwrap();
            c
        });

        // Phases: (start second, what the guest does in the background).
        let phases: [(f64, &str, Option<&str>); 4] = [
            (0.0, "idle", None),
            (
                2.0,
                "50 pings/s",
                Some("ping -q -c 200 -i 0.02 10.0.8.1 </dev/null >/dev/null 2>&1 &"),
            ),
            (
                6.5,
                "100 pings/s, 1400 B",
                Some("ping -q -c 300 -i 0.01 -s 1400 10.0.8.1 </dev/null >/dev/null 2>&1 &"),
            ),
            (10.5, "idle", None),
        ];
        let end = 13.0;
        let started = Instant::now();
        let mut next_phase = 0;
        let mut last: Option<(f64, f64, f64)> = None;
        let mut points = Vec::new();
        loop {
            let t = started.elapsed().as_secs_f64();
            if t > end {
                break;
            }
            while next_phase < phases.len() && phases[next_phase].0 <= t {
                if let Some(cmd) = phases[next_phase].2 {
                    let (_, rc) = rt.block_on(con.run(cmd, Duration::from_secs(10))).unwrap();
                    assert_eq!(rc, 0, "{cmd}");
                }
                next_phase += 1;
            }
            let (s, text) = http(
                std::net::TcpStream::connect(LISTEN).unwrap(),
                "GET",
                "/metrics",
                "text/plain",
                "",
            );
            assert_eq!(s, 200);
            let t = started.elapsed().as_secs_f64();
            let tx = sample(&text, "virtnet_nic_tx_packets_total").expect("the NIC's tx counter");
            let rx = sample(&text, "virtnet_nic_rx_packets_total").expect("the NIC's rx counter");
            if let Some((t0, tx0, rx0)) = last {
                let dt = t - t0;
                points.push((t, (tx - tx0) / dt, (rx - rx0) / dt));
            }
            last = Some((t, tx, rx));
            std::thread::sleep(
                PERIOD.saturating_sub(Duration::from_secs_f64(started.elapsed().as_secs_f64() - t)),
            );
        }
        drop(con);
        let (s, v) = api("POST", "/v1/domains/plot/destroy", "application/json", "");
        assert_eq!(s, 200, "{v}");
        // SAFETY: kill with our child's pid and a valid signal.
        unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
        let _ = daemon.wait();

        let marks: Vec<(f64, &str)> = phases.iter().map(|p| (p.0, p.1)).collect();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("metrics.svg"), svg(&points, &marks)).unwrap();
        let peak = points.iter().map(|p| p.1).fold(0.0, f64::max);
        println!(
            "{} scrapes, peak tx {peak:.0} packets/s; wrote {}",
            points.len() + 1,
            out.join("metrics.svg").display()
        );
    });
}
