//! Everything on the command line for one NIC, and what is sent to QEMU after it starts.

use serde_json::{json, Value};
use virtnet_conf::interface::InterfaceKind;
use virtnet_conf::Domain;

use super::backend::NicBackend;
use super::caps::GuestCtx;
use super::ids::{NicIds, NicSpec};
use super::netdev::netdev_json;
use super::nicdev::nic_device_json;
use super::opts::json_arg;
use super::vhostuser::vhostuser_chardev;
use crate::error::QemuError;

/// The command-line arguments of one NIC, in libvirt's order: `-add-fd` (vDPA), `-chardev`
/// (vhost-user), `-netdev`, `-device`; only `-device` (vfio-pci) for a hostdev interface.
pub fn nic_args(
    spec: &NicSpec<'_>,
    backend: &NicBackend,
    guest: &GuestCtx,
) -> Result<Vec<String>, QemuError> {
    let mut args = Vec::new();
    if spec.iface.is_hostdev() {
        if *backend != NicBackend::Vfio {
            return Err(QemuError::BackendMismatch {
                interface: spec.describe(),
                message: format!("got a {} back end, expected Vfio", backend.kind_name()),
            });
        }
    } else {
        if let (
            InterfaceKind::Vdpa { .. },
            NicBackend::Vdpa {
                fdset_id,
                fd: Some(fd),
            },
        ) = (&spec.iface.kind, backend)
        {
            args.push("-add-fd".into());
            args.push(format!(
                "set={fdset_id},fd={fd},opaque={}-vdpa",
                spec.ids.device
            ));
        }
        if let Some(c) = vhostuser_chardev(spec, &guest.caps)? {
            args.push("-chardev".into());
            args.push(c.cmdline);
        }
        args.push("-netdev".into());
        args.push(json_arg(&netdev_json(spec, backend, &guest.caps)?));
    }
    args.push("-device".into());
    args.push(json_arg(&nic_device_json(spec, guest)?));
    Ok(args)
}

/// QMP commands to send once QEMU is up (before `cont`), in order: `set_link` with
/// `up: false` for every interface whose `<link state='down'/>` (QEMU has no command-line
/// option for it; libvirt does the same).
pub fn post_start_qmp(domain: &Domain) -> Vec<(String, Value)> {
    let list = &domain.devices.interfaces;
    list.iter()
        .enumerate()
        .filter(|(_, i)| !i.link_up() && !i.is_hostdev())
        .map(|(n, _)| {
            let ids = NicIds::new(list, n);
            (
                "set_link".to_string(),
                json!({"name": ids.device, "up": false}),
            )
        })
        .collect()
}
