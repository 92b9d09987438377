//! What virtnetd says exists: VMs with their live and persistent NICs, networks with their
//! switch and ports. The operations choose from it; the invariants compare it with the host.

use serde_json::Value;

use crate::api::Api;

/// One NIC (a row of `GET /v1/domains/NAME/interfaces`).
#[derive(Debug, Clone)]
pub struct Nic {
    /// `bridge`, `vhostuser`, `network`, ...
    pub type_: String,
    /// Guest MAC.
    pub mac: String,
    /// Device alias (live).
    pub alias: Option<String>,
    /// Host tap (`<target dev>`), when known.
    pub tap: Option<String>,
    /// Bridge, network or socket path.
    pub source: Option<String>,
    /// `up` or `down`.
    pub link: String,
    /// A detach waits for the guest.
    pub pending: bool,
}

/// One VM.
#[derive(Debug, Clone)]
pub struct Vm {
    /// Name.
    pub name: String,
    /// `running`, `shut_off`, ...
    pub state: String,
    /// Has a persistent definition.
    pub persistent: bool,
    /// A problem with its files, if any.
    pub problem: Option<String>,
    /// QEMU's pid while it runs.
    pub pid: Option<u32>,
    /// NICs of the running VM.
    pub live: Vec<Nic>,
    /// NICs of the persistent definition.
    pub config: Vec<Nic>,
}

impl Vm {
    /// QEMU runs.
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// One network.
#[derive(Debug, Clone)]
pub struct Net {
    /// Name.
    pub name: String,
    /// `active` or not.
    pub active: bool,
    /// The switch's pid.
    pub pid: Option<i32>,
    /// Restarts of the switch counted by virtnetd.
    pub restarts: u64,
    /// The uplink tap.
    pub uplink: Option<String>,
    /// (VM, socket) of each port.
    pub ports: Vec<(String, String)>,
}

/// Everything virtnetd reports.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// VMs, by name.
    pub vms: Vec<Vm>,
    /// Networks.
    pub nets: Vec<Net>,
}

impl View {
    /// The VM called `name`.
    pub fn vm(&self, name: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.name == name)
    }

    /// The network called `name`.
    pub fn net(&self, name: &str) -> Option<&Net> {
        self.nets.iter().find(|n| n.name == name)
    }

    /// Running VMs.
    pub fn running(&self) -> impl Iterator<Item = &Vm> {
        self.vms.iter().filter(|v| v.running())
    }

    /// Whether any VM is starting or stopping (a transition in flight).
    pub fn settled(&self) -> bool {
        self.vms
            .iter()
            .all(|v| v.state == "running" || v.state == "shut_off")
    }
}

fn nics(v: &Value) -> Vec<Nic> {
    let s = |r: &Value, k: &str| r[k].as_str().map(str::to_string);
    v["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| Nic {
            type_: s(r, "type").unwrap_or_default(),
            mac: s(r, "mac").unwrap_or_default(),
            alias: s(r, "alias"),
            tap: s(r, "interface"),
            source: s(r, "source"),
            link: s(r, "link").unwrap_or_default(),
            pending: r["removal_pending"].as_bool().unwrap_or(false),
        })
        .collect()
}

/// Asks virtnetd for everything.
pub fn view(api: &Api) -> Result<View, String> {
    let mut out = View::default();
    let list = api.get_ok("/v1/domains")?;
    for d in list["domains"].as_array().into_iter().flatten() {
        let name = d["name"].as_str().unwrap_or_default().to_string();
        let info = api.get_ok(&format!("/v1/domains/{name}"))?;
        let state = info["state"].as_str().unwrap_or_default().to_string();
        let persistent = info["persistent"].as_bool().unwrap_or(false);
        let live = if state == "running" {
            nics(&api.get_ok(&format!("/v1/domains/{name}/interfaces"))?)
        } else {
            Vec::new()
        };
        let config = if persistent {
            nics(&api.get_ok(&format!("/v1/domains/{name}/interfaces?inactive=true"))?)
        } else {
            Vec::new()
        };
        out.vms.push(Vm {
            name,
            state,
            persistent,
            problem: info["problem"].as_str().map(str::to_string),
            pid: info["pid"].as_u64().map(|p| p as u32),
            live,
            config,
        });
    }
    let nets = api.get_ok("/v1/networks?all=true")?;
    for n in nets.as_array().into_iter().flatten() {
        out.nets.push(Net {
            name: n["name"].as_str().unwrap_or_default().to_string(),
            active: n["state"] == "active",
            pid: n["pid"].as_i64().map(|p| p as i32),
            restarts: n["restarts"].as_u64().unwrap_or(0),
            uplink: n["uplink"].as_str().map(str::to_string),
            ports: n["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        p["vm"].as_str().unwrap_or_default().to_string(),
                        p["socket"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        });
    }
    Ok(out)
}
