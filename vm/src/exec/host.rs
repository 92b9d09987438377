//! Carrying out one [`HostStep`] on a [`HostNet`].

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;

use virtnet_host::{BridgePortOpts, HostNet, MacvtapSpec, TapSpec, UndoStack, VfSpec};

use super::resources::{HostResources, NicResource};
use crate::error::VmError;
use crate::plan::{FdSink, HostStep};

/// The fds one step opened, with the numbers QEMU must see them at.
pub(crate) type PlacedFds = Vec<(OwnedFd, i32)>;

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
pub(crate) fn run_step(
    host: &dyn HostNet,
    step: &HostStep,
    undo: &mut UndoStack,
    res: &mut HostResources,
) -> Result<PlacedFds, VmError> {
    let fds = open_step(host, step, undo, res)?;
    match step.fds() {
        Some(sink) => place(fds, sink),
        None => Ok(Vec::new()),
    }
}

/// Runs `step` like [`run_step`] and returns the fds it opened, in order, whatever the plan
/// does with them (hot-plug sends them with `getfd`).
pub(crate) fn open_step(
    host: &dyn HostNet,
    step: &HostStep,
    undo: &mut UndoStack,
    res: &mut HostResources,
) -> Result<Vec<OwnedFd>, VmError> {
    match step {
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
                kind: "tap".into(),
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
                kind: "tap".into(),
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
                kind: "macvtap".into(),
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
                kind: "vf".into(),
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
