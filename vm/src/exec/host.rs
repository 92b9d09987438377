//! Carrying out one [`HostStep`] on a [`HostNet`].

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use virtnet_host::{
    BridgePortOpts, HostNet, HostUndo, MacvtapSpec, ScriptKind, ScriptRun, ShapeSpec, TapFilter,
    TapSpec, UndoStack, VfSpec,
};

use super::resources::{HostResources, NicResource, NicResourceKind};
use crate::error::VmError;
use crate::plan::{FdSink, HostStep};
use virtnet_host::nwfilter::FilterFamily;

/// The fds one step opened, with the numbers QEMU must see them at.
pub(crate) type PlacedFds = Vec<(OwnedFd, i32)>;

/// How interface scripts run: where their output goes and how long they may take.
#[derive(Debug, Clone)]
pub(crate) struct ScriptEnv {
    /// The VM's log.
    pub log: Option<PathBuf>,
    /// Deadline of each script.
    pub timeout: Duration,
}

fn host_err(what: String) -> impl FnOnce(virtnet_host::HostError) -> VmError {
    move |source| VmError::Host { what, source }
}

/// Pairs opened fds with the step's inherited targets; a start plan has no `getfd` names.
fn place(fds: Vec<OwnedFd>, sink: &FdSink) -> Result<PlacedFds, VmError> {
    let FdSink::Inherit(targets) = sink else {
        return Err(VmError::InvalidContext(
            "a start plan's fds must be inherited by number, not sent with getfd (this plan \
             was made for hot-plug)"
                .into(),
        ));
    };
    if targets.len() != fds.len() {
        return Err(VmError::InvalidContext(format!(
            "{} fds opened but the plan places {}",
            fds.len(),
            targets.len()
        )));
    }
    Ok(fds.into_iter().zip(targets.iter().copied()).collect())
}

/// Runs `step`, recording its undo steps (before anything later can fail) and resources;
/// returns its fds with the numbers QEMU inherits them at (a start plan).
pub(crate) async fn run_step(
    host: &dyn HostNet,
    step: &HostStep,
    env: &ScriptEnv,
    undo: &mut UndoStack,
    res: &mut HostResources,
) -> Result<PlacedFds, VmError> {
    let fds = open_step(host, step, env, undo, res).await?;
    match step.fds() {
        Some(sink) => place(fds, sink),
        None => Ok(Vec::new()),
    }
}

/// Runs `step` like [`run_step`] and returns the fds it opened, in order, whatever the plan
/// does with them (hot-plug sends them with `getfd`).
pub(crate) async fn open_step(
    host: &dyn HostNet,
    step: &HostStep,
    env: &ScriptEnv,
    undo: &mut UndoStack,
    res: &mut HostResources,
) -> Result<Vec<OwnedFd>, VmError> {
    match step {
        HostStep::RunScripts {
            nic,
            device,
            script,
            downscript,
        } => {
            let Some(tap) = res
                .nics
                .iter()
                .rev()
                .find(|r| r.nic == *nic && r.kind == NicResourceKind::Tap)
            else {
                return Err(VmError::InvalidContext(format!(
                    "the plan runs the scripts of interface #{nic} before it has a tap: re-plan"
                )));
            };
            let run = |kind, path: &String| ScriptRun {
                kind,
                path: path.into(),
                ifname: tap.name.clone(),
                nic: device.clone(),
                log: env.log.clone(),
                timeout: env.timeout,
            };
            if let Some(s) = script {
                run_script(host, &run(ScriptKind::Up, s), step.describe()).await?;
            }
            if let Some(d) = downscript {
                let u = HostUndo::RunScript(run(ScriptKind::Down, d));
                record(undo, res, std::slice::from_ref(&u));
            }
            Ok(Vec::new())
        }
        HostStep::LoadFilter {
            nic,
            vm,
            mac,
            filter,
        } => {
            let Some(tap) = res
                .nics
                .iter()
                .rev()
                .find(|r| r.nic == *nic && r.kind == NicResourceKind::Tap)
            else {
                return Err(VmError::InvalidContext(format!(
                    "the plan filters interface #{nic} before it has a tap: re-plan"
                )));
            };
            // A bridge port in the bridge family, a tap on its own at its own hooks.
            let family = if tap.bridge.is_some() {
                FilterFamily::Bridge
            } else {
                FilterFamily::Netdev
            };
            let f = TapFilter {
                table: virtnet_host::nwfilter::table_name(vm, &tap.name),
                tap: tap.name.clone(),
                family,
                mac: *mac,
                filter: filter.clone(),
            };
            let u = host.load_filter(&f).map_err(host_err(format!(
                "{} on tap '{}'",
                step.describe(),
                tap.name
            )))?;
            record(undo, res, std::slice::from_ref(&u));
            Ok(Vec::new())
        }
        HostStep::CreateTap {
            nic,
            name,
            mac,
            mtu,
            queues,
            vnet_hdr,
            bridge,
            isolated,
            ..
        } => {
            let spec = TapSpec {
                name: name.clone(),
                guest_mac: *mac,
                mtu: *mtu,
                queues: *queues,
                vnet_hdr: *vnet_hdr,
            };
            let tap = host.create_tap(&spec).map_err(host_err(step.describe()))?;
            record(undo, res, &tap.undo);
            res.nics.push(NicResource {
                nic: *nic,
                kind: NicResourceKind::Tap,
                name: tap.name.clone(),
                ifindex: Some(tap.ifindex),
                managed: true,
                bridge: bridge.clone(),
            });
            if let Some(b) = bridge {
                let opts = BridgePortOpts {
                    isolated: *isolated,
                };
                let u = host
                    .attach_to_bridge(&tap.name, b, &opts)
                    .map_err(host_err(format!(
                        "attach tap '{}' to bridge '{b}'",
                        tap.name
                    )))?;
                record(undo, res, std::slice::from_ref(&u));
            }
            Ok(tap.fds)
        }
        HostStep::AddOvsPort { nic, port } => {
            let Some(tap) = res
                .nics
                .iter()
                .rev()
                .find(|r| r.nic == *nic && r.kind == NicResourceKind::Tap)
            else {
                return Err(VmError::InvalidContext(format!(
                    "the plan adds interface #{nic} to Open vSwitch before it has a tap: re-plan"
                )));
            };
            let spec = virtnet_host::OvsPortSpec {
                port: tap.name.clone(),
                ..port.clone()
            };
            let u = host.ovs_add_port(&spec).map_err(host_err(format!(
                "add tap '{}' to Open vSwitch bridge '{}'",
                tap.name, port.bridge
            )))?;
            record(undo, res, std::slice::from_ref(&u));
            Ok(Vec::new())
        }
        HostStep::OpenTap {
            nic,
            name,
            queues,
            vnet_hdr,
            ..
        } => {
            let tap = host
                .open_tap(name, *queues, *vnet_hdr)
                .map_err(host_err(step.describe()))?;
            record(undo, res, &tap.undo);
            res.nics.push(NicResource {
                nic: *nic,
                kind: NicResourceKind::Tap,
                name: tap.name.clone(),
                ifindex: Some(tap.ifindex),
                managed: false,
                bridge: None,
            });
            Ok(tap.fds)
        }
        HostStep::CreateMacvtap {
            nic,
            name,
            lower,
            mode,
            mac,
            mtu,
            queues,
            vnet_hdr,
            ..
        } => {
            let spec = MacvtapSpec {
                name: name.clone(),
                lower: lower.clone(),
                mode: *mode,
                mac: *mac,
                mtu: *mtu,
                queues: *queues,
                vnet_hdr: *vnet_hdr,
            };
            let mv = host
                .create_macvtap(&spec)
                .map_err(host_err(step.describe()))?;
            record(undo, res, &mv.undo);
            res.nics.push(NicResource {
                nic: *nic,
                kind: NicResourceKind::Macvtap,
                name: mv.name.clone(),
                ifindex: Some(mv.ifindex),
                managed: true,
                bridge: None,
            });
            Ok(mv.fds)
        }
        HostStep::OpenVhostNet { fds, .. } => {
            let path = "/dev/vhost-net";
            (0..fds.len())
                .map(|_| {
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(path)
                        .map(OwnedFd::from)
                        .map_err(|source| VmError::Io {
                            what: "open (load the vhost_net module, or use <driver \
                                   name='qemu'/>)"
                                .into(),
                            path: path.into(),
                            source,
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        }
        HostStep::Shape {
            nic,
            inbound,
            outbound,
        } => {
            let Some((dev, Some(ifindex), kind)) = res
                .nics
                .iter()
                .rev()
                .find(|r| r.nic == *nic && r.kind.is_link())
                .map(|r| (r.name.clone(), r.ifindex, r.kind))
            else {
                return Err(VmError::InvalidContext(format!(
                    "the plan limits the bandwidth of interface #{nic} before it has a tap: \
                     re-plan"
                )));
            };
            let spec = ShapeSpec {
                dev,
                ifindex,
                inbound: *inbound,
                outbound: *outbound,
                macvtap: kind == NicResourceKind::Macvtap,
            };
            let u = host.shape(&spec).map_err(host_err(step.describe()))?;
            record(undo, res, std::slice::from_ref(&u));
            Ok(Vec::new())
        }
        HostStep::PrepareVf {
            nic,
            pci,
            mac,
            vlan,
            managed,
        } => {
            let mut spec = VfSpec::new(*pci);
            spec.mac = *mac;
            spec.vlan = *vlan;
            // managed='no': the VF must already be on vfio-pci; its driver is never touched.
            spec.managed = *managed;
            let vf = host.prepare_vf(&spec).map_err(host_err(step.describe()))?;
            record(undo, res, std::slice::from_ref(&vf.undo));
            res.nics.push(NicResource {
                nic: *nic,
                kind: NicResourceKind::Vf,
                name: pci.to_string(),
                ifindex: None,
                managed: *managed,
                bridge: None,
            });
            Ok(Vec::new())
        }
    }
}

fn record(undo: &mut UndoStack, res: &mut HostResources, steps: &[virtnet_host::HostUndo]) {
    for s in steps {
        res.undo.push(s.clone());
        undo.push(s.clone());
    }
}

/// Starts `run` in the calling thread's network namespace and waits for it on a blocking
/// thread: the async runtime (virtnetd has one thread) goes on meanwhile.
pub(crate) async fn run_script(
    host: &dyn HostNet,
    run: &ScriptRun,
    what: String,
) -> Result<(), VmError> {
    let w = host.start_script(run).map_err(host_err(what.clone()))?;
    let r = if w.is_done() {
        w.wait()
    } else {
        tokio::task::spawn_blocking(move || w.wait())
            .await
            .map_err(|e| VmError::Io {
                what: format!("{what}: wait for the script"),
                path: run.path.clone(),
                source: std::io::Error::other(e),
            })?
    };
    r.map_err(host_err(what))
}

/// Applies `undo`'s steps newest first, like [`UndoStack::rollback`], but waits for
/// downscripts without blocking the async runtime; empties it and returns what failed.
/// Scripts start in the calling thread's network namespace.
pub async fn rollback_host(undo: &mut UndoStack, host: &dyn HostNet) -> Vec<String> {
    let mut left = Vec::new();
    for step in undo.take().into_iter().rev() {
        let r = match &step {
            HostUndo::RunScript(run) => run_script(host, run, format!("run {}", run.describe()))
                .await
                .map_err(|e| e.to_string()),
            other => other.apply(host).map_err(|e| e.to_string()),
        };
        if let Err(e) = r {
            left.push(e);
        }
    }
    left
}
