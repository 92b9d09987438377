//! The whole command line of a domain.

use std::path::PathBuf;

use virtnet_conf::Domain;

use super::backend::NicBackend;
use super::caps::{GuestCtx, QemuCaps};
use super::chardevs::chardev_args;
use super::controllers::controller_args;
use super::disks::disk_args;
use super::hostfds::ChardevFd;
use super::ids::{BootIndexes, NicSpec};
use super::machine::{
    boot_args, check_features, cpu_arg, lifecycle_args, machine_arg, name_arg, rtc_arg, smp_arg,
};
use super::memory::{lock_args, memory_args, RAM_ID};
use super::nic::nic_args;
use super::opts::opt_path;
use super::others::{balloon_args, check_generic, hostdev_args, input_args, watchdog_args};
use super::usb::with_usb_ports;
use crate::error::QemuError;

/// QEMU's seccomp filter with everything a VM never needs denied: obsolete system calls,
/// raising privileges (setuid & co.), spawning processes (fork/exec: `migrate "exec:…"`),
/// resource control (scheduler and affinity calls). Exactly libvirt's argument.
pub const SECCOMP: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// Host paths and passed fds the command line refers to, chosen by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePaths {
    /// The unix socket QEMU listens on for QMP (`-chardev socket,id=charmonitor,...`).
    pub qmp_socket: PathBuf,
    /// The fd number of the QMP socket, bound and listening, when the caller passes it
    /// (`-chardev socket,id=charmonitor,fd=N,server=on,wait=off`, as libvirt does); `None`:
    /// QEMU creates `qmp_socket` itself (`path=`).
    pub qmp_fd: Option<i32>,
    /// Directory for file-backed guest RAM (`<memoryBacking><source type='file'/>`); QEMU
    /// creates its (unlinked) RAM files there. `None` refuses file-backed RAM.
    pub memory_dir: Option<PathBuf>,
    /// The fds the caller opened for chardevs ([`super::chardev_host_opens`] says which);
    /// chardevs without one are opened by QEMU by path.
    pub chardev_fds: Vec<ChardevFd>,
    /// QEMU's own seccomp filter, as libvirt passes it
    /// (`-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny`):
    /// set for a confined QEMU ([`crate::Sandbox`]).
    pub sandbox: bool,
}

impl RuntimePaths {
    /// Paths with only the QMP socket set (QEMU opens everything by path).
    pub fn new(qmp_socket: impl Into<PathBuf>) -> Self {
        RuntimePaths {
            qmp_socket: qmp_socket.into(),
            qmp_fd: None,
            memory_dir: None,
            chardev_fds: Vec::new(),
            sandbox: false,
        }
    }
}

/// The QEMU arguments (without the binary) that start `domain` paused (`-S`), with QMP on
/// `paths.qmp_socket`.
///
/// `backends` has one entry per `domain.devices.interfaces` entry, same order. The domain
/// should come from [`virtnet_conf::load_domain`] (defaults and guest addresses filled,
/// validated). QEMU exits when the guest powers off (no `-no-shutdown`). Interfaces whose link
/// is down need [`super::post_start_qmp`] before the guest runs.
///
/// Errors name the interface or device that cannot be built and what to change.
pub fn build_argv(
    domain: &Domain,
    caps: &QemuCaps,
    backends: &[NicBackend],
    paths: &RuntimePaths,
) -> Result<Vec<String>, QemuError> {
    check_backend_count(domain, backends)?;
    let domain = &*with_usb_ports(domain)?;
    check_features(domain)?;
    check_generic(domain)?;
    let guest = GuestCtx::new(*caps, domain.domain_type(), domain.machine_is_q35());
    let mem = memory_args(domain, paths.memory_dir.as_deref())?;
    let boot = BootIndexes::of(domain);

    let mut a: Vec<String> = vec!["-name".into(), name_arg(domain)];
    a.push("-S".into());
    let backend = mem.machine_backend.then_some(RAM_ID);
    a.extend(["-machine".into(), machine_arg(domain, backend)?]);
    a.extend(["-accel".into(), guest.accel.as_str().to_string()]);
    a.extend(["-cpu".into(), cpu_arg(domain, guest.accel)?]);
    a.extend(mem.early);
    a.extend(lock_args(domain));
    a.extend(["-smp".into(), smp_arg(domain)?]);
    a.extend(mem.numa);
    if let Some(u) = domain.uuid() {
        a.extend(["-uuid".into(), u.to_string()]);
    }
    a.extend(["-display".into(), "none".into()]);
    a.push("-no-user-config".into());
    a.push("-nodefaults".into());
    let monitor = match paths.qmp_fd {
        Some(fd) => format!("fd={fd}"),
        None => format!("path={}", opt_path(&paths.qmp_socket)),
    };
    a.extend([
        "-chardev".into(),
        format!("socket,id=charmonitor,{monitor},server=on,wait=off"),
    ]);
    a.extend([
        "-mon".into(),
        "chardev=charmonitor,id=monitor,mode=control".into(),
    ]);
    a.extend(["-rtc".into(), rtc_arg(domain)?]);
    a.extend(lifecycle_args(domain));
    a.extend(boot_args(domain)?);
    a.extend(controller_args(domain, &guest)?);
    a.extend(disk_args(domain, &guest, &boot)?);
    let (nics, hostdevs) = network_args(domain, &guest, backends)?;
    a.extend(nics);
    a.extend(chardev_args(domain, &guest, &paths.chardev_fds)?);
    a.extend(input_args(domain, &guest)?);
    a.extend(watchdog_args(domain, &guest)?);
    a.extend(hostdevs);
    a.extend(balloon_args(domain, &guest)?);
    if paths.sandbox {
        a.extend(["-sandbox".into(), SECCOMP.into()]);
    }
    a.extend(["-msg".into(), "timestamp=on".into()]);
    Ok(a)
}

/// Only the network part of [`build_argv`]'s output, in the same order: the arguments of every
/// interface, then the `vfio-pci` devices (hostdev interfaces and plain PCI `<hostdev>`s).
/// Other devices are not looked at, so this works for domains `build_argv` refuses for
/// reasons that have nothing to do with networking (tools, conformance tests).
pub fn build_nic_argv(
    domain: &Domain,
    caps: &QemuCaps,
    backends: &[NicBackend],
) -> Result<Vec<String>, QemuError> {
    check_backend_count(domain, backends)?;
    let domain = &*with_usb_ports(domain)?;
    let guest = GuestCtx::new(*caps, domain.domain_type(), domain.machine_is_q35());
    let (mut nics, hostdevs) = network_args(domain, &guest, backends)?;
    nics.extend(hostdevs);
    Ok(nics)
}

fn check_backend_count(domain: &Domain, backends: &[NicBackend]) -> Result<(), QemuError> {
    let n = domain.devices.interfaces.len();
    if backends.len() != n {
        return Err(QemuError::BackendMismatch {
            interface: "the domain's interfaces".into(),
            message: format!(
                "{} back ends for {n} interfaces: give one per interface, in order",
                backends.len()
            ),
        });
    }
    Ok(())
}

/// (NIC arguments, host device arguments): interfaces in order, except hostdev interfaces,
/// which go with the host devices (hostdev0.. first, then plain `<hostdev>`s), as libvirt
/// orders them.
fn network_args(
    domain: &Domain,
    guest: &GuestCtx,
    backends: &[NicBackend],
) -> Result<(Vec<String>, Vec<String>), QemuError> {
    let ifaces = &domain.devices.interfaces;
    let mut nics = Vec::new();
    let mut hostdevs = Vec::new();
    let mut hostdev_ifaces = 0;
    for (i, backend) in backends.iter().enumerate() {
        let spec = NicSpec::from_domain(domain, i).expect("index in range");
        if ifaces[i].is_hostdev() {
            hostdev_ifaces += 1;
            hostdevs.extend(nic_args(&spec, backend, guest)?);
        } else {
            nics.extend(nic_args(&spec, backend, guest)?);
        }
    }
    hostdevs.extend(hostdev_args(domain, guest, hostdev_ifaces)?);
    Ok((nics, hostdevs))
}

/// Formats arguments like libvirt's `.args` files: one option (with its value) per line,
/// lines joined with ` \`, values quoted for a POSIX shell when needed. `program` comes first.
pub fn format_argv(program: &str, args: &[String]) -> String {
    let mut lines = vec![shell_quote(program)];
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let takes_value = a.starts_with('-') && a != "-S" && !is_flag(a);
        if takes_value && i + 1 < args.len() {
            lines.push(format!("{} {}", shell_quote(a), shell_quote(&args[i + 1])));
            i += 2;
        } else {
            lines.push(shell_quote(a));
            i += 1;
        }
    }
    lines.join(" \\\n") + "\n"
}

fn is_flag(a: &str) -> bool {
    matches!(
        a,
        "-no-user-config" | "-nodefaults" | "-no-reboot" | "-no-shutdown" | "-S"
    )
}

/// Quotes `s` for a POSIX shell when it has characters the shell would interpret.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | ',' | '/' | '=' | ':' | '@' | '+')
        });
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
