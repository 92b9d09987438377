//! 100 attach/detach cycles of a bridge NIC on one VM (real QEMU 7.2, TCG, cooperating test
//! guest): QEMU's open fds and ours end where they started, no tap is left; then the same
//! hot-plug sent as bare QMP (tap + getfd + netdev_add + device_add; device_del + wait +
//! netdev_del) for the floor. Prints the median wall times of both.

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::hotplug::{baseline, boot_live, iface, leaks_since, median_ms, settle_fd_count};
use common::{env, scratch, BOOT};
use serde_json::json;
use virtnet_host::{BridgePortOpts, HostNet, LinuxHost, MacAddr, TapSpec};
use virtnet_testkit::{add_bridge, bridge_nic, links, runtime, with_netns_exclusive, TestDomain};
use virtnet_vm::exec::{self, DetachOutcome, HotplugOptions, PendingDetaches};
use virtnet_vm::{plan_attach, plan_detach, StopMode};

const CYCLES: usize = 100;
/// One bare-QMP floor cycle after every this many of ours (interleaved, so both see the same
/// machine load).
const FLOOR_EVERY: usize = 5;

#[test]
fn hundred_attach_detach_cycles_leak_nothing() {
    let Some(env) = env() else { return };
    with_netns_exclusive(move || {
        add_bridge("br0", Some("10.0.24.1/24"));
        let (tmp, serial) = scratch();
        let mac = "52:54:00:00:24:02";
        let dom = TestDomain::new("cycles", &serial).ip(mac, "10.0.24.2/24");
        runtime().block_on(async {
            let (host, vm, mut con, mut live) = boot_live(&env, &dom, tmp.path()).await;
            let qmp = vm.qmp();
            let pid = vm.pid();
            let links_before = links();
            let (before, qemu_fds) = baseline(tmp.path(), pid);
            let opts = HotplugOptions {
                unplug_timeout: Duration::from_secs(30),
                ..HotplugOptions::default()
            };
            let nic_xml = bridge_nic(mac, "br0");
            let (mut attach_t, mut detach_t) = (Vec::new(), Vec::new());
            let (mut plan_t, mut unplan_t) = (Vec::new(), Vec::new());
            let (mut fa, mut fd) = (Vec::new(), Vec::new());
            let mut pending = PendingDetaches::default();
            for i in 0..CYCLES {
                let from = con.lines().len();
                let t = Instant::now();
                let ap = plan_attach(&live.domain, &iface(&nic_xml), &env.caps)
                    .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
                plan_t.push(t.elapsed());
                let t = Instant::now();
                let nic = exec::attach(&ap, &host, qmp, &opts)
                    .await
                    .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
                attach_t.push(t.elapsed());
                let li = live.add(&nic);
                if i % 25 == 0 || i == CYCLES - 1 {
                    // Now and then the guest proves the NIC works before it goes.
                    con.wait_line_from(
                        from,
                        |l| l.starts_with("virtnet-guest: nic up ") && l.contains(mac),
                        BOOT,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
                }
                let t = Instant::now();
                let dp = plan_detach(&live.domain, &li, &live.held).unwrap();
                unplan_t.push(t.elapsed());
                let t = Instant::now();
                let out = exec::detach(&dp, &host, qmp, &mut pending, &opts)
                    .await
                    .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
                detach_t.push(t.elapsed());
                let DetachOutcome::Done(report) = out else {
                    panic!("cycle {i}: {out:?}")
                };
                assert!(report.left_behind.is_empty(), "cycle {i}: {report:?}");
                live.remove(&report.device_id, &report.released);
                if i % FLOOR_EVERY == FLOOR_EVERY - 1 {
                    let (a, d) = floor(&host, qmp, mac).await;
                    fa.push(a);
                    fd.push(d);
                }
            }
            assert_eq!(&live.held, vm.resources());
            let n = settle_fd_count(pid, qemu_fds, Duration::from_secs(5)).await;
            assert_eq!(n, qemu_fds, "QEMU's open fds after {CYCLES} cycles");
            assert_eq!(links(), links_before, "links after {CYCLES} cycles");
            let leaks = leaks_since(&before);
            assert!(leaks.is_empty(), "after {CYCLES} cycles:\n{leaks}");

            eprintln!(
                "TIMING bridge NIC, {CYCLES} cycles: exec::attach median {:.2} ms (+ plan_attach \
                 {:.2} ms), bare QMP floor {:.2} ms; exec::detach median {:.1} ms (+ plan_detach \
                 {:.2} ms), floor {:.1} ms ({} floor cycles interleaved)",
                median_ms(&attach_t),
                median_ms(&plan_t),
                median_ms(&fa),
                median_ms(&detach_t),
                median_ms(&unplan_t),
                median_ms(&fd),
                fa.len(),
            );
            vm.stop(&host, StopMode::Destroy).await.unwrap();
        });
    });
}

/// The same hot-plug as bare calls: tap on the bridge, getfd, netdev_add, device_add; then
/// device_del, wait for DEVICE_DELETED, netdev_del. Returns the (attach, detach) wall times.
async fn floor(host: &LinuxHost, qmp: &virtnet_qemu::QmpClient, mac: &str) -> (Duration, Duration) {
    let t = Instant::now();
    let spec = TapSpec {
        name: None,
        guest_mac: mac.parse::<MacAddr>().unwrap(),
        mtu: None,
        queues: 1,
        vnet_hdr: true,
    };
    let tap = host.create_tap(&spec).unwrap();
    host.attach_to_bridge(&tap.name, "br0", &BridgePortOpts::default())
        .unwrap();
    qmp.getfd("tapfd-floor", tap.fds[0].as_fd()).await.unwrap();
    qmp.execute(
        "netdev_add",
        json!({"type": "tap", "fd": "tapfd-floor", "id": "hostfloor"}),
    )
    .await
    .unwrap();
    qmp.execute(
        "device_add",
        json!({"driver": "virtio-net-pci", "netdev": "hostfloor", "id": "floor",
               "mac": mac, "bus": "pci.0", "addr": "0x5"}),
    )
    .await
    .unwrap();
    let attach = t.elapsed();
    drop(tap.fds);
    let t = Instant::now();
    qmp.device_del_and_wait("floor", Duration::from_secs(30))
        .await
        .unwrap();
    qmp.execute("netdev_del", json!({"id": "hostfloor"}))
        .await
        .unwrap();
    let detach = t.elapsed();
    host.delete_link(&tap.name, Some(tap.ifindex)).unwrap();
    (attach, detach)
}
