//! Shared by the hot-plug end-to-end tests: a test VM booted with its live definition, QEMU's
//! view of a NIC's leftovers, fd counts, detaching and leak checks.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use virtnet_conf::interface::{Leaf, Spanned, Target};
use virtnet_conf::xml::{parse_document, Limits};
use virtnet_conf::{Domain, Interface};
use virtnet_host::{HostNet, LinuxHost};
use virtnet_qemu::QmpClient;
use virtnet_testkit::{SerialConsole, Snapshot, TestDomain};
use virtnet_vm::exec::PendingDetaches;
use virtnet_vm::exec::{self, AttachedNic, DetachOutcome, DetachReport, HotplugOptions};
use virtnet_vm::{DetachPlan, HostResources, RunningVm};

use super::{boot, Env};

/// Starts `dom` (its run dir under `dir`) on a new [`LinuxHost`], waits until the guest is
/// ready, and returns the host, the VM, its console and its live state.
pub async fn boot_live(
    env: &Env,
    dom: &TestDomain,
    dir: &Path,
) -> (LinuxHost, RunningVm, SerialConsole, Live) {
    let (xml, plan) = env.plan_in(dom, dir);
    let host = LinuxHost::new().unwrap();
    let (vm, con) = boot(&plan, &host, &dom.serial).await;
    let live = Live::new(&xml, &vm);
    (host, vm, con, live)
}

/// Detaches by `dp` and expects it done at once, with nothing left behind; prints how long it
/// took.
pub async fn detach_done(
    dp: &DetachPlan,
    host: &dyn HostNet,
    qmp: &QmpClient,
    opts: &HotplugOptions,
) -> DetachReport {
    let mut pending = PendingDetaches::default();
    let t = Instant::now();
    let out = exec::detach(dp, host, qmp, &mut pending, opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("detach took {:?}", t.elapsed());
    let DetachOutcome::Done(report) = out else {
        panic!("{out:?}")
    };
    assert!(report.left_behind.is_empty(), "{:?}", report.left_behind);
    report
}

/// Runs `cmd` in the guest with `{dev}` replaced by the interface of the `nic up` line `up`.
pub async fn run_on_nic(
    con: &mut SerialConsole,
    up: &str,
    cmd: &str,
    timeout: Duration,
) -> (String, i32) {
    let cmd = cmd.replace("{dev}", &guest_ifname(up));
    con.run(&cmd, timeout).await.unwrap()
}

/// What a hot-plug must not leak, taken while the VM runs: a snapshot (links, our fds, files
/// under `dir`; asserting we have fds to compare) and QEMU's (`pid`) open fd count.
pub fn baseline(dir: &Path, pid: u32) -> (Snapshot, usize) {
    let before = Snapshot::take(&[dir]);
    assert!(
        before.fds.len() > 3,
        "our fds are compared: {:?}",
        before.fds
    );
    (before, fd_count(pid))
}

/// Links, our fds and files added since `before` (QEMU, a child, runs throughout: its state
/// letter changes, so children are not compared).
pub fn leaks_since(before: &Snapshot) -> String {
    let mut b = before.clone();
    let mut now = before.again();
    b.children.clear();
    now.children.clear();
    b.leaks_in(&now)
}

/// The live definition of a VM just started from `xml`, as the daemon keeps it: every
/// interface with its QEMU id as alias and the tap it got as `<target dev>`.
pub fn live_domain(xml: &str, vm: &RunningVm) -> Domain {
    let mut d = virtnet_conf::load_domain(xml).expect("domain loads");
    for nic in &vm.plan().nics {
        let iface = &mut d.devices.interfaces[nic.index];
        iface.alias = Some(Leaf::new(nic.device_id.clone()));
        if let Some(r) = vm
            .resources()
            .nics
            .iter()
            .find(|r| r.nic == nic.index && r.kind.is_link())
        {
            let t = iface.target.get_or_insert_with(Target::default);
            if t.dev.is_none() {
                t.dev = Some(Spanned::new(r.name.clone()));
            }
        }
    }
    d
}

/// A VM's live state as the daemon would keep it across hot-plugs.
pub struct Live {
    /// The live definition.
    pub domain: Domain,
    /// Every host object the VM holds (start + attaches).
    pub held: HostResources,
}

impl Live {
    /// The live state right after start.
    pub fn new(xml: &str, vm: &RunningVm) -> Live {
        Live {
            domain: live_domain(xml, vm),
            held: vm.resources().clone(),
        }
    }

    /// Records an attached NIC; returns its live interface.
    pub fn add(&mut self, nic: &AttachedNic) -> Interface {
        let i = nic.interface().expect("attached interface XML reads back");
        self.domain.devices.interfaces.push(i.clone());
        self.held.add(&nic.host);
        i
    }

    /// Forgets a detached NIC.
    pub fn remove(&mut self, device_id: &str, released: &HostResources) {
        self.domain
            .devices
            .interfaces
            .retain(|i| i.alias() != Some(device_id));
        self.held.remove_part(released);
    }
}

/// An `<interface>` from XML.
pub fn iface(xml: &str) -> Interface {
    Interface::from_element(parse_document(xml, Limits::default()).unwrap()).unwrap()
}

/// Open fds of process `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits (up to `timeout`) until QEMU's fd count is `want` (QEMU closes some of a removed
/// device's fds in an RCU callback, just after `DEVICE_DELETED`); returns the last count.
pub async fn settle_fd_count(pid: u32, want: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let n = fd_count(pid);
        if n == want || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ids a NIC could have left in QEMU.
#[derive(Debug, Clone, Default)]
pub struct NicTrace {
    pub device: String,
    pub netdev: Option<String>,
    pub chardev: Option<String>,
    pub fd_names: Vec<String>,
}

impl NicTrace {
    pub fn of_plan(p: &virtnet_vm::AttachPlan) -> NicTrace {
        NicTrace {
            device: p.device_id.clone(),
            netdev: p.netdev_id.clone(),
            chardev: p.chardev_id.clone(),
            fd_names: p.fd_names.clone(),
        }
    }
}

/// `info network` (human monitor).
pub async fn info_network(qmp: &QmpClient) -> String {
    let v = qmp
        .execute(
            "human-monitor-command",
            json!({"command-line": "info network"}),
        )
        .await
        .expect("info network");
    v.as_str().unwrap_or_default().to_string()
}

/// Labels of QEMU's chardevs.
pub async fn chardevs(qmp: &QmpClient) -> Vec<String> {
    let v = qmp
        .execute("query-chardev", Value::Null)
        .await
        .expect("query-chardev");
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["label"].as_str().map(String::from))
        .collect()
}

/// Panics unless QEMU has nothing of `t`: no fd set, no fd under its getfd names, no
/// chardev, no netdev, no device.
pub async fn assert_nothing_left(qmp: &QmpClient, t: &NicTrace, context: &str) {
    let fdsets = qmp.query_fdsets().await.expect("query-fdsets");
    assert!(fdsets.is_empty(), "{context}: fd sets left: {fdsets:?}");
    for name in &t.fd_names {
        let e = qmp
            .closefd(name)
            .await
            .expect_err(&format!("{context}: QEMU still holds an fd named {name}"));
        assert!(e.to_string().contains("not found"), "{context}: {e}");
    }
    if let Some(c) = &t.chardev {
        let list = chardevs(qmp).await;
        assert!(!list.contains(c), "{context}: chardev {c} left: {list:?}");
    }
    let net = info_network(qmp).await;
    if let Some(n) = &t.netdev {
        assert!(
            !net.contains(&format!("{n}:")),
            "{context}: netdev {n} left:\n{net}"
        );
        let e = qmp
            .execute("netdev_del", json!({ "id": n }))
            .await
            .expect_err(&format!("{context}: netdev {n} still exists"));
        assert_eq!(e.qmp_class(), Some("DeviceNotFound"), "{context}: {e}");
    }
    assert!(
        !net.contains(&format!("{}:", t.device)),
        "{context}: device {} left:\n{net}",
        t.device
    );
    let e = qmp
        .execute(
            "qom-list",
            json!({"path": format!("/machine/peripheral/{}", t.device)}),
        )
        .await
        .expect_err(&format!("{context}: device {} still exists", t.device));
    assert_eq!(e.qmp_class(), Some("DeviceNotFound"), "{context}: {e}");
}

/// The interface name in a guest `nic up IFNAME MAC ADDRS` line.
pub fn guest_ifname(nic_up: &str) -> String {
    nic_up
        .trim_start_matches("virtnet-guest: nic up ")
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The median of some durations, in milliseconds.
pub fn median_ms(v: &[Duration]) -> f64 {
    let mut v: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Whether a path exists.
pub fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}
