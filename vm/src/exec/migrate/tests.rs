//! The executor against a fake pair of sides: every step failing in turn undoes exactly what
//! was done, newest first; after the switch-over nothing is undone.

use std::collections::BTreeSet;

use serde_json::json;
use virtnet_qemu::MigrationInfo;

use super::*;
use crate::plan::{plan_migrate, MigrateOptions};

/// Records every call; `query` answers `active` twice, then `completed` (or `status_end`).
#[derive(Default)]
struct Fake {
    calls: Vec<String>,
    polls: usize,
    status_end: Option<String>,
    fail: Option<&'static str>,
    paused: bool,
}

impl Fake {
    fn check(&mut self, call: &str) -> Result<(), SideError> {
        self.calls.push(call.to_string());
        if self.fail == Some(call) {
            return Err(SideError::fault(format!("{call} failed")));
        }
        Ok(())
    }
}

impl MigrationSides for Fake {
    async fn prepare(&mut self, uri: &str) -> Result<String, SideError> {
        self.check("prepare")?;
        Ok(uri.replace(":0", ":49152"))
    }
    async fn abort_destination(&mut self) -> Result<(), SideError> {
        self.check("abort_destination")
    }
    async fn finish(&mut self) -> Result<(), SideError> {
        self.check("finish")
    }
    async fn set_capabilities(&mut self, _caps: &[(String, bool)]) -> Result<(), SideError> {
        self.check("set_capabilities")
    }
    async fn set_parameters(&mut self, _max_bandwidth: u64) -> Result<(), SideError> {
        self.check("set_parameters")
    }
    async fn migrate(&mut self, uri: &str) -> Result<(), SideError> {
        assert_eq!(uri, "tcp:10.99.0.2:49152", "the port the destination chose");
        self.check("migrate")
    }
    async fn query(&mut self) -> Result<MigrationInfo, SideError> {
        self.calls.push("query".into());
        self.polls += 1;
        let status = if self.calls.iter().any(|c| c == "cancel") {
            "cancelled".to_string()
        } else if self.polls < 3 {
            "active".to_string()
        } else {
            self.paused = true;
            self.status_end
                .clone()
                .unwrap_or_else(|| "completed".into())
        };
        Ok(
            serde_json::from_value(json!({"status": status, "total-time": 900, "downtime": 40}))
                .unwrap(),
        )
    }
    async fn cancel(&mut self) -> Result<(), SideError> {
        self.check("cancel")
    }
    async fn resume_source(&mut self) -> Result<bool, SideError> {
        self.check("resume_source")?;
        Ok(std::mem::take(&mut self.paused))
    }
    async fn stop_source(&mut self) -> Result<Vec<String>, SideError> {
        self.check("stop_source")?;
        Ok(vec![])
    }
    async fn undefine_source(&mut self) -> Result<(), SideError> {
        self.check("undefine_source")
    }
    async fn ovn_change(&mut self, change: &LspOptionsChange) -> Result<(), SideError> {
        let rc = change
            .set
            .iter()
            .find(|(k, _)| k == "requested-chassis")
            .map_or("-", |(_, v)| v.as_str());
        // The port's last digit is enough to tell them apart here.
        let port = &change.port[change.port.len() - 1..];
        self.check(&format!("ovn:{port}:{rc}"))
    }
    fn progress(&mut self, _line: &str) {}
}

fn plan(undefine: bool) -> MigratePlan {
    let xml = "<domain type='qemu'><name>vm1</name><memory unit='MiB'>256</memory>\
               <os><type>hvm</type></os><devices/></domain>";
    let d = virtnet_conf::load_domain(xml).unwrap();
    plan_migrate(
        &d,
        &MigrateOptions {
            dest: "/run/b.sock".into(),
            stream: crate::plan::Stream::Tcp {
                host: "10.99.0.2".into(),
                port: 0,
            },
            timeout_ms: 5_000,
            max_bandwidth: None,
            undefine_source: undefine,
            switch_networks: BTreeSet::new(),
            switch_socket_dir: None,
            ovn: None,
        },
    )
    .unwrap()
}

const P1: &str = "0e8a7c2e-0000-4000-8000-000000000001";

/// A VM with one Open vSwitch NIC whose port `p1` had no `requested-chassis` before.
fn plan_ovn() -> MigratePlan {
    let xml = "<domain type='qemu'><name>vm1</name><uuid>6f1c3f43-1d1a-4b6a-9d55-2a3b4c5d6e7f</uuid>\
               <memory unit='MiB'>256</memory><os><type>hvm</type></os><devices>\
               <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br-int'/>\
               <virtualport type='openvswitch'><parameters interfaceid='0e8a7c2e-0000-4000-8000-000000000001'/></virtualport>\
               <model type='virtio'/></interface></devices></domain>";
    let d = virtnet_conf::load_domain(xml).unwrap();
    plan_migrate(
        &d,
        &MigrateOptions {
            dest: "/run/b.sock".into(),
            stream: crate::plan::Stream::Tcp {
                host: "10.99.0.2".into(),
                port: 0,
            },
            timeout_ms: 5_000,
            max_bandwidth: None,
            undefine_source: false,
            switch_networks: BTreeSet::new(),
            switch_socket_dir: None,
            ovn: Some(crate::plan::OvnMove {
                source_chassis: "h1".into(),
                dest_chassis: "h2".into(),
                ports: [(P1.to_string(), Default::default())].into(),
            }),
        },
    )
    .unwrap()
}

#[test]
fn ovn_moves_the_port_and_restores_it_on_each_failure() {
    let p = plan_ovn();
    let mut f = Fake::default();
    run(&mut f, &p, &opts()).unwrap();
    assert_eq!(
        calls(&f),
        [
            "ovn:1:h1,h2",
            "prepare",
            "set_capabilities",
            "set_parameters",
            "migrate",
            "finish",
            "ovn:1:h2",
            "stop_source"
        ]
    );
    // Every step up to the finish failing: the port's options restored last (none before).
    let expected_undo: [&[&str]; 7] = [
        &[],
        &["ovn:1:-"],
        &["abort_destination", "ovn:1:-"],
        &["abort_destination", "ovn:1:-"],
        &["abort_destination", "ovn:1:-"],
        &["cancel", "resume_source", "abort_destination", "ovn:1:-"],
        &["cancel", "resume_source", "abort_destination", "ovn:1:-"],
    ];
    for (n, undo) in expected_undo.iter().enumerate() {
        let mut f = Fake::default();
        let o = MigrateExecOptions {
            fail_at: Some(n),
            ..opts()
        };
        let e = run(&mut f, &p, &o).expect_err("the step fails");
        let VmError::MigrationFailed(mf) = &e else {
            panic!("{e}")
        };
        assert!(mf.step_index == n && mf.cleanup.is_empty(), "{e}");
        let c = calls(&f);
        assert_eq!(&c[c.len() - undo.len()..], *undo, "step {n}: calls {c:?}");
    }
    // The OVN step after the finish failing is a leftover, not an undo.
    let mut f = Fake {
        fail: Some("ovn:1:h2"),
        ..Fake::default()
    };
    let r = run(&mut f, &p, &opts()).unwrap();
    assert_eq!(r.leftovers.len(), 1, "{r:?}");
    assert_eq!(calls(&f).last(), Some(&"stop_source"));
}

fn opts() -> MigrateExecOptions {
    MigrateExecOptions {
        poll: Duration::from_millis(1),
        ..MigrateExecOptions::default()
    }
}

fn run(
    fake: &mut Fake,
    plan: &MigratePlan,
    o: &MigrateExecOptions,
) -> Result<MigrateReport, VmError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(migrate(plan, fake, o))
}

/// The calls without the polls.
fn calls(f: &Fake) -> Vec<&str> {
    f.calls
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "query")
        .collect()
}

#[test]
fn a_migration_runs_every_step_in_order() {
    let mut f = Fake::default();
    let r = run(&mut f, &plan(true), &opts()).unwrap();
    assert_eq!(
        calls(&f),
        [
            "prepare",
            "set_capabilities",
            "set_parameters",
            "migrate",
            "finish",
            "stop_source",
            "undefine_source"
        ]
    );
    assert_eq!((r.qemu.total_time, r.qemu.downtime), (Some(900), Some(40)));
    assert_eq!(r.uri, "tcp:10.99.0.2:49152");
    assert_eq!(r.steps.len(), 8);
}

#[test]
fn each_step_failing_undoes_what_came_before() {
    let p = plan(false);
    let expected_undo: [&[&str]; 7] = [
        &[],                                               // prepare
        &["abort_destination"],                            // set_capabilities
        &["abort_destination"],                            // set_parameters
        &["abort_destination"],                            // migrate
        &["cancel", "resume_source", "abort_destination"], // wait
        &["cancel", "resume_source", "abort_destination"], // finish
        &[],                                               // stop_source: after the switch-over
    ];
    for (n, undo) in expected_undo.iter().enumerate() {
        let mut f = Fake::default();
        let o = MigrateExecOptions {
            fail_at: Some(n),
            ..opts()
        };
        let r = run(&mut f, &p, &o);
        let c = calls(&f);
        if n == 6 {
            let r = r.expect("a failure after the switch-over is a leftover");
            assert_eq!(r.leftovers.len(), 1, "{r:?}");
            continue;
        }
        let e = r.expect_err("the step fails");
        let VmError::MigrationFailed(f) = &e else {
            panic!("{e}")
        };
        assert!(f.step_index == n && f.cleanup.is_empty(), "{e}");
        let tail: Vec<&str> = c[c.len() - undo.len()..].to_vec();
        assert_eq!(&tail, undo, "step {n}: calls {c:?}");
    }
}

#[test]
fn a_failed_migration_resumes_a_paused_source() {
    let mut f = Fake {
        status_end: Some("failed".into()),
        ..Fake::default()
    };
    let e = run(&mut f, &plan(false), &opts()).unwrap_err();
    assert!(
        e.to_string().contains("QEMU reports the migration failed"),
        "{e}"
    );
    assert!(
        e.to_string().contains("undone, the VM runs on the source"),
        "{e}"
    );
    assert!(!f.paused, "resumed");
    assert_eq!(
        calls(&f)[calls(&f).len() - 3..],
        ["cancel", "resume_source", "abort_destination"]
    );
}

#[test]
fn a_deadline_cancels() {
    let mut p = plan(false);
    for s in &mut p.steps {
        if let MigrateAction::WaitCompleted { timeout_ms } = &mut s.action {
            *timeout_ms = 0;
        }
    }
    let mut f = Fake::default();
    let e = run(&mut f, &p, &opts()).unwrap_err();
    assert!(
        e.to_string().contains("did not complete within 0 ms"),
        "{e}"
    );
    assert!(calls(&f).contains(&"cancel"));
}

#[test]
fn an_undo_that_fails_is_reported() {
    let mut f = Fake {
        fail: Some("abort_destination"),
        ..Fake::default()
    };
    let o = MigrateExecOptions {
        fail_at: Some(3),
        ..opts()
    };
    let e = run(&mut f, &plan(false), &o).unwrap_err();
    assert!(
        e.to_string().contains("NOT undone: abort the destination"),
        "{e}"
    );
    assert!(!e.is_user_error());
}
