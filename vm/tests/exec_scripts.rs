//! `<script>`/`<downscript>` in the start executor, against [`FakeHost`] for the links (no root,
//! no QEMU): the script gets the tap's name, its failure or timeout undoes the NIC and the
//! downscript does not run then; the downscript runs at rollback/stop, also from the stored
//! undo records a restarted daemon reads back.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use virtnet_host::{
    BridgePortOpts, FakeCall, FakeHost, HostNet, HostUndo, LinkStatus, MacAddr, MacvtapHandle,
    MacvtapSpec, PreparedVf, SavedVf, ScriptKind, ScriptRun, ScriptWait, TapHandle, TapSpec,
    VfSpec,
};
use virtnet_qemu::{QemuCaps, QemuVersion};
use virtnet_vm::exec::{self, ExecOptions, HostResources, StepId};
use virtnet_vm::{plan_start, PlanContext, StartPlan};

fn nics(script: &str, downscript: &str) -> String {
    format!(
        "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/>
           <model type='virtio'/></interface>
         <interface type='ethernet'><mac address='52:54:00:00:00:02'/>
           <script path='{script}'/><downscript path='{downscript}'/>
           <model type='virtio'/></interface>"
    )
}

fn plan(tmp: &Path, nics: &str) -> StartPlan {
    let xml = format!(
        "<domain type='qemu'><name>fake</name><memory unit='MiB'>64</memory>
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{nics}</devices></domain>"
    );
    let d = virtnet_conf::load_domain(&xml).expect("domain loads");
    let caps = QemuCaps {
        version: QemuVersion::new(7, 2, 0),
        vhost_net: false,
    };
    let mut ctx = PlanContext::new("/nonexistent/qemu", caps, tmp.join("vm"));
    // Outside the run dir, so it outlives the rollback and the test can read it.
    ctx.log_path = Some(tmp.join("vm.log"));
    plan_start(&d, &ctx).expect("plan")
}

fn host() -> FakeHost {
    let h = FakeHost::new();
    h.add_link("br0", "bridge");
    h
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn script_runs(h: &FakeHost) -> Vec<ScriptRun> {
    h.calls()
        .into_iter()
        .filter_map(|c| match c {
            FakeCall::RunScript(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn script_gets_the_tap_name_and_the_downscript_runs_at_rollback() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(tmp.path(), &nics("/etc/x/up", "/etc/x/down"));
    let h = host();
    let opts = ExecOptions {
        script_timeout: Duration::from_millis(1234),
        ..ExecOptions::default()
    };
    // No QEMU there: it fails at spawn, after every host step.
    let e = runtime().block_on(exec::start(&p, &h, &opts)).unwrap_err();
    assert_eq!(e.failed_step(), Some(StepId::Spawn), "{e}");
    let runs = script_runs(&h);
    let want = |kind, path: &str| ScriptRun {
        kind,
        path: path.into(),
        ifname: "vnet1".into(),
        nic: "net1".into(),
        log: Some(tmp.path().join("vm.log")),
        timeout: Duration::from_millis(1234),
    };
    assert_eq!(
        runs,
        [
            want(ScriptKind::Up, "/etc/x/up"),
            want(ScriptKind::Down, "/etc/x/down")
        ]
    );
    // The downscript ran before its tap was deleted (newest first), and all is gone.
    let calls = h.calls();
    let down = calls
        .iter()
        .position(|c| matches!(c, FakeCall::RunScript(r) if r.kind == ScriptKind::Down))
        .unwrap();
    let del = calls
        .iter()
        .position(|c| matches!(c, FakeCall::DeleteLink { name, .. } if name == "vnet1"))
        .unwrap();
    assert!(down < del, "{calls:?}");
    assert_eq!(h.links(), ["br0", "lo"]);
}

#[test]
fn script_failure_undoes_the_nic_and_skips_the_downscript() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(tmp.path(), &nics("/etc/x/up", "/etc/x/down"));
    // Calls: tap 0, attach 1, tap 2, script 3.
    let h = host();
    h.fail_at(3);
    let e = runtime()
        .block_on(exec::start(&p, &h, &ExecOptions::default()))
        .unwrap_err();
    assert_eq!(e.failed_step(), Some(StepId::Host(2)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("run script /etc/x/up"), "{msg}");
    assert!(msg.contains("everything it had set up was undone"), "{msg}");
    assert_eq!(h.links(), ["br0", "lo"], "{msg}");
    assert!(!tmp.path().join("vm").exists());
    let runs = script_runs(&h);
    assert_eq!(runs.len(), 1, "only the failed up-script: {runs:?}");
    assert_eq!(runs[0].kind, ScriptKind::Up);
}

/// [`FakeHost`] for links, the real runner for scripts.
struct RealScripts(FakeHost);

impl HostNet for RealScripts {
    fn create_tap(&self, spec: &TapSpec) -> virtnet_host::Result<TapHandle> {
        self.0.create_tap(spec)
    }
    fn open_tap(&self, name: &str, q: u16, v: bool) -> virtnet_host::Result<TapHandle> {
        self.0.open_tap(name, q, v)
    }
    fn attach_to_bridge(
        &self,
        port: &str,
        bridge: &str,
        opts: &BridgePortOpts,
    ) -> virtnet_host::Result<HostUndo> {
        self.0.attach_to_bridge(port, bridge, opts)
    }
    fn detach_from_bridge(&self, port: &str, bridge: &str) -> virtnet_host::Result<()> {
        self.0.detach_from_bridge(port, bridge)
    }
    fn ovs_add_port(&self, spec: &virtnet_host::OvsPortSpec) -> virtnet_host::Result<HostUndo> {
        self.0.ovs_add_port(spec)
    }
    fn ovs_del_port(&self, port: &str) -> virtnet_host::Result<()> {
        self.0.ovs_del_port(port)
    }
    fn ovs_interfaces(&self) -> virtnet_host::Result<Vec<virtnet_host::OvsInterface>> {
        self.0.ovs_interfaces()
    }
    fn create_macvtap(&self, spec: &MacvtapSpec) -> virtnet_host::Result<MacvtapHandle> {
        self.0.create_macvtap(spec)
    }
    fn delete_link(&self, name: &str, ifindex: Option<u32>) -> virtnet_host::Result<()> {
        self.0.delete_link(name, ifindex)
    }
    fn set_mac(&self, name: &str, mac: MacAddr) -> virtnet_host::Result<()> {
        self.0.set_mac(name, mac)
    }
    fn prepare_vf(&self, spec: &VfSpec) -> virtnet_host::Result<PreparedVf> {
        self.0.prepare_vf(spec)
    }
    fn restore_vf(&self, saved: &SavedVf) -> virtnet_host::Result<()> {
        self.0.restore_vf(saved)
    }
    fn link(&self, name: &str) -> virtnet_host::Result<Option<LinkStatus>> {
        self.0.link(name)
    }
    fn ipv4_neighbours(&self) -> virtnet_host::Result<Vec<virtnet_host::Neighbour>> {
        self.0.ipv4_neighbours()
    }
    fn start_script(&self, run: &ScriptRun) -> virtnet_host::Result<ScriptWait> {
        self.0.start_script(run)?;
        virtnet_host::script::spawn_script(run)
    }
    fn create_cgroup(
        &self,
        spec: &virtnet_host::CgroupSpec,
    ) -> virtnet_host::Result<virtnet_host::CreatedCgroup> {
        self.0.create_cgroup(spec)
    }
    fn remove_cgroup(&self, group: &virtnet_host::CgroupGroup) -> virtnet_host::Result<()> {
        self.0.remove_cgroup(group)
    }
    fn shape(&self, spec: &virtnet_host::ShapeSpec) -> virtnet_host::Result<HostUndo> {
        self.0.shape(spec)
    }
    fn unshape(&self, dev: &str, ifindex: u32) -> virtnet_host::Result<()> {
        self.0.unshape(dev, ifindex)
    }
    fn load_filter(&self, f: &virtnet_host::TapFilter) -> virtnet_host::Result<HostUndo> {
        self.0.load_filter(f)
    }
    fn delete_nft_table(&self, family: &str, name: &str) -> virtnet_host::Result<()> {
        self.0.delete_nft_table(family, name)
    }
    fn filter_tables(
        &self,
    ) -> virtnet_host::Result<Vec<(virtnet_host::nwfilter::FilterFamily, String)>> {
        self.0.filter_tables()
    }
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn hanging_script_times_out_undoes_the_nic_and_says_so_in_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let up = write_script(tmp.path(), "up", "echo \"setting up $1\"\nsleep 600");
    let marker = tmp.path().join("down-ran");
    let down = write_script(tmp.path(), "down", &format!("touch {}", marker.display()));
    let p = plan(
        tmp.path(),
        &nics(&up.display().to_string(), &down.display().to_string()),
    );
    let h = RealScripts(host());
    let opts = ExecOptions {
        script_timeout: Duration::from_millis(400),
        ..ExecOptions::default()
    };
    let t0 = Instant::now();
    // The wait is off the (one-thread) runtime: a task beside the start keeps ticking.
    let (e, ticks) = runtime().block_on(async {
        let ticker = tokio::spawn(async {
            let mut n = 0u32;
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                n += 1;
                if n == 20 {
                    return n;
                }
            }
        });
        let e = exec::start(&p, &h, &opts).await.unwrap_err();
        (e, ticker.is_finished())
    });
    assert!(ticks, "the runtime was blocked while the script ran");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(e.failed_step(), Some(StepId::Host(2)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("did not finish within 400ms"), "{msg}");
    assert!(msg.contains("setting up vnet1"), "{msg}");
    assert_eq!(h.0.links(), ["br0", "lo"]);
    assert!(!marker.exists(), "the downscript ran after a failed script");
    let log = std::fs::read_to_string(tmp.path().join("vm.log")).unwrap();
    let prefix = format!("net1 script {}: ", up.display());
    assert!(log.contains(&format!("{prefix}setting up vnet1")), "{log}");
    assert!(log.contains("did not finish within 400ms"), "{log}");
}

#[test]
fn stored_downscript_records_run_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let p = plan(tmp.path(), &nics("/etc/x/up", "/etc/x/down"));
    let h = host();
    // Record what a started VM holds, as the daemon stores it (JSON), and read it back.
    let mut undo = virtnet_host::UndoStack::new();
    let opts = ExecOptions::default();
    let _ = runtime().block_on(exec::start(&p, &h, &opts));
    for c in h.calls() {
        if let FakeCall::RunScript(r) = c {
            if r.kind == ScriptKind::Down {
                undo.push(HostUndo::RunScript(r));
            }
        }
    }
    let res = HostResources {
        nics: vec![],
        undo: undo.steps().to_vec(),
        cgroup: None,
    };
    let json = serde_json::to_string(&res).unwrap();
    assert!(json.contains("\"undo\":\"run_script\""), "{json}");
    let back: HostResources = serde_json::from_str(&json).unwrap();
    assert_eq!(back, res);
    let h2 = host();
    let errors = back.undo_stack().rollback(&h2);
    assert!(errors.is_empty(), "{errors:?}");
    let runs = script_runs(&h2);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].kind, ScriptKind::Down);
    assert_eq!(runs[0].path, PathBuf::from("/etc/x/down"));
    assert_eq!(runs[0].ifname, "vnet1");
    assert_eq!(runs[0].timeout, opts.script_timeout);
}
