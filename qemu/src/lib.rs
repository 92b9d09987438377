//! virtnet-qemu: everything virtnet says to QEMU and how it runs QEMU.
//!
//! - [`argv`]: the QEMU command line of a domain (pure), and the per-NIC JSON objects
//!   (`-netdev`/`-device`/`-chardev`) that hot-plug sends over QMP.
//! - [`qmp`]: async QMP client (tokio). Commands are matched to replies by `id`, every command has
//!   a deadline, events are broadcast, `DEVICE_DELETED` can be awaited without races, and file
//!   descriptors travel with their command over `SCM_RIGHTS` (`getfd`, `add-fd`).
//! - [`process`]: spawn QEMU with exactly the fds it must inherit, log to a per-VM file, connect
//!   QMP, `cont`, notice exits, and stop it (powerdown → SIGTERM → SIGKILL, always reaped).
//! - [`version`]: [`QemuVersion`] from `qemu-system-x86_64 -version` or the QMP greeting, ordered
//!   so callers can gate options by version.
//! - [`error`]: the crate's single error type, [`QemuError`].

pub mod argv;
pub mod error;
pub mod process;
pub mod qmp;
pub mod sandbox;
pub mod validate;
pub mod version;

pub use argv::{
    build_argv, build_nic_argv, format_argv, netdev_json, nic_args, nic_device_json,
    post_start_qmp, tap_fds_needed, vhostuser_chardev, Accel, FdRef, GuestCtx, NicBackend, NicIds,
    NicSpec, QemuCaps, RuntimePaths, TapFds, VhostUserChardev,
};
pub use error::{QemuError, Result};
pub use process::{
    in_own_mount_namespace, listen_unix, open_for_writing, open_host, QemuProcess, QemuSpawn,
    StopMethod, StopOptions, StopOutcome,
};
pub use qmp::{MigrationInfo, MigrationRam, QmpClient, QmpEvent, QmpGreeting, QmpOptions};
pub use sandbox::{DevNode, QemuUser, Sandbox};
pub use version::{qemu_binary_version, QemuVersion};
