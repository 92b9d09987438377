//! Where the daemon keeps its socket and files.

use std::path::PathBuf;
use std::time::Duration;

/// Default directory of persistent state (definitions).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/virtnet";
/// Default directory of run-time state (live status, the API socket, VM run dirs).
pub const DEFAULT_RUN_DIR: &str = "/run/virtnet";
/// The API socket's file name inside the run directory.
pub const SOCKET_NAME: &str = "virtnetd.sock";
pub use virtnet_api::RO_SOCKET_NAME;
/// The group whose members may use the read-only socket (created at start when missing).
pub const RO_GROUP: &str = "virtnet";

/// The daemon's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The API socket (default `<run_dir>/virtnetd.sock`): root only (0600), every request.
    pub socket: PathBuf,
    /// The read-only API socket (default `<run_dir>/virtnetd-ro.sock`): `root:`[`Config::ro_group`]
    /// 0660, queries only; `None`: not served.
    pub ro_socket: Option<PathBuf>,
    /// The libvirt protocol socket (default `<run_dir>/libvirt-sock`): root only (0600),
    /// for libvirt's clients (virsh, python3-libvirt); `None`: not served.
    pub libvirt_socket: Option<PathBuf>,
    /// The group of [`Config::ro_socket`] (default [`RO_GROUP`]; created when missing).
    pub ro_group: String,
    /// Persistent state: `<state_dir>/domains/NAME.xml`.
    pub state_dir: PathBuf,
    /// Run-time state: `<run_dir>/NAME.json`, VM run dirs.
    pub run_dir: PathBuf,
    /// The QEMU binary for domains without `<emulator>`.
    pub qemu: PathBuf,
    /// How long a hot-plug waits for a vhost-user back end to connect to a socket QEMU listens
    /// on (`mode='server'`) before `netdev_add` (QEMU 7.2 would block until one did).
    pub backend_timeout: Duration,
    /// How long QEMU may take to bring up its monitor at start; QEMU 7.2 waits for the back
    /// ends of `mode='server'` vhost-user NICs first, so this is their deadline at start.
    pub start_timeout: Duration,
    /// The most tasks each QEMU may have (its cgroup's `pids.max`; `--qemu-pids-max`,
    /// default [`virtnet_vm::DEFAULT_QEMU_PIDS_MAX`]); `None` = no cap.
    pub qemu_pids_max: Option<u64>,
    /// Whether QEMU runs confined (`--sandbox on`, the default): as [`Config::qemu_user`],
    /// without capabilities, in its own mount namespace, under `-sandbox`. Off: as virtnetd's
    /// user, unconfined (a domain opts out alone with `<seclabel type='none'/>`).
    pub sandbox: bool,
    /// The user confined QEMUs run as (created at start when missing).
    pub qemu_user: String,
    /// The Open vSwitch database `ovs-vsctl` is told (`--ovsdb unix:PATH`) for
    /// `<virtualport type='openvswitch'>` ports; `None`: ovs-vsctl's default
    /// (`unix:/var/run/openvswitch/db.sock`).
    pub ovsdb: Option<String>,
    /// OVN's Northbound database (`--ovn-nb unix:PATH`, ovn-nbctl's `--db`): when set, a live
    /// migration of this host's VMs moves their OVS NICs' logical switch ports
    /// (`requested-chassis`, `activation-strategy`); `None`: no OVN handling.
    pub ovn_nb: Option<String>,
}

/// Default of [`Config::qemu_user`].
pub const DEFAULT_QEMU_USER: &str = virtnet_host::QEMU_USER;

/// Default of [`Config::backend_timeout`] and [`Config::start_timeout`].
pub const DEFAULT_BACKEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The QEMU binary used when a domain names no `<emulator>`.
pub const DEFAULT_QEMU: &str = "/usr/bin/qemu-system-x86_64";

impl Config {
    /// The configuration with every path under `base` (`base/state`, `base/run`), for tests
    /// and users without root; no read-only socket (it needs a group, so root) and no libvirt
    /// socket.
    pub fn under(base: impl Into<PathBuf>) -> Config {
        let base = base.into();
        let run_dir = base.join("run");
        Config {
            socket: run_dir.join(SOCKET_NAME),
            ro_socket: None,
            libvirt_socket: None,
            ro_group: RO_GROUP.into(),
            state_dir: base.join("state"),
            run_dir,
            qemu: DEFAULT_QEMU.into(),
            backend_timeout: DEFAULT_BACKEND_TIMEOUT,
            start_timeout: DEFAULT_BACKEND_TIMEOUT,
            qemu_pids_max: Some(virtnet_vm::DEFAULT_QEMU_PIDS_MAX),
            sandbox: true,
            qemu_user: DEFAULT_QEMU_USER.into(),
            ovsdb: None,
            ovn_nb: None,
        }
    }

    /// The defaults: `/run/virtnet/virtnetd.sock` (and `virtnetd-ro.sock`), `/var/lib/virtnet`,
    /// `/run/virtnet`.
    pub fn system() -> Config {
        Config {
            socket: PathBuf::from(DEFAULT_RUN_DIR).join(SOCKET_NAME),
            ro_socket: Some(PathBuf::from(DEFAULT_RUN_DIR).join(RO_SOCKET_NAME)),
            libvirt_socket: Some(PathBuf::from(DEFAULT_RUN_DIR).join(crate::rpc::SOCKET_NAME)),
            ro_group: RO_GROUP.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            run_dir: DEFAULT_RUN_DIR.into(),
            qemu: DEFAULT_QEMU.into(),
            backend_timeout: DEFAULT_BACKEND_TIMEOUT,
            start_timeout: DEFAULT_BACKEND_TIMEOUT,
            qemu_pids_max: Some(virtnet_vm::DEFAULT_QEMU_PIDS_MAX),
            sandbox: true,
            qemu_user: DEFAULT_QEMU_USER.into(),
            ovsdb: None,
            ovn_nb: None,
        }
    }
}
