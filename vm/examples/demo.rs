//! The main job, shown end to end: boot the test guest with a bridged NIC and watch it ping.
//!
//! In a private network namespace (made here, gone when the demo ends): a bridge `br0` with
//! 10.0.9.1/24; a domain with one `<interface type='bridge'>`; the start plan (printed);
//! the executor starting it (virtnet creates the tap, attaches it, passes its fd to QEMU);
//! the guest's `nic up` line and its ping of the bridge; stop; no tap left.
//!
//! Run as root: `cargo run -p virtnet-vm --example demo` (scripts/demo does).

use std::time::{Duration, Instant};

use virtnet_host::LinuxHost;
use virtnet_testkit::{bridge_nic, ip, links, runtime, with_netns, SerialConsole, TestDomain};
use virtnet_vm::exec::{self, ExecOptions};
use virtnet_vm::{plan_start, probe_caps, PlanContext, StopMode};

fn main() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        eprintln!("demo: needs root and qemu-system-x86_64 (run scripts/setup as root)");
        std::process::exit(1);
    };
    println!("== building the test guest (scripts/build-guest, cached)");
    let guest = virtnet_testkit::guest();
    println!(
        "   kernel {} at {}",
        guest.kernel_version,
        guest.dir.display()
    );
    let ok = with_netns(move || {
        println!("== in a new network namespace: bridge br0 with 10.0.9.1/24");
        ip("link add br0 type bridge");
        ip("addr add 10.0.9.1/24 dev br0");
        ip("link set br0 up");
        let tmp = tempfile::tempdir().expect("temp dir");
        let serial = tmp.path().join("serial.sock");
        let mac = "52:54:00:00:09:02";
        let xml = TestDomain::new("demo", &serial)
            .nic(&bridge_nic(mac, "br0"), mac, Some("10.0.9.2/24"))
            .xml(guest);
        let domain = virtnet_conf::load_domain(&xml).expect("the demo domain is valid");
        runtime().block_on(async {
            let caps = probe_caps(&qemu).await.expect("probe QEMU");
            let ctx = PlanContext::new(&qemu, caps, tmp.path().join("run"));
            let plan = plan_start(&domain, &ctx).expect("plan");
            println!("== the start plan (pure: nothing touched yet)");
            print!("{}", plan.summary());

            println!("== starting (tap, bridge port, QEMU with the fd, QMP, cont)");
            let host = LinuxHost::new().expect("netlink");
            let t0 = Instant::now();
            let opts = ExecOptions::default();
            let (vm, con) = tokio::join!(
                exec::start(&plan, &host, &opts),
                SerialConsole::connect(&serial, Duration::from_secs(20))
            );
            let vm = vm.unwrap_or_else(|e| panic!("{e}"));
            let mut con = con.expect("serial console");
            let tap = vm.resources().nics[0].name.clone();
            println!(
                "   QEMU pid {} up in {:?}; tap {tap} on br0; links now: {}",
                vm.pid(),
                t0.elapsed(),
                links().join(" ")
            );
            let first = con
                .first_line(Duration::from_secs(60))
                .await
                .expect("first line");
            println!("   guest: {first}   ({:?} after start)", t0.elapsed());
            let up = con
                .wait_nic_up(mac, Duration::from_secs(60))
                .await
                .expect("nic up");
            println!("   guest: {up}   ({:?})", t0.elapsed());

            println!("== guest$ ping -c 3 -W 2 10.0.9.1");
            let (out, rc) = con
                .run("ping -c 3 -W 2 10.0.9.1", Duration::from_secs(60))
                .await
                .expect("run ping");
            for l in out.lines() {
                println!("   {l}");
            }
            println!("   rc={rc}");

            println!("== stopping (SIGTERM, then releasing host resources)");
            drop(con);
            let report = vm.stop(&host, StopMode::Destroy).await.expect("stop");
            println!("   QEMU ended by {:?} ({})", report.method, report.status);
            let left = links();
            println!("   links now: {}", left.join(" "));
            assert!(!left.contains(&tap), "tap {tap} left behind");
            println!("   tap {tap} is gone");
            rc == 0
        })
    });
    println!("== namespace removed (its thread ended)");
    if ok != Some(true) {
        eprintln!("demo: the guest could not ping the bridge");
        std::process::exit(1);
    }
}
