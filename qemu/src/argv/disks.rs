//! `<disk>` elements: `-blockdev` nodes (a protocol node, plus a format node for non-raw
//! images) and the guest device, as libvirt writes them.

use virtnet_conf::address::DeviceAddress;
use virtnet_conf::devices::disk::disk_name_index;
use virtnet_conf::devices::Disk;
use virtnet_conf::Domain;

use super::caps::GuestCtx;
use super::controllers::drive_controller_alias;
use super::devaddr::address_props;
use super::ids::BootIndexes;
use super::opts::{id_is_safe, json_arg, Props};
use crate::error::QemuError;

fn unsupported(disk: &Disk, message: impl Into<String>) -> QemuError {
    QemuError::UnsupportedDevice {
        device: format!(
            "<disk type='{}' device='{}'> '{}'",
            disk.disk_type, disk.device, disk.target.dev
        ),
        message: message.into(),
    }
}

/// `-blockdev` and `-device` arguments of every disk.
pub(crate) fn disk_args(
    domain: &Domain,
    guest: &GuestCtx,
    boot: &BootIndexes,
) -> Result<Vec<String>, QemuError> {
    let disks = domain.disks();
    let mut args = Vec::new();
    for (i, disk) in disks.iter().enumerate() {
        // libvirt numbers the nodes from the last disk: the first of two is libvirt-2-*.
        let node = disks.len() - i;
        args.extend(one_disk(domain, guest, disk, node, boot.disk(i))?);
    }
    Ok(args)
}

fn one_disk(
    domain: &Domain,
    guest: &GuestCtx,
    disk: &Disk,
    node: usize,
    bootindex: Option<u32>,
) -> Result<Vec<String>, QemuError> {
    let cdrom = match disk.device.as_str() {
        "disk" => false,
        "cdrom" => true,
        other => {
            return Err(unsupported(
                disk,
                format!("device='{other}' is not supported: use device='disk' or 'cdrom'"),
            ))
        }
    };
    let protocol = match disk.disk_type.as_str() {
        "file" => "file",
        "block" => "host_device",
        other => {
            return Err(unsupported(
                disk,
                format!("type='{other}' is not supported yet: use type='file' or type='block'"),
            ))
        }
    };
    let format = disk.format().unwrap_or("raw");
    if !matches!(format, "raw" | "qcow2") {
        return Err(unsupported(
            disk,
            format!("image format '{format}' is not supported: use raw or qcow2"),
        ));
    }
    let readonly = disk.readonly || cdrom;
    let storage = format!("libvirt-{node}-storage");
    let format_node = format!("libvirt-{node}-format");
    let mut args = Vec::new();
    let drive = match disk.source_path() {
        None if cdrom => None,
        None => return Err(unsupported(disk, "it has no <source>: give the image path")),
        Some(path) => {
            let mut s = Props::new();
            s.put("driver", protocol)
                .put("filename", path)
                .put("node-name", storage.as_str());
            if format == "raw" {
                s.put("read-only", readonly);
                args.push("-blockdev".to_string());
                args.push(json_arg(&s.into_value()));
                Some(storage)
            } else {
                s.put("auto-read-only", true).put("discard", "unmap");
                let mut f = Props::new();
                f.put("node-name", format_node.as_str())
                    .put("read-only", readonly)
                    .put("driver", format)
                    .put("file", storage.as_str());
                args.push("-blockdev".to_string());
                args.push(json_arg(&s.into_value()));
                args.push("-blockdev".to_string());
                args.push(json_arg(&f.into_value()));
                Some(format_node)
            }
        }
    };

    let bus = disk.bus().unwrap_or("virtio");
    let index = disk_name_index(&disk.target.dev);
    let mut p = Props::new();
    let id;
    match bus {
        "virtio" => {
            if cdrom {
                return Err(unsupported(
                    disk,
                    "a CD-ROM cannot be on bus='virtio': use sata or ide",
                ));
            }
            p.put("driver", "virtio-blk-pci");
            let attr = |n: &str| {
                disk.driver
                    .as_ref()
                    .and_then(|d| d.attrs.iter().find(|a| a.name == n))
                    .map(|a| a.value.as_str())
            };
            let on_off = |n: &str| attr(n).map(|v| v == "on");
            let number = |n: &str| -> Result<Option<u32>, QemuError> {
                attr(n)
                    .map(|v| {
                        v.parse()
                            .map_err(|_| unsupported(disk, format!("{n}='{v}' is not a number")))
                    })
                    .transpose()
            };
            p.put_opt("iommu_platform", on_off("iommu"))
                .put_opt("ats", on_off("ats"))
                .put_opt("packed", on_off("packed"))
                .put_opt("ioeventfd", on_off("ioeventfd"))
                .put_opt("event_idx", on_off("event_idx"))
                .put_opt("num-queues", number("queues")?)
                .put_opt("queue-size", number("queue_size")?);
            address_props(guest, disk.info.address.as_ref(), &mut p)
                .map_err(|m| unsupported(disk, m))?;
            id = format!("virtio-disk{}", index.unwrap_or(0));
        }
        "ide" | "sata" | "scsi" => {
            let Some(DeviceAddress::Drive {
                controller,
                bus: dbus,
                target,
                unit,
                ..
            }) = &disk.info.address
            else {
                return Err(unsupported(
                    disk,
                    "it has no drive address: load the definition with \
                     virtnet_conf::load_domain, which assigns one",
                ));
            };
            let prefix = if bus == "scsi" { "scsi" } else { bus };
            id = format!("{prefix}{controller}-{dbus}-{unit}");
            match bus {
                "ide" => {
                    p.put("driver", if cdrom { "ide-cd" } else { "ide-hd" })
                        .put("bus", format!("ide.{dbus}"))
                        .put("unit", *unit);
                }
                "sata" => {
                    let alias = drive_controller_alias(domain, "sata", *controller);
                    p.put("driver", if cdrom { "ide-cd" } else { "ide-hd" })
                        .put("bus", format!("{alias}.{unit}"));
                }
                _ => {
                    p.put("driver", if cdrom { "scsi-cd" } else { "scsi-hd" })
                        .put("bus", format!("scsi{controller}.0"))
                        .put("channel", *dbus)
                        .put("scsi-id", *target)
                        .put("lun", *unit);
                }
            }
        }
        other => {
            return Err(unsupported(
                disk,
                format!("bus='{other}' is not supported: use virtio, sata, ide or scsi"),
            ))
        }
    }
    let id = disk.info.alias.clone().unwrap_or(id);
    if !id_is_safe(&id) {
        return Err(unsupported(
            disk,
            format!("the id '{id}' cannot be used by QEMU"),
        ));
    }
    p.put_opt("drive", drive)
        .put("id", id)
        .put_opt("bootindex", bootindex)
        .put_opt("serial", disk.serial.as_deref());
    args.push("-device".to_string());
    args.push(json_arg(&p.into_value()));
    Ok(args)
}
