//! The QEMU command line of a domain, and the per-NIC JSON objects hot-plug reuses.
//!
//! Pure: nothing here reads the system. The caller probes the host ([`QemuCaps`]), creates the
//! host side of every interface (taps, vhost-net fds, VFs bound to vfio-pci) and describes it
//! with one [`NicBackend`] per interface; the builder turns the [`Domain`](virtnet_conf::Domain)
//! into QEMU arguments.
//!
//! Per NIC (also what hot-plug sends over QMP, which takes the same JSON objects):
//! [`netdev_json`] (`-netdev` / `netdev_add`), [`nic_device_json`] (`-device` / `device_add`),
//! [`vhostuser_chardev`] (`-chardev` / `chardev-add`). Ids follow libvirt ([`NicIds`]):
//! device `netN` (or the `ua-` alias; `hostdevK` for hostdev interfaces), netdev `hostnetN`,
//! chardev `charnetN`. JSON keys come in libvirt's order, so the output can be compared with
//! libvirt's expected command lines.

mod backend;
mod build;
mod caps;
mod chardevs;
mod controllers;
mod devaddr;
mod disks;
mod hostfds;
mod ids;
mod machine;
mod memory;
mod netdev;
mod nic;
mod nicdev;
mod opts;
mod others;
mod usb;
mod vhostuser;

pub use backend::{tap_fds_needed, FdRef, NicBackend, TapFds};
pub use build::{build_argv, build_nic_argv, format_argv, RuntimePaths};
pub use caps::{Accel, GuestCtx, QemuCaps};
pub use hostfds::{
    chardev_host_opens, chardev_opens, ChardevFd, ChardevOpen, ChardevRole, HostOpen, PassedFd,
};
pub use ids::{NicIds, NicSpec};
pub use netdev::netdev_json;
pub use nic::{nic_args, post_start_qmp};
pub use nicdev::{nic_device_json, vhost_user_tcg_vectors};
pub use vhostuser::{vhostuser_chardev, VhostUserChardev};

#[cfg(test)]
mod tests;
