//! Benchmark (not a test): time from the start of the executor to the guest's first console
//! line under TCG, beside the same QEMU argv launched by hand. Plain `std::time`, medians.
//!
//! `cargo run --release -p virtnet-vm --example boot_bench [RUNS]` as root (default 5 runs).
//!
//! Rows:
//! - by hand: the plan's argv without `-S`, spawned directly (a user-mode NIC: no host steps);
//! - executor, user NIC: `exec::start` (run dir, spawn, QMP handshake, `cont`) on that domain;
//! - executor, bridge NIC: the same with a tap created and attached to a bridge.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use virtnet_host::LinuxHost;
use virtnet_qemu::argv::HostOpen;
use virtnet_testkit::{bridge_nic, ip, runtime, with_netns, SerialConsole, TestDomain};
use virtnet_vm::exec::{self, ExecOptions};
use virtnet_vm::{plan_start, probe_caps, PlanContext, StartPlan, StopMode};

const FIRST_LINE: Duration = Duration::from_secs(60);

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        std::process::exit(1);
    };
    let guest = virtnet_testkit::guest();
    let rows = with_netns(move || {
        ip("link add br0 type bridge");
        ip("link set br0 up");
        let rt = runtime();
        let caps = rt.block_on(probe_caps(&qemu)).expect("probe QEMU");
        let host = LinuxHost::new().expect("netlink");
        let mut by_hand = Vec::new();
        let mut exec_user = Vec::new();
        let mut exec_bridge = Vec::new();
        for _ in 0..runs {
            let tmp = tempfile::tempdir().unwrap();
            let serial = tmp.path().join("serial.sock");
            let user = "<interface type='user'><mac address='52:54:00:00:0b:01'/>\
                        <model type='virtio'/></interface>";
            let xml = TestDomain::new("bench", &serial)
                .nic(user, "", None)
                .xml(guest);
            let plan = make_plan(&xml, &qemu, caps, &tmp.path().join("run"));
            by_hand.push(rt.block_on(by_hand_run(&plan, &serial)));
            exec_user.push(rt.block_on(exec_run(&plan, &host, &serial)));
            let xml = TestDomain::new("bench", &serial)
                .nic(&bridge_nic("52:54:00:00:0b:02", "br0"), "", None)
                .xml(guest);
            let plan = make_plan(&xml, &qemu, caps, &tmp.path().join("run"));
            exec_bridge.push(rt.block_on(exec_run(&plan, &host, &serial)));
        }
        vec![
            ("same argv by hand (no -S)", by_hand),
            ("executor, user NIC", exec_user),
            ("executor, bridge NIC (tap)", exec_bridge),
        ]
    })
    .expect("root");
    println!("start → first guest console line, TCG, {runs} runs each");
    println!("| path | median | min | max |");
    println!("|---|---|---|---|");
    for (name, mut v) in rows {
        v.sort();
        println!(
            "| {name} | {:.0} ms | {:.0} ms | {:.0} ms |",
            ms(v[v.len() / 2]),
            ms(v[0]),
            ms(v[v.len() - 1])
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn make_plan(xml: &str, qemu: &Path, caps: virtnet_qemu::QemuCaps, run_dir: &Path) -> StartPlan {
    let d = virtnet_conf::load_domain(xml).expect("domain");
    plan_start(&d, &PlanContext::new(qemu, caps, run_dir)).expect("plan")
}

/// The executor: start (host steps, spawn, QMP, cont) with the console connected meanwhile.
async fn exec_run(plan: &StartPlan, host: &LinuxHost, serial: &Path) -> Duration {
    let t0 = Instant::now();
    let opts = ExecOptions::default();
    let (vm, con) = tokio::join!(
        exec::start(plan, host, &opts),
        SerialConsole::connect(serial, Duration::from_secs(20))
    );
    let vm = vm.unwrap_or_else(|e| panic!("{e}"));
    let mut con = con.expect("console");
    con.first_line(FIRST_LINE).await.expect("first line");
    let t = t0.elapsed();
    drop(con);
    vm.stop(host, StopMode::Destroy).await.expect("stop");
    t
}

/// The plan's argv without `-S` (the guest runs at once), spawned by hand.
async fn by_hand_run(plan: &StartPlan, serial: &Path) -> Duration {
    std::fs::create_dir(&plan.run_dir).expect("run dir");
    // The plan passes the monitor and the console as listening fds; by hand QEMU opens them by
    // path instead.
    let args: Vec<String> = plan
        .argv
        .iter()
        .filter(|a| *a != "-S")
        .map(|a| {
            plan.pass_fds.iter().fold(a.clone(), |a, p| match &p.open {
                HostOpen::ListenUnix { path } => a.replace(
                    &format!(",fd={},", p.fd),
                    &format!(",path={},", path.display()),
                ),
                HostOpen::WriteFile { .. } => a,
            })
        })
        .collect();
    let t0 = Instant::now();
    let mut child = Command::new(&plan.qemu_binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn QEMU");
    let mut con = SerialConsole::connect(serial, Duration::from_secs(20))
        .await
        .expect("console");
    con.first_line(FIRST_LINE).await.expect("first line");
    let t = t0.elapsed();
    drop(con);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&plan.run_dir);
    let _ = std::fs::remove_file(serial);
    t
}
