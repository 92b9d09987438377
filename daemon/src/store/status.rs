//! The live status of a running VM, `<run_dir>/NAME.json`: what a restarted daemon needs to
//! find the VM again and to clean up after it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use virtnet_vm::HostResources;

use virtnet_vm::exec::PendingDetaches;

/// Version of the [`LiveStatus`] file format; bumped on incompatible changes.
pub const STATUS_FORMAT: u32 = 1;

/// What the daemon knows about a running VM, persisted while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveStatus {
    /// [`STATUS_FORMAT`] of the writer.
    pub format: u32,
    /// The VM name.
    pub name: String,
    /// The VM UUID.
    pub uuid: String,
    /// The domain id shown by `virtnet list` (unique while the daemon's run directory lives).
    pub id: u32,
    /// QEMU's process id.
    pub pid: u32,
    /// QEMU's start time in clock ticks since boot (`/proc/PID/stat` field 22), to tell our
    /// QEMU from a later process that got the same pid. 0 when unknown.
    #[serde(default)]
    pub pid_start_ticks: u64,
    /// QEMU's QMP socket.
    pub qmp_socket: PathBuf,
    /// QEMU's log file.
    #[serde(default)]
    pub log_path: Option<PathBuf>,
    /// The VM's run directory (QMP socket, log), removed when it stops.
    #[serde(default)]
    pub run_dir: Option<PathBuf>,
    /// Unix sockets QEMU listens on outside the run directory, removed when it stops.
    #[serde(default)]
    pub sockets_to_remove: Vec<PathBuf>,
    /// When the VM was started, in milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// The live domain XML (definition with run-time details: aliases, tap names, addresses).
    pub live_xml: String,
    /// Device aliases in QEMU (`net0`, `hostnet0`, ...) → what they belong to.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// File descriptors passed to QEMU by name (`getfd`) → what they are.
    #[serde(default)]
    pub fds: BTreeMap<String, String>,
    /// The host resources virtnet created for the VM (taps, macvtaps, bridge ports, VFs), as
    /// the VM executor serialises them, so they can be released after a daemon restart.
    #[serde(default)]
    pub host_resources: HostResources,
    /// Detaches waiting for the guest to release the device (`DEVICE_DELETED`), with what is
    /// left to do once it has.
    #[serde(default)]
    pub pending_detaches: PendingDetaches,
    /// How its QEMU is confined (hot-plugs give the same user what it opens); `None` =
    /// unconfined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<virtnet_qemu::Sandbox>,
}
