//! The JSON documents of live migration: `POST /v1/domains/{name}/migrate` on the source
//! virtnetd (what `virtnet migrate --live` sends), and the destination's
//! `POST /v1/domains/{name}/migrate/{prepare,finish,abort}` (what the source virtnetd sends
//! the destination virtnetd).

use serde::{Deserialize, Serialize};

/// `POST /v1/domains/{name}/migrate` (source side).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateRequest {
    /// The destination virtnetd: its API socket path (`/run/virtnet/virtnetd.sock`) or the
    /// same as a URI (`unix:///run/virtnet/virtnetd.sock`).
    pub dest: String,
    /// Where the migration stream goes: `tcp:HOST[:PORT]` (virsh's `--migrateuri`): the
    /// destination QEMU listens on HOST (port 0 or none: it picks a free port) and the
    /// source QEMU connects there; or `unix` (the default; both on one host): a unix socket
    /// in the destination virtnetd's run dir, its two ends handed to the QEMUs as fds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_uri: Option<String>,
    /// Seconds the migration may take once started (then it is cancelled); default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Bandwidth limit of the migration stream in MiB/s (virsh `--bandwidth`); default
    /// unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mib: Option<u64>,
    /// Remove the source's persistent definition afterwards (virsh `--undefinesource`).
    #[serde(default)]
    pub undefine_source: bool,
    /// The domain XML the destination runs and defines instead of the source's (virsh
    /// `--xml`: host-specific paths such as a serial socket may differ; the guest ABI must
    /// not). Its name and UUID must be the VM's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_xml: Option<String>,
}

/// One step of a migration as it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateStepTime {
    /// What the step did.
    pub step: String,
    /// Its wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// The answer to a completed migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateResponse {
    /// VM name.
    pub name: String,
    /// The destination virtnetd.
    pub dest: String,
    /// The URI the source QEMU migrated to.
    pub uri: String,
    /// QEMU's `total-time` (ms).
    pub total_time_ms: Option<u64>,
    /// QEMU's `downtime` (ms): how long the guest was stopped.
    pub downtime_ms: Option<u64>,
    /// QEMU's `setup-time` (ms).
    pub setup_time_ms: Option<u64>,
    /// RAM bytes sent.
    pub transferred_bytes: Option<u64>,
    /// Each step with its wall time.
    pub steps: Vec<MigrateStepTime>,
    /// What could not be released on the source (empty when all was).
    pub leftovers: Vec<String>,
}

/// `GET /v1/domains/{name}/migrate`: the progress of the VM's outgoing migration (the lines
/// so far; empty when none runs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateProgress {
    /// VM name.
    pub name: String,
    /// Whether a migration of the VM runs.
    pub active: bool,
    /// Progress lines (step started, RAM sent), oldest first.
    pub lines: Vec<String>,
}

/// `POST /v1/domains/{name}/migrate/prepare` (destination side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareRequest {
    /// The domain to run (the source's live definition, or the user's `--xml`).
    pub live_xml: String,
    /// The persistent definition to store when this host has none of the VM.
    pub definition_xml: String,
    /// Where QEMU listens: `tcp:HOST:PORT` (port 0: QEMU picks one).
    pub listen_uri: String,
    /// Seconds after which the destination aborts the prepare by itself when no finish or
    /// abort came (a source that died); default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_within_secs: Option<u64>,
}

/// The answer to a prepare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareResponse {
    /// Where the source QEMU must migrate to (`tcp:HOST:PORT`, the port QEMU listens on).
    pub uri: String,
    /// Whether the prepare stored the definition (an abort removes it again).
    pub defined: bool,
    /// The destination QEMU's pid.
    pub pid: u32,
}

/// `GET /v1/host`: what a migration's source needs to know about this host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostInfo {
    /// This host's Open vSwitch `external_ids:system-id` (its OVN chassis name), if it has
    /// an Open vSwitch with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovs_system_id: Option<String>,
}

/// The answer to an abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortResponse {
    /// VM name.
    pub name: String,
    /// Whether the definition the prepare stored was removed.
    pub undefined: bool,
    /// What could not be released (empty when all was).
    pub leftovers: Vec<String>,
}
