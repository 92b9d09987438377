//! Measurement (not a test): wall time of `exec::start` (run dir, host steps, spawn, QMP
//! handshake, `cont`) for the test domain with a user-mode NIC, under TCG. Medians.
//!
//! `cargo run -p virtnet-vm --example start_time [RUNS] [confined]` as root (default 9 runs;
//! `confined`: QEMU runs as `virtnet-qemu` in its sandbox, as virtnetd runs it by default).

use std::time::{Duration, Instant};

use virtnet_host::LinuxHost;
use virtnet_testkit::{runtime, with_netns, TestDomain};
use virtnet_vm::exec::{self, ExecOptions};
use virtnet_vm::{plan_start, probe_caps, PlanContext, StopMode};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(9);
    let confined = std::env::args().nth(2).as_deref() == Some("confined");
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        std::process::exit(1);
    };
    let guest = virtnet_testkit::guest();
    let mut v = with_netns(move || {
        let rt = runtime();
        let caps = rt.block_on(probe_caps(&qemu)).expect("probe QEMU");
        let host = LinuxHost::new().expect("netlink");
        let mut v = Vec::new();
        for _ in 0..runs {
            let tmp = tempfile::tempdir().unwrap();
            let serial = tmp.path().join("serial.sock");
            let user = "<interface type='user'><mac address='52:54:00:00:0b:01'/>\
                        <model type='virtio'/></interface>";
            let xml = TestDomain::new("bench", &serial)
                .nic(user, "", None)
                .xml(guest);
            let d = virtnet_conf::load_domain(&xml).expect("domain");
            let mut ctx = PlanContext::new(&qemu, caps, tmp.path().join("run"));
            if confined {
                ctx.sandbox = virtnet_testkit::sandbox();
                virtnet_testkit::sandbox_run_dir(tmp.path(), ctx.sandbox.as_ref().unwrap());
            }
            let plan = plan_start(&d, &ctx).expect("plan");
            let t0 = Instant::now();
            let vm = rt
                .block_on(exec::start(&plan, &host, &ExecOptions::default()))
                .unwrap_or_else(|e| panic!("{e}"));
            v.push(t0.elapsed());
            rt.block_on(vm.stop(&host, StopMode::Destroy))
                .expect("stop");
        }
        v
    })
    .expect("root");
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "exec::start, TCG, user NIC, {}, {runs} runs: median {:.1} ms, min {:.1} ms, max {:.1} ms",
        if confined { "confined" } else { "unconfined" },
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1])
    );
}
