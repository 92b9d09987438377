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
    /// The network of a running `type='network'` NIC (then `type_` and `source` are its
    /// vhost-user side).
    pub network: Option<String>,
}

impl Nic {
    /// The type as virtnetd shows it (what a detach names).
    pub fn api_type(&self) -> &str {
        if self.network.is_some() {
            "network"
        } else {
            &self.type_
        }
    }
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
            network: None,
        })
        .collect()
}

/// A running NIC on a switch network is shown as virsh shows it (`network`, the network's
/// name); the invariants compare its vhost-user side: the socket virtnetd gave it,
/// `RUN/networks/NET/VM-MACHEX.sock` (the API socket lives in RUN).
fn as_vhostuser(api: &Api, vm: &str, nic: &mut Nic) {
    if nic.type_ != "network" {
        return;
    }
    let (Some(run), Some(net)) = (api.socket.parent(), nic.source.as_ref()) else {
        return;
    };
    let mac: String = nic.mac.chars().filter(|c| *c != ':').collect();
    let socket = run
        .join("networks")
        .join(net)
        .join(format!("{vm}-{}.sock", mac.to_lowercase()));
    nic.network = Some(net.clone());
    nic.type_ = "vhostuser".into();
    nic.source = Some(socket.to_string_lossy().into_owned());
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
            let mut live = nics(&api.get_ok(&format!("/v1/domains/{name}/interfaces"))?);
            for nic in &mut live {
                as_vhostuser(api, &name, nic);
            }
            live
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
