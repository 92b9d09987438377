//! The hot-plug executor against [`FakeHost`] and a scripted QMP server (no root, no QEMU):
//! the command sequence, undo after a failure at every step, QEMU's errors, a stalled monitor,
//! and detach with its pending state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use virtnet_conf::xml::{parse_document, Limits};
use virtnet_conf::{Domain, Interface};
use virtnet_host::FakeHost;
use virtnet_qemu::{QemuCaps, QemuVersion};

use super::fake_qmp::{self, Reply};
use super::*;
use crate::plan::{plan_attach, plan_detach, AttachPlan, DetachPlan};

const CAPS: QemuCaps = QemuCaps {
    version: QemuVersion::new(7, 2, 22),
    vhost_net: false,
};

fn live() -> Domain {
    virtnet_conf::load_domain(
        "<domain type='qemu'><name>vm1</name><memory unit='MiB'>64</memory>
         <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
         <os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>
         <devices><interface type='user'><mac address='52:54:00:00:00:01'/>
         <model type='virtio'/></interface></devices></domain>",
    )
    .unwrap()
}

/// The detach plan for `nic` as it runs in [`live`] beside the domain's own NIC.
fn detach_plan_for(nic: &AttachedNic) -> DetachPlan {
    let iface = nic.interface().unwrap();
    let mut d = live();
    d.devices.interfaces.push(iface.clone());
    plan_detach(&d, &iface, &nic.host).unwrap()
}

fn iface(xml: &str) -> Interface {
    Interface::from_element(parse_document(xml, Limits::default()).unwrap()).unwrap()
}

fn plan(xml: &str) -> AttachPlan {
    plan_attach(&live(), &iface(xml), &CAPS).unwrap_or_else(|e| panic!("{e}"))
}

const BRIDGE_DOWN: &str = "<interface type='bridge'><mac address='52:54:00:00:00:05'/>\
    <source bridge='br0'/><model type='virtio'/><link state='down'/></interface>";
const BRIDGE_SHAPED: &str = "<interface type='bridge'><mac address='52:54:00:00:00:07'/>\
    <source bridge='br0'/><model type='virtio'/><link state='down'/>\
    <bandwidth><inbound average='122'/><outbound average='122'/></bandwidth></interface>";
const BRIDGE_FILTER: &str = "<interface type='bridge'><mac address='52:54:00:00:00:09'/>\
    <source bridge='br0'/><model type='virtio'/><filterref filter='clean-traffic'/>\
    <link state='down'/></interface>";
const VHOSTUSER: &str = "<interface type='vhostuser'><mac address='52:54:00:00:00:06'/>\
    <source type='unix' path='/run/vhost/vm1-a.sock' mode='client'/><model type='virtio'/>\
    </interface>";
const VHOSTUSER_SERVER: &str = "<interface type='vhostuser'><mac address='52:54:00:00:00:07'/>\
    <source type='unix' path='/run/vhost/vm1-b.sock' mode='server'/><model type='virtio'/>\
    </interface>";
const HOSTDEV: &str = "<interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:08'/>\
    <source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/>\
    </source></interface>";

fn host() -> FakeHost {
    let h = FakeHost::new();
    h.add_link("br0", "bridge");
    h
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// QEMU that accepts everything; `device_del` is followed by `DEVICE_DELETED`.
fn cooperative(cmd: &str, args: &Value) -> Reply {
    match cmd {
        "device_del" => {
            let id = args["id"].as_str().unwrap_or_default();
            Reply::Ok(json!({}), vec![Reply::deleted(id)])
        }
        "qom-list" => Reply::Err("DeviceNotFound", "Device not found".into()),
        "query-chardev" => chardevs("unix:/run/vhost/vm1-b.sock,server=on"),
        _ => Reply::ok(),
    }
}

/// `query-chardev` with the serial console and `charnet1` named `filename`.
fn chardevs(filename: &str) -> Reply {
    Reply::Ok(
        json!([
            {"label": "charserial0", "filename": "pty:/dev/pts/3", "frontend-open": true},
            {"label": "charnet1", "filename": filename, "frontend-open": false},
        ]),
        Vec::new(),
    )
}

fn fast() -> HotplugOptions {
    HotplugOptions {
        command_timeout: Duration::from_millis(500),
        unplug_timeout: Duration::from_millis(300),
        stalled_undo_timeout: Duration::from_millis(100),
        ..HotplugOptions::default()
    }
}

#[test]
fn attach_then_detach_in_libvirts_order() {
    rt().block_on(async {
        let h = host();
        let (qmp, log) = fake_qmp::start(cooperative).await;
        let p = plan(BRIDGE_DOWN);
        let nic = attach(&p, &h, &qmp, &fast()).await.unwrap();
        assert_eq!(
            log.commands(),
            ["getfd", "netdev_add", "device_add", "set_link"]
        );
        let all = log.all();
        assert_eq!(all[1].1["fdname"], "tapfd-net1");
        assert_eq!(all[2].1["fd"], "tapfd-net1");
        assert_eq!(all[4].1, json!({"name": "net1", "up": false}));
        assert_eq!(nic.device_id, "net1");
        assert_eq!(nic.host.nics.len(), 1);
        let tap = nic.host.nics[0].name.clone();
        assert!(h.links().contains(&tap));
        let live_iface = nic.interface().unwrap();
        assert_eq!(live_iface.target_dev(), Some(tap.as_str()));
        assert_eq!(live_iface.alias(), Some("net1"));
        // Stored and read back, it is the same.
        let stored: AttachedNic =
            serde_json::from_str(&serde_json::to_string(&nic).unwrap()).unwrap();
        assert_eq!(stored, nic);

        let dp = detach_plan_for(&nic);
        let mut pending = PendingDetaches::default();
        let out = detach(&dp, &h, &qmp, &mut pending, &fast()).await.unwrap();
        let DetachOutcome::Done(report) = out else {
            panic!("{out:?}")
        };
        assert!(report.left_behind.is_empty(), "{:?}", report.left_behind);
        assert_eq!(report.released, nic.host);
        assert_eq!(
            log.commands()[4..],
            ["device_del", "netdev_del"],
            "{:?}",
            log.commands()
        );
        assert_eq!(h.links(), ["br0", "lo"]);
        assert!(pending.is_empty());
    });
}

/// A filtered NIC's table exists once it is attached, is recorded with it, and goes with it.
#[test]
fn a_filter_table_comes_and_goes_with_its_nic() {
    rt().block_on(async {
        let h = host();
        let (qmp, _log) = fake_qmp::start(cooperative).await;
        let nic = attach(&plan(BRIDGE_FILTER), &h, &qmp, &fast())
            .await
            .unwrap();
        let tap = nic.host.nics[0].name.clone();
        let table = format!("virtnet-filter-vm1-{tap}");
        assert_eq!(h.nft_tables(), [format!("bridge/{table}")]);
        assert!(nic
            .host
            .undo
            .contains(&virtnet_host::HostUndo::DeleteNftTable {
                family: "bridge".into(),
                name: table,
            }));
        let dp = detach_plan_for(&nic);
        let mut pending = PendingDetaches::default();
        let out = detach(&dp, &h, &qmp, &mut pending, &fast()).await.unwrap();
        assert!(matches!(out, DetachOutcome::Done(_)), "{out:?}");
        assert!(h.nft_tables().is_empty());
        assert_eq!(h.links(), ["br0", "lo"]);
    });
}

/// For a failure at each step: which QEMU-side undo commands follow, in order.
fn expected_undo(step: AttachStepId) -> Vec<&'static str> {
    match step {
        AttachStepId::Access
        | AttachStepId::Host(_)
        | AttachStepId::GetFd(_)
        | AttachStepId::ChardevAdd
        | AttachStepId::WaitBackEnd => vec![],
        AttachStepId::NetdevAdd => vec!["closefd"],
        AttachStepId::DeviceAdd => vec!["netdev_del"],
        AttachStepId::SetLink => vec!["device_del", "netdev_del"],
    }
}

#[test]
fn a_failure_at_every_step_undoes_the_earlier_ones() {
    for xml in [
        BRIDGE_DOWN,
        BRIDGE_SHAPED,
        BRIDGE_FILTER,
        VHOSTUSER,
        VHOSTUSER_SERVER,
    ] {
        let p = plan(xml);
        for step in p.step_ids() {
            rt().block_on(async {
                let h = host();
                let (qmp, log) = fake_qmp::start(cooperative).await;
                let opts = HotplugOptions {
                    fail_at: Some(step),
                    ..fast()
                };
                let e = attach(&p, &h, &qmp, &opts).await.unwrap_err();
                assert_eq!(e.failed_attach_step(), Some(step), "{e}");
                let msg = e.to_string();
                assert!(msg.contains("everything it had set up was undone"), "{msg}");
                let label = match step {
                    crate::plan::AttachStepId::Host(n) => format!("host step {n}"),
                    s => format!("step {s}"),
                };
                assert!(msg.contains(&format!("failed at {label}")), "{msg}");
                assert!(!msg.contains("step host step"), "{msg}");
                let done: Vec<String> = p
                    .step_ids()
                    .into_iter()
                    .take_while(|s| *s != step)
                    .filter_map(|s| match p.step(s).unwrap().action {
                        crate::plan::AttachAction::Qmp { ref command, .. } => {
                            Some(command.execute.clone())
                        }
                        crate::plan::AttachAction::WaitBackEnd { .. } => {
                            Some("query-chardev".to_string())
                        }
                        crate::plan::AttachAction::Host(_)
                        | crate::plan::AttachAction::Access(_) => None,
                    })
                    .collect();
                let mut want = done.clone();
                let mut undo = expected_undo(step);
                let vhost_user = xml == VHOSTUSER || xml == VHOSTUSER_SERVER;
                if vhost_user && step != AttachStepId::ChardevAdd {
                    undo.push("chardev-remove");
                }
                if vhost_user {
                    undo.retain(|c| *c != "closefd");
                }
                want.extend(undo.iter().map(|s| s.to_string()));
                assert_eq!(log.commands(), want, "failing at {step}");
                assert_eq!(h.links(), ["br0", "lo"], "failing at {step}");
                assert!(h.shaped().is_empty(), "limits left failing at {step}");
                if xml == BRIDGE_SHAPED
                    && matches!(
                        step,
                        AttachStepId::NetdevAdd | AttachStepId::DeviceAdd | AttachStepId::SetLink
                    )
                {
                    let calls = h.calls();
                    let shaped =
                        |c: &&virtnet_host::FakeCall| matches!(c, virtnet_host::FakeCall::Shape(_));
                    let unshaped = |c: &&virtnet_host::FakeCall| {
                        matches!(c, virtnet_host::FakeCall::Unshape { .. })
                    };
                    assert!(
                        calls.iter().any(|c| shaped(&c)) && calls.iter().any(|c| unshaped(&c)),
                        "failing at {step}: {calls:?}"
                    );
                }
                assert!(h.nft_tables().is_empty(), "failing at {step}");
            });
        }
    }
}

#[test]
fn qemu_errors_name_the_step_and_the_reason() {
    rt().block_on(async {
        let h = host();
        let (qmp, log) = fake_qmp::start(|cmd, args| match cmd {
            "netdev_add" => Reply::Err("GenericError", "Duplicate ID 'hostnet1' for netdev".into()),
            "closefd" => Reply::Err(
                "GenericError",
                format!("File descriptor named '{}' not found", args["fdname"]),
            ),
            _ => Reply::ok(),
        })
        .await;
        let p = plan(BRIDGE_DOWN);
        let e = attach(&p, &h, &qmp, &fast()).await.unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("failed at step netdev_add"), "{msg}");
        assert!(
            msg.contains("GenericError: Duplicate ID 'hostnet1' for netdev"),
            "{msg}"
        );
        // closefd's "not found" (netdev_add may have taken the fd) counts as undone.
        assert!(msg.contains("everything it had set up was undone"), "{msg}");
        assert_eq!(log.commands(), ["getfd", "netdev_add", "closefd"]);
        assert_eq!(h.links(), ["br0", "lo"]);
    });
}

#[test]
fn a_host_failure_undoes_the_host_side() {
    rt().block_on(async {
        // No bridge br0: the tap is created, attaching it fails, the tap is deleted.
        let h = FakeHost::new();
        let (qmp, log) = fake_qmp::start(cooperative).await;
        let e = attach(&plan(BRIDGE_DOWN), &h, &qmp, &fast())
            .await
            .unwrap_err();
        assert_eq!(e.failed_attach_step(), Some(AttachStepId::Host(0)), "{e}");
        assert!(log.commands().is_empty());
        assert_eq!(h.links(), ["lo"]);
    });
}

#[test]
fn a_vf_is_restored_when_device_add_fails() {
    rt().block_on(async {
        let h = host();
        let (qmp, log) = fake_qmp::start(|cmd, _| match cmd {
            "device_add" => Reply::Err("GenericError", "vfio 0000:03:10.1: no iommu_group".into()),
            _ => Reply::ok(),
        })
        .await;
        let p = plan(HOSTDEV);
        let e = attach(&p, &h, &qmp, &fast()).await.unwrap_err();
        assert!(e.to_string().contains("no iommu_group"), "{e}");
        assert_eq!(log.commands(), ["device_add"]);
        assert!(h.prepared_vfs().is_empty());
    });
}

#[test]
fn hostdev_managed_reaches_the_host_and_the_stored_undo() {
    use virtnet_host::{FakeCall, HostUndo};
    // managed='no' (also when the attribute is absent, as in libvirt): the VF's driver is the
    // user's business; the host is told so at prepare and again at restore.
    for (attr, managed) in [
        (" managed='yes'", true),
        (" managed='no'", false),
        ("", false),
    ] {
        rt().block_on(async {
            let h = host();
            let (qmp, _log) = fake_qmp::start(cooperative).await;
            let xml = HOSTDEV.replace(" managed='yes'", attr);
            let p = plan(&xml);
            let nic = attach(&p, &h, &qmp, &fast()).await.unwrap();
            let prepared: Vec<_> = h
                .calls()
                .into_iter()
                .filter_map(|c| match c {
                    FakeCall::PrepareVf(spec) => Some(spec),
                    _ => None,
                })
                .collect();
            assert_eq!(prepared.len(), 1, "{attr}");
            assert_eq!(prepared[0].managed, managed, "{attr}");
            assert_eq!(nic.host.nics[0].managed, managed, "{attr}");
            let [HostUndo::RestoreVf(saved)] = nic.host.undo.as_slice() else {
                panic!("{:?}", nic.host.undo)
            };
            assert_eq!(saved.managed, managed, "{attr}");

            let dp = detach_plan_for(&nic);
            let mut pending = PendingDetaches::default();
            let out = detach(&dp, &h, &qmp, &mut pending, &fast()).await.unwrap();
            assert!(matches!(out, DetachOutcome::Done(_)), "{out:?}");
            let restored: Vec<_> = h
                .calls()
                .into_iter()
                .filter_map(|c| match c {
                    FakeCall::RestoreVf(saved) => Some(saved),
                    _ => None,
                })
                .collect();
            assert_eq!(restored.len(), 1, "{attr}");
            assert_eq!(restored[0].managed, managed, "{attr}");
            assert!(h.prepared_vfs().is_empty());
        });
    }
}

#[test]
fn a_vf_undo_stored_before_managed_existed_reads_as_managed() {
    let old = r#"{"undo":"restore_vf","pci":"0000:03:10.1","pf":"eth0","index":3,
        "mac":"00:00:00:00:00:00","vlan":0,"qos":0,"driver":"iavf"}"#;
    let r: virtnet_host::HostUndo = serde_json::from_str(old).unwrap();
    let virtnet_host::HostUndo::RestoreVf(saved) = r else {
        panic!("{r:?}")
    };
    assert!(
        saved.managed,
        "records from before were all bound by virtnet"
    );
}

#[test]
fn a_stalled_monitor_gets_the_undo_queued() {
    rt().block_on(async {
        let h = host();
        let stalled = Arc::new(Mutex::new(false));
        let s2 = stalled.clone();
        // QEMU 7.2 stuck inside netdev_add (a vhost-user back end failing its handshake):
        // from then on the monitor answers nothing.
        let (qmp, log) = fake_qmp::start(move |cmd, _| {
            let mut st = s2.lock().unwrap();
            if cmd == "netdev_add" {
                *st = true;
            }
            if *st {
                Reply::Silent
            } else {
                Reply::ok()
            }
        })
        .await;
        let p = plan(VHOSTUSER);
        let t = Instant::now();
        let e = attach(&p, &h, &qmp, &fast()).await.unwrap_err();
        let took = t.elapsed();
        let msg = e.to_string();
        assert!(msg.contains("failed at step netdev_add"), "{msg}");
        assert!(msg.contains("got no reply within 500ms"), "{msg}");
        // Its own undo and the chardev's are sent; QEMU runs them once it answers again.
        assert_eq!(
            log.commands(),
            ["chardev-add", "netdev_add", "netdev_del", "chardev-remove"]
        );
        let VmError::AttachFailed { cleanup, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(cleanup.len(), 2, "{cleanup:?}");
        assert!(cleanup[0].contains("monitor is stalled"), "{cleanup:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
    });
}

#[test]
fn no_back_end_on_a_server_socket_fails_before_netdev_add() {
    rt().block_on(async {
        let h = host();
        let (qmp, log) = fake_qmp::start(|cmd, args| match cmd {
            "query-chardev" => chardevs("disconnected:unix:/run/vhost/vm1-b.sock,server=on"),
            _ => cooperative(cmd, args),
        })
        .await;
        let p = plan(VHOSTUSER_SERVER);
        let opts = HotplugOptions {
            backend_timeout: Duration::from_millis(300),
            ..fast()
        };
        let t = Instant::now();
        let e = attach(&p, &h, &qmp, &opts).await.unwrap_err();
        let took = t.elapsed();
        assert_eq!(e.failed_attach_step(), Some(AttachStepId::WaitBackEnd));
        let VmError::AttachFailed { cause, cleanup, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(
            matches!(**cause, VmError::NoBackEnd { ref socket, .. } if socket == "/run/vhost/vm1-b.sock"),
            "{cause:?}"
        );
        assert!(cleanup.is_empty(), "{cleanup:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("no back end connected to the vhost-user socket /run/vhost/vm1-b.sock"),
            "{msg}"
        );
        // Polled until the deadline, never netdev_add; the chardev is removed.
        let cmds = log.commands();
        assert_eq!(cmds.first().map(String::as_str), Some("chardev-add"));
        assert_eq!(cmds.last().map(String::as_str), Some("chardev-remove"));
        let polls = cmds.iter().filter(|c| *c == "query-chardev").count();
        assert!(polls >= 3, "{cmds:?}");
        assert!(!cmds.iter().any(|c| c == "netdev_add"), "{cmds:?}");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
    });
}

#[test]
fn netdev_add_waits_until_a_back_end_has_connected() {
    rt().block_on(async {
        let h = host();
        let mut polls = 0;
        let (qmp, log) = fake_qmp::start(move |cmd, args| match cmd {
            "query-chardev" => {
                polls += 1;
                let state = if polls < 4 { "disconnected:" } else { "" };
                chardevs(&format!("{state}unix:/run/vhost/vm1-b.sock,server=on"))
            }
            _ => cooperative(cmd, args),
        })
        .await;
        let p = plan(VHOSTUSER_SERVER);
        attach(&p, &h, &qmp, &fast()).await.unwrap();
        assert_eq!(
            log.commands(),
            [
                "chardev-add",
                "query-chardev",
                "query-chardev",
                "query-chardev",
                "query-chardev",
                "netdev_add",
                "device_add"
            ]
        );
    });
}

#[test]
fn detach_timeout_is_pending_then_completes() {
    rt().block_on(async {
        let h = host();
        let release = Arc::new(Mutex::new(false));
        let r2 = release.clone();
        let (qmp, log) = fake_qmp::start(move |cmd, args| {
            let id = args["id"].as_str().unwrap_or_default().to_string();
            match cmd {
                // The guest ignores the first request; on the second it has booted.
                "device_del" if !*r2.lock().unwrap() => {
                    *r2.lock().unwrap() = true;
                    Reply::ok()
                }
                "device_del" => Reply::Ok(json!({}), vec![Reply::deleted(&id)]),
                "qom-list" => Reply::Ok(json!([{"name": "type", "type": "string"}]), vec![]),
                _ => Reply::ok(),
            }
        })
        .await;
        let p = plan(BRIDGE_DOWN);
        let nic = attach(&p, &h, &qmp, &fast()).await.unwrap();
        let dp = detach_plan_for(&nic);
        let mut pending = PendingDetaches::default();
        let out = detach(&dp, &h, &qmp, &mut pending, &fast()).await.unwrap();
        assert!(matches!(out, DetachOutcome::Pending(_)), "{out:?}");
        assert!(pending.get("net1").is_some());
        let tap = &nic.host.nics[0].name;
        assert!(h.links().contains(tap), "nothing is released while pending");

        let e = detach(&dp, &h, &qmp, &mut pending, &fast())
            .await
            .unwrap_err();
        assert!(
            matches!(e, VmError::DetachPending { .. })
                && e.to_string().contains("already being detached"),
            "{e}"
        );
        // Stored and read back (the daemon keeps it with the live status).
        let mut pending: PendingDetaches =
            serde_json::from_str(&serde_json::to_string(&pending).unwrap()).unwrap();

        let out = complete_detach("net1", &h, &qmp, &mut pending, &fast())
            .await
            .unwrap();
        assert!(matches!(out, DetachOutcome::Done(_)), "{out:?}");
        assert!(pending.is_empty());
        assert_eq!(h.links(), ["br0", "lo"]);
        let cmds = log.commands();
        assert_eq!(
            cmds[4..],
            ["device_del", "qom-list", "device_del", "netdev_del"],
            "{cmds:?}"
        );
        let e = complete_detach("net1", &h, &qmp, &mut pending, &fast())
            .await
            .unwrap_err();
        assert!(matches!(e, VmError::NoPendingDetach { .. }), "{e}");
    });
}

#[test]
fn completing_after_the_event_needs_no_second_request() {
    rt().block_on(async {
        let h = host();
        let (qmp, log) = fake_qmp::start(|cmd, _| match cmd {
            // Already gone (its DEVICE_DELETED came while nobody waited).
            "qom-list" => Reply::Err(
                "DeviceNotFound",
                "Device '/machine/peripheral/net1' not found".into(),
            ),
            _ => Reply::ok(),
        })
        .await;
        let p = plan(BRIDGE_DOWN);
        let nic = attach(&p, &h, &qmp, &fast()).await.unwrap();
        let dp = detach_plan_for(&nic);
        let mut pending = PendingDetaches::default();
        let out = detach(&dp, &h, &qmp, &mut pending, &fast()).await.unwrap();
        assert!(matches!(out, DetachOutcome::Pending(_)));
        let out = complete_detach("net1", &h, &qmp, &mut pending, &fast())
            .await
            .unwrap();
        assert!(matches!(out, DetachOutcome::Done(_)));
        assert_eq!(log.commands()[5..], ["qom-list", "netdev_del"]);
        assert_eq!(h.links(), ["br0", "lo"]);
    });
}

const ETHERNET_SCRIPTS: &str = "<interface type='ethernet'><mac address='52:54:00:00:00:09'/>\
    <script path='/etc/x/up'/><downscript path='/etc/x/down'/><model type='virtio'/>\
    </interface>";

fn script_calls(h: &FakeHost) -> Vec<(virtnet_host::ScriptKind, String)> {
    h.calls()
        .into_iter()
        .filter_map(|c| match c {
            virtnet_host::FakeCall::RunScript(r) => Some((r.kind, r.ifname)),
            _ => None,
        })
        .collect()
}

#[test]
fn scripts_at_attach_and_detach() {
    use virtnet_host::ScriptKind::{Down, Up};
    rt().block_on(async {
        let h = host();
        let (qmp, log) = fake_qmp::start(cooperative).await;
        let p = plan(ETHERNET_SCRIPTS);
        let opts = HotplugOptions {
            vm_log: Some("/run/vm1/qemu.log".into()),
            ..fast()
        };
        let nic = attach(&p, &h, &qmp, &opts).await.unwrap();
        let tap = nic.host.nics[0].name.clone();
        assert_eq!(script_calls(&h), [(Up, tap.clone())]);
        let calls = h.calls();
        let Some(virtnet_host::FakeCall::RunScript(run)) = calls.last() else {
            panic!("{calls:?}")
        };
        assert_eq!(run.nic, "net1");
        assert_eq!(
            run.log.as_deref(),
            Some(std::path::Path::new("/run/vm1/qemu.log"))
        );
        assert!(
            matches!(
                nic.host.undo.last(),
                Some(virtnet_host::HostUndo::RunScript(r)) if r.kind == virtnet_host::ScriptKind::Down
            ),
            "{:?}",
            nic.host.undo
        );
        assert_eq!(log.commands(), ["getfd", "netdev_add", "device_add"]);

        let dp = detach_plan_for(&nic);
        let mut pending = PendingDetaches::default();
        let out = detach(&dp, &h, &qmp, &mut pending, &opts).await.unwrap();
        let DetachOutcome::Done(report) = out else {
            panic!("{out:?}")
        };
        assert!(report.left_behind.is_empty(), "{:?}", report.left_behind);
        assert_eq!(script_calls(&h), [(Up, tap.clone()), (Down, tap)]);
        assert_eq!(h.links(), ["br0", "lo"]);
    });
}

#[test]
fn a_failing_script_undoes_the_tap_before_qemu_sees_anything() {
    rt().block_on(async {
        let h = host();
        h.fail_at(1); // create_tap, then the script
        let (qmp, log) = fake_qmp::start(cooperative).await;
        let p = plan(ETHERNET_SCRIPTS);
        let e = attach(&p, &h, &qmp, &fast()).await.unwrap_err();
        assert_eq!(e.failed_attach_step(), Some(AttachStepId::Host(1)), "{e}");
        assert!(e.to_string().contains("run script /etc/x/up"), "{e}");
        assert!(log.commands().is_empty(), "{:?}", log.commands());
        assert_eq!(h.links(), ["br0", "lo"]);
        assert_eq!(
            script_calls(&h).len(),
            1,
            "no downscript after a failed script"
        );
    });
}

#[test]
fn a_later_failure_runs_the_downscript_of_a_script_that_succeeded() {
    let p = plan(ETHERNET_SCRIPTS);
    for step in [
        AttachStepId::GetFd(0),
        AttachStepId::NetdevAdd,
        AttachStepId::DeviceAdd,
    ] {
        rt().block_on(async {
            let h = host();
            let (qmp, _log) = fake_qmp::start(cooperative).await;
            let opts = HotplugOptions {
                fail_at: Some(step),
                ..fast()
            };
            let e = attach(&p, &h, &qmp, &opts).await.unwrap_err();
            assert_eq!(e.failed_attach_step(), Some(step), "{e}");
            let kinds: Vec<_> = script_calls(&h).into_iter().map(|(k, _)| k).collect();
            assert_eq!(
                kinds,
                [virtnet_host::ScriptKind::Up, virtnet_host::ScriptKind::Down],
                "{step}"
            );
            assert_eq!(h.links(), ["br0", "lo"], "{step}");
        });
    }
}
