//! `--live`, `--config`, `--persistent`, `--current` of the device commands, as virsh has them.

use serde_json::{json, Value};

/// Where a device change applies. `--config`: the persistent definition only; `--live`: the
/// running VM only; `--persistent`: the definition, and the running VM if it runs; none (or
/// `--current`): the running VM when it runs, else the definition. The daemon decides "if it
/// runs" under the VM's lock.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct DeviceScope {
    /// Change the running VM (it must run).
    #[arg(long)]
    pub live: bool,
    /// Change the persistent definition (what the next start uses).
    #[arg(long)]
    pub config: bool,
    /// Change the persistent definition, and the running VM if it runs.
    #[arg(long)]
    pub persistent: bool,
    /// The running VM when it runs, else the definition (the default).
    #[arg(long, conflicts_with_all = ["live", "config", "persistent"])]
    pub current: bool,
}

impl DeviceScope {
    /// Adds `live`, `config`, `persistent` to a request body.
    pub fn add_to(&self, body: &mut Value) {
        body["live"] = json!(self.live);
        body["config"] = json!(self.config);
        body["persistent"] = json!(self.persistent);
    }
}

/// "live", "config" or "live and config", for messages.
pub fn applied(live: bool, config: bool) -> &'static str {
    match (live, config) {
        (true, true) => "running VM and definition",
        (true, false) => "running VM",
        (false, true) => "definition",
        (false, false) => "nothing",
    }
}
