//! Two real guests (QEMU 7.2, TCG, the test guest) with vhost-user NICs on the switch:
//! QEMU is the socket server (`mode='server'`), the switch the client. They ping each
//! other through it; then the switch is killed and started again while the guests keep
//! running, and the pings resume once it has reconnected. Skips (with a reason) only when
//! not root or without QEMU, like the other end-to-end tests.

use std::path::Path;
use std::time::Duration;

use virtnet_host::{HostNet, LinuxHost};
use virtnet_qemu::QemuCaps;
use virtnet_testkit::{runtime, with_netns, GuestArtifacts, SerialConsole, Snapshot, TestDomain};
use virtnet_vhost_net::{PortConfig, Switch, SwitchConfig};
use virtnet_vm::exec::{self, ExecOptions};
use virtnet_vm::{plan_start, PlanContext, RunningVm, StartPlan, StopMode, VmError};

const BOOT: Duration = Duration::from_secs(90);
const CMD: Duration = Duration::from_secs(60);

fn plan(qemu: &Path, caps: QemuCaps, xml: &str, run: &Path) -> StartPlan {
    let d = virtnet_conf::load_domain(xml).unwrap_or_else(|e| panic!("{e:?}\n{xml}"));
    plan_start(&d, &PlanContext::new(qemu, caps, run)).unwrap_or_else(|e| panic!("plan: {e}"))
}

async fn start(
    plan: &StartPlan,
    host: &dyn HostNet,
    serial: &Path,
) -> Result<(RunningVm, SerialConsole), VmError> {
    let opts = ExecOptions {
        start_timeout: Duration::from_secs(90),
        ..ExecOptions::default()
    };
    let (vm, con) = tokio::join!(
        exec::start(plan, host, &opts),
        SerialConsole::connect(serial, Duration::from_secs(60))
    );
    Ok((vm?, con.unwrap_or_else(|e| panic!("serial console: {e}"))))
}

fn domain(guest: &GuestArtifacts, name: &str, dir: &Path, mac: &str, ip: &str) -> String {
    let socket = dir.join(format!("{name}.sock"));
    let nic = format!(
        "<interface type='vhostuser'><mac address='{mac}'/>\
         <source type='unix' path='{}' mode='server'/><model type='virtio'/></interface>",
        socket.display()
    );
    let mut dom =
        TestDomain::new(name, dir.join(format!("{name}.serial"))).nic(&nic, mac, Some(ip));
    dom.shared_memory = true;
    dom.xml(guest)
}

fn ports(sw: &Switch, dir: &Path) {
    for n in ["vsa", "vsb"] {
        sw.add_port(PortConfig::new(n, dir.join(format!("{n}.sock"))))
            .unwrap();
    }
}

struct Log;
impl log::Log for Log {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("{}: {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

#[test]
fn two_guests_ping_through_the_switch_and_survive_its_restart() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    let guest = virtnet_testkit::guest();
    let _ = log::set_logger(&Log).map(|()| log::set_max_level(log::LevelFilter::Warn));
    with_netns(move || {
        let rt = runtime();
        let caps = rt
            .block_on(virtnet_vm::probe_caps(&qemu))
            .expect("probe QEMU");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (ma, mb) = ("52:54:00:00:07:02", "52:54:00:00:07:03");
        let pa = plan(
            &qemu,
            caps,
            &domain(guest, "vsa", dir, ma, "10.0.7.2/24"),
            &dir.join("ra"),
        );
        let pb = plan(
            &qemu,
            caps,
            &domain(guest, "vsb", dir, mb, "10.0.7.3/24"),
            &dir.join("rb"),
        );
        let before = Snapshot::take(&[dir]);
        // The switch starts first and keeps trying until QEMU listens.
        let sw = Switch::new(SwitchConfig::default());
        ports(&sw, dir);
        rt.block_on(async {
            let host = LinuxHost::new().unwrap();
            let (sa, sb) = (dir.join("vsa.serial"), dir.join("vsb.serial"));
            let (a, b) = tokio::join!(start(&pa, &host, &sa), start(&pb, &host, &sb));
            let (va, mut ca) = a.unwrap();
            let (vb, mut cb) = b.unwrap();
            ca.wait_nic_up(ma, BOOT).await.unwrap();
            cb.wait_nic_up(mb, BOOT).await.unwrap();
            let (out, rc) = ca.run("ping -c 3 -W 2 10.0.7.3", CMD).await.unwrap();
            let log = std::fs::read_to_string(va.log_path()).unwrap_or_default();
            if rc != 0 {
                for t in std::fs::read_dir("/proc/self/task").unwrap() {
                    let p = t.unwrap().path();
                    let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
                    let wchan = std::fs::read_to_string(p.join("wchan")).unwrap_or_default();
                    eprintln!("thread {} {wchan}", comm.trim());
                }
            }
            assert_eq!(
                rc,
                0,
                "a → b through the switch:\n{out}\n{:?}\nQEMU log:\n{}",
                sw.list_ports(),
                &log[log.len().saturating_sub(3000)..]
            );
            let macs = sw.mac_table();
            assert!(
                macs.iter().any(|e| e.mac == ma && e.port == "vsa"),
                "{macs:?}"
            );
            assert!(
                macs.iter().any(|e| e.mac == mb && e.port == "vsb"),
                "{macs:?}"
            );

            // Kill the switch (all its connections and threads), start a new one.
            drop(sw);
            let sw = Switch::new(SwitchConfig::default());
            ports(&sw, dir);
            let mut ok = false;
            let mut last = String::new();
            for _ in 0..20 {
                let (out, rc) = cb.run("ping -c 1 -W 2 10.0.7.2", CMD).await.unwrap();
                if rc == 0 {
                    ok = true;
                    break;
                }
                last = out;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            assert!(
                ok,
                "pings resume after the switch restarts:\n{last}\n{:?}",
                sw.list_ports()
            );
            let (out, rc) = ca.run("ping -c 3 -W 2 10.0.7.3", CMD).await.unwrap();
            assert_eq!(rc, 0, "{out}");
            for p in sw.list_ports() {
                assert_eq!(
                    p.counters.total_drops() - p.counters.drops["rx_no_buffer"],
                    0,
                    "{p:?}"
                );
            }
            va.stop(&host, StopMode::Destroy).await.unwrap();
            vb.stop(&host, StopMode::Destroy).await.unwrap();
            drop(sw);
        });
        drop(rt);
        before.assert_no_leaks("two guests on the switch, switch restarted, all stopped");
    });
}
