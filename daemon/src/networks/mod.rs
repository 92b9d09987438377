//! Networks virtnetd runs: `virtnet-vswitch` switches (vhost-user L2) that guests join with
//! `<interface type='network'><source network='NAME'/>`, and libvirt's Open vSwitch networks
//! (an existing OVS bridge, no process of their own: [`ovs`]). The definition's
//! [`NetworkKind`] says which; a running network's state is an [`Active`] of the same kind, and
//! what only a switch has (its process, health, adoption at restart, switch ports) is skipped
//! for an Open vSwitch network explicitly.
//!
//! Files: definitions in `STATE_DIR/networks/NAME.xml`; while a network runs,
//! `RUN_DIR/networks/NAME.json` (switch pid and start time, control socket, ports) and
//! `RUN_DIR/networks/NAME/` (control socket `control.sock`, `vswitch.log`, and the VM NICs'
//! vhost-user sockets `VM-MAC.sock`, on which QEMU listens and the switch connects).
//!
//! - A switch that dies is restarted by the daemon at once, with the same control socket,
//!   uplink and ports: QEMU keeps its listening sockets, the new switch connects to them and
//!   the guests' traffic resumes (the virtio state is recovered from the rings).
//! - After a daemon restart, a switch whose pid and start time match is adopted (and
//!   watched); one that died meanwhile is started again with its ports.
//! - `net-destroy` of a switch network is refused while VMs have ports on it (stop them or
//!   detach their NICs first): removing a port under a running guest would cut it off
//!   silently. An Open vSwitch network's `net-destroy` removes nothing, so it is allowed, as
//!   in libvirt ([`ovs`]).
//! - A running network's uplink tap is held in the owner [`Registry`]: no VM may use that
//!   tap name (`<target dev>`), and `net-start` is refused while a VM holds it.
//! - `net-autostart`: a marker `STATE_DIR/networks/autostart/NAME` (kept with the definition,
//!   removed by `net-undefine`); [`Networks::autostart`] starts those networks when virtnetd
//!   starts, after the VM definitions are loaded and before running VMs are recovered.
//! - Every network has a UUID (libvirt's clients name networks by name and UUID): generated
//!   at `net-define` when the XML has none, kept when the same name is redefined without one
//!   (a different one is refused, as is a UUID another network has), stored in the
//!   definition. A definition stored without one (before networks had UUIDs) gets one when
//!   loaded, written back so that it stays the same.
//! - The switch runs the definition it was started with (recorded in the status): a
//!   `net-define` while it runs applies at the next `net-start`, also across switch restarts.

pub mod health;
pub mod model;
pub mod ovs;
pub(crate) mod policy;
mod ports;
mod switch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use virtnet_conf::domain::Uuid;
use virtnet_conf::network::{parse_network, valid_name, Network, NetworkKind};
use virtnet_vswitch_control::{PortConfig, PortPolicy, Request};

use crate::error::{DaemonError, Result};
use crate::registry::{Registry, Resource};
use crate::store::atomic::{remove_durable, write_atomic};
use model::{NetDefineResponse, NetXml, NetworkInfo, PortInfo};
pub use ports::NetPort;

/// What `RUN_DIR/networks/NAME.json` records about a running switch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetStatus {
    /// The network.
    pub name: String,
    /// The switch's pid.
    pub pid: i32,
    /// Its start time (/proc/PID/stat field 22), to tell it from a reused pid.
    pub start_time: u64,
    /// Its control socket.
    pub control: PathBuf,
    /// Restarts after the switch died.
    #[serde(default)]
    pub restarts: u32,
    /// Port name → port.
    #[serde(default)]
    pub ports: BTreeMap<String, Port>,
    /// The definition the switch runs (canonical XML), so that a restart after a crash keeps
    /// its uplink even if the network was redefined meanwhile. Absent in older statuses: the
    /// stored definition is used then.
    #[serde(default)]
    pub xml: Option<String>,
    /// The switch runs in the network's directory and names its sockets relative to it (set
    /// for every switch this virtnetd starts). False in older statuses: an adopted switch
    /// started before then gets absolute paths.
    #[serde(default)]
    pub in_dir: bool,
}

/// A VM NIC's port on a switch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Port {
    /// The VM.
    pub vm: String,
    /// The vhost-user socket QEMU listens on.
    pub socket: PathBuf,
    /// Queue pairs of the port (the NIC's `<driver queues>`; 1 in statuses written before
    /// ports had them).
    #[serde(default = "one")]
    pub queues: u32,
    /// What the port enforces (none in statuses written before ports had policies).
    #[serde(default)]
    pub policy: PortPolicy,
}

fn one() -> u32 {
    1
}

/// A running network's state, by kind.
#[derive(Debug, Clone)]
enum Active {
    /// Its `virtnet-vswitch` process and ports.
    Switch(NetStatus),
    /// An Open vSwitch network marked active (`RUN_DIR/networks/NAME.active`).
    Ovs(ovs::OvsActive),
}

impl Active {
    /// The switch's status (`None` for an Open vSwitch network, which has no process).
    fn switch(&self) -> Option<&NetStatus> {
        match self {
            Active::Switch(st) => Some(st),
            Active::Ovs(_) => None,
        }
    }

    fn switch_mut(&mut self) -> Option<&mut NetStatus> {
        match self {
            Active::Switch(st) => Some(st),
            Active::Ovs(_) => None,
        }
    }

    /// The definition it was started with (canonical XML), if recorded.
    fn xml(&self) -> Option<&str> {
        match self {
            Active::Switch(st) => st.xml.as_deref(),
            Active::Ovs(o) => Some(&o.xml),
        }
    }
}

struct Net {
    def: Network,
    run: Option<Active>,
    autostart: bool,
}

impl Net {
    /// The running switch's status (`None` while inactive, and for an Open vSwitch network).
    fn switch(&self) -> Option<&NetStatus> {
        self.run.as_ref().and_then(Active::switch)
    }

    /// The definition the network runs (while active), else the stored one.
    fn running_def(&self) -> Network {
        self.run
            .as_ref()
            .and_then(Active::xml)
            .and_then(|x| parse_network(x).ok())
            // A status written before networks had UUIDs: the network's UUID all the same.
            .map(|d| Network {
                uuid: d.uuid.or(self.def.uuid),
                ..d
            })
            .unwrap_or_else(|| self.def.clone())
    }
}

/// What a running network `def` holds in the owner registry: its uplink tap.
fn uplink_claims(def: &Network) -> Vec<Resource> {
    def.uplink()
        .into_iter()
        .map(|u| Resource::Tap(u.dev.clone()))
        .collect()
}

/// Every network of the daemon.
pub struct Networks {
    me: Weak<Networks>,
    defs_dir: PathBuf,
    run_dir: PathBuf,
    registry: Arc<Registry>,
    /// QEMU's user (`virtnetd --qemu-user`): its group may reach the switches' sockets.
    qemu_user: String,
    table: tokio::sync::Mutex<BTreeMap<String, Net>>,
    /// How Open vSwitch is asked whether a network's bridge exists (`virtnetd --ovsdb`).
    vsctl: std::sync::OnceLock<virtnet_host::Vsctl>,
    /// The NICs running on Open vSwitch networks (what their live XML shows).
    ovs_nics: ovs::OvsNics,
}

fn no_such(name: &str) -> DaemonError {
    DaemonError::NoSuchNetwork { name: name.into() }
}

impl Networks {
    /// Opens the network store under `state_dir` and `run_dir`, loads the definitions, and
    /// adopts (or restarts) the switches that were running; their uplinks are claimed in
    /// `registry`. Switches share their sockets with `qemu_user`'s group (QEMU's user).
    pub async fn open(
        state_dir: &Path,
        run_dir: &Path,
        registry: Arc<Registry>,
        qemu_user: &str,
    ) -> Result<Arc<Networks>> {
        let defs_dir = state_dir.join("networks");
        let run_dir = run_dir.join("networks");
        for d in [&defs_dir, &run_dir, &defs_dir.join("autostart")] {
            std::fs::create_dir_all(d).map_err(|e| DaemonError::store("create directory", d, e))?;
        }
        let ovs_file = run_dir.join("ovs-nics.json");
        let nets = Arc::new_cyclic(|me| Networks {
            me: me.clone(),
            defs_dir,
            run_dir,
            registry,
            qemu_user: qemu_user.to_string(),
            table: tokio::sync::Mutex::new(BTreeMap::new()),
            vsctl: std::sync::OnceLock::new(),
            ovs_nics: ovs::OvsNics::load(&ovs_file),
        });
        nets.load().await?;
        Ok(nets)
    }

    fn def_path(&self, name: &str) -> PathBuf {
        self.defs_dir.join(format!("{name}.xml"))
    }

    fn autostart_path(&self, name: &str) -> PathBuf {
        self.defs_dir.join("autostart").join(name)
    }

    fn status_path(&self, name: &str) -> PathBuf {
        self.run_dir.join(format!("{name}.json"))
    }

    /// The directory of every network's run-time files (`<run_dir>/networks`): where QEMU
    /// listens on the vhost-user sockets of switch-network NICs.
    pub fn sockets_dir(&self) -> &Path {
        &self.run_dir
    }

    /// `RUN_DIR/networks/NAME/`: the switch's control socket, log and the NICs' sockets.
    pub fn net_dir(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    fn save_status(&self, st: &NetStatus) -> Result<()> {
        let path = self.status_path(&st.name);
        let bytes = serde_json::to_vec_pretty(st)
            .map_err(|e| DaemonError::Internal(format!("network status: {e}")))?;
        write_atomic(&path, &bytes, 0o600).map_err(|(a, e)| DaemonError::store(a, &path, e))
    }

    async fn load(&self) -> Result<()> {
        let mut table = self.table.lock().await;
        for (name, path) in scan(&self.defs_dir, "xml") {
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| parse_network(&t).map_err(|e| e.to_string()))
            {
                Ok(mut def) if def.name == name => {
                    if def.uuid.is_none() {
                        def.uuid = Some(Uuid::new_random());
                        if let Err((a, e)) = write_atomic(&path, def.to_xml().as_bytes(), 0o600) {
                            tracing::error!(path = %path.display(), action = a, error = %e, "cannot store the UUID given to a network definition without one");
                        }
                    }
                    let autostart = self.autostart_path(&name).is_file();
                    table.insert(
                        name,
                        Net {
                            def,
                            run: None,
                            autostart,
                        },
                    );
                }
                Ok(def) => {
                    tracing::error!(path = %path.display(), defines = %def.name, "network definition's file name and <name> differ; ignored")
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot load a network definition")
                }
            }
        }
        for (name, path) in scan(&self.run_dir, "json") {
            let status: Option<NetStatus> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let Some(mut st) = status else {
                tracing::error!(path = %path.display(), "unreadable network status; removed");
                let _ = remove_durable(&path);
                continue;
            };
            let Some(net) = table.get_mut(&name) else {
                tracing::warn!(network = %name, "a running switch without definition: stopping it");
                switch::stop(st.pid, st.start_time).await;
                let _ = remove_durable(&path);
                let _ = std::fs::remove_dir_all(self.net_dir(&name));
                continue;
            };
            let def = st
                .xml
                .as_deref()
                .and_then(|x| parse_network(x).ok())
                .unwrap_or_else(|| net.def.clone());
            if net.def.ovs().is_some() {
                tracing::error!(network = %name, "a switch status for an Open vSwitch network; stopping that switch");
                switch::stop(st.pid, st.start_time).await;
                let _ = remove_durable(&path);
                continue;
            }
            // VMs are not loaded yet: a running network's uplink is claimed first.
            if let Err(e) = self.registry.claim_network(&name, &uplink_claims(&def)) {
                tracing::error!(network = %name, error = %e, "cannot claim the uplink of a running network");
            }
            if switch::alive(st.pid, st.start_time)
                && switch::request(&st.control, &Request::ListPorts)
                    .await
                    .is_ok()
            {
                tracing::info!(network = %name, pid = st.pid, "adopted a running switch");
                self.watch(&name, st.pid, st.start_time, None);
                net.run = Some(Active::Switch(st));
            } else {
                tracing::warn!(network = %name, "its switch died while virtnetd was down: starting it again with its ports");
                switch::stop(st.pid, st.start_time).await;
                match self.launch(&def, &mut st).await {
                    Ok(()) => net.run = Some(Active::Switch(st)),
                    Err(e) => {
                        tracing::error!(network = %name, error = %e, "cannot restart the switch");
                        self.registry.release_network(&name);
                        let _ = remove_durable(&path);
                        let _ = std::fs::remove_dir_all(self.net_dir(&name));
                    }
                }
            }
        }
        self.load_ovs_active(&mut table);
        Ok(())
    }

    /// `net-define`: stores the definition (replacing one of the same name; a running switch
    /// keeps its uplink until restarted), with its UUID: the XML's, else the existing
    /// definition's, else a new one.
    pub async fn define(&self, xml: &str) -> Result<NetDefineResponse> {
        let mut def = parse_network(xml).map_err(|e| DaemonError::InvalidXml {
            problems: vec![e.located()],
        })?;
        let mut table = self.table.lock().await;
        def.uuid = Some(assign_uuid(&table, &def)?);
        let path = self.def_path(&def.name);
        write_atomic(&path, def.to_xml().as_bytes(), 0o600)
            .map_err(|(a, e)| DaemonError::store(a, &path, e))?;
        let name = def.name.clone();
        let created = match table.get_mut(&name) {
            Some(net) => {
                net.def = def;
                false
            }
            None => {
                let autostart = self.autostart_path(&name).is_file();
                table.insert(
                    name.clone(),
                    Net {
                        def,
                        run: None,
                        autostart,
                    },
                );
                true
            }
        };
        tracing::info!(network = %name, created, "network defined");
        Ok(NetDefineResponse { name, created })
    }

    /// `net-undefine`: removes an inactive network's definition.
    pub async fn undefine(&self, name: &str) -> Result<NetDefineResponse> {
        let mut table = self.table.lock().await;
        let net = table.get(name).ok_or_else(|| no_such(name))?;
        if net.run.is_some() {
            return Err(DaemonError::NetworkState {
                name: name.to_string(),
                state: "active".into(),
                hint: format!("stop it first with `virtnet net-destroy {name}`"),
            });
        }
        let marker = self.autostart_path(name);
        remove_durable(&marker).map_err(|e| DaemonError::store("remove", &marker, e))?;
        let path = self.def_path(name);
        remove_durable(&path).map_err(|e| DaemonError::store("remove", &path, e))?;
        table.remove(name);
        Ok(NetDefineResponse {
            name: name.into(),
            created: false,
        })
    }

    /// `net-start`: runs the network's switch; an Open vSwitch network is marked active once
    /// its bridge is found ([`Self::start_ovs`]).
    pub async fn start(&self, name: &str) -> Result<NetworkInfo> {
        let mut table = self.table.lock().await;
        let net = table.get_mut(name).ok_or_else(|| no_such(name))?;
        if net.run.is_some() {
            return Err(DaemonError::NetworkState {
                name: name.to_string(),
                state: "active".into(),
                hint: format!("nothing to start; `virtnet net-destroy {name}` stops it"),
            });
        }
        if let NetworkKind::Openvswitch(o) = &net.def.kind {
            let o = o.clone();
            net.run = Some(Active::Ovs(self.start_ovs(&net.def, &o).await?));
            tracing::info!(network = %name, bridge = %o.bridge, "Open vSwitch network started");
            return Ok(info(net));
        }
        // The uplink tap must not be a VM's: refused naming the VM that holds it.
        self.registry
            .claim_network(name, &uplink_claims(&net.def))?;
        let mut st = NetStatus {
            name: name.into(),
            pid: 0,
            start_time: 0,
            control: self.net_dir(name).join("control.sock"),
            restarts: 0,
            ports: BTreeMap::new(),
            xml: None,
            in_dir: false,
        };
        let dir = self.net_dir(name);
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let launched = match std::fs::create_dir_all(&dir) {
            Ok(()) => self.launch(&net.def, &mut st).await,
            Err(e) => Err(DaemonError::store("create", &dir, e)),
        };
        if let Err(e) = launched {
            let _ = std::fs::remove_dir_all(&dir);
            self.registry.release_network(name);
            return Err(e);
        }
        net.run = Some(Active::Switch(st));
        tracing::info!(network = %name, "network started");
        Ok(info(net))
    }

    /// Spawns the switch for `st` (its control socket, the definition's uplink, `st`'s
    /// ports), records its pid in `st`, saves the status and watches the process. On failure
    /// the switch is stopped again.
    async fn launch(&self, def: &Network, st: &mut NetStatus) -> Result<()> {
        let dir = self.net_dir(&def.name);
        std::fs::create_dir_all(&dir).map_err(|e| DaemonError::store("create", &dir, e))?;
        let uplink = def.uplink().map(|u| u.dev.as_str());
        let binary = switch::vswitch_binary()?;
        let log = dir.join("vswitch.log");
        let mut child =
            switch::spawn(&binary, &dir, &st.control, uplink, &log, &self.qemu_user).await?;
        let pid = child.id() as i32;
        let start_time = switch::start_time(pid).unwrap_or(0);
        let setup = async {
            if let Some(u) = def.uplink() {
                switch::configure_uplink(&u.dev, u.ip)?;
            }
            for (port, p) in &st.ports {
                switch::request(&st.control, &add_port(Some(&dir), port, p)).await?;
            }
            st.in_dir = true;
            st.pid = pid;
            st.start_time = start_time;
            st.xml = Some(def.to_xml());
            self.save_status(st)
        };
        if let Err(e) = setup.await {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        self.watch(&def.name, pid, start_time, Some(child));
        Ok(())
    }

    /// Watches switch `pid`: when it exits while still recorded as the network's switch, it is
    /// started again with the same ports.
    fn watch(&self, name: &str, pid: i32, start: u64, child: Option<std::process::Child>) {
        let me = self.me.clone();
        let name = name.to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        match child {
            Some(mut c) => {
                std::thread::spawn(move || {
                    let _ = c.wait();
                    let _ = tx.send(());
                });
            }
            None => {
                tokio::spawn(async move {
                    while switch::alive(pid, start) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let _ = tx.send(());
                });
            }
        }
        tokio::spawn(async move {
            let _ = rx.await;
            let Some(nets) = me.upgrade() else { return };
            nets.on_exit(&name, pid).await;
        });
    }

    async fn on_exit(&self, name: &str, pid: i32) {
        let mut attempt = 0u32;
        loop {
            let mut table = self.table.lock().await;
            let Some(net) = table.get_mut(name) else {
                return;
            };
            if net.switch().map(|st| st.pid) != Some(pid) {
                return; // stopped, or restarted already
            }
            let def = net.running_def();
            let Some(st) = net.run.as_mut().and_then(Active::switch_mut) else {
                return;
            };
            tracing::warn!(network = %name, pid, "the switch exited: starting it again with its ports");
            let mut next = st.clone();
            next.restarts += 1;
            match self.launch(&def, &mut next).await {
                Ok(()) => {
                    *st = next;
                    tracing::info!(network = %name, pid = st.pid, "switch restarted");
                    return;
                }
                Err(e) => {
                    tracing::error!(network = %name, error = %e, "cannot restart the switch; retrying");
                }
            }
            drop(table);
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(10)))).await;
        }
    }

    /// `net-destroy`: stops the switch. Refused while VMs have ports on it. An Open vSwitch
    /// network is marked inactive, its VMs' ports left as they are (libvirt's behaviour:
    /// [`Self::destroy_ovs`]).
    pub async fn destroy(&self, name: &str) -> Result<NetworkInfo> {
        let mut table = self.table.lock().await;
        let net = table.get_mut(name).ok_or_else(|| no_such(name))?;
        let st = match net.run.as_ref() {
            None => {
                return Err(DaemonError::NetworkState {
                    name: name.to_string(),
                    state: "inactive".into(),
                    hint: format!("nothing to stop; `virtnet net-start {name}` starts it"),
                })
            }
            Some(Active::Ovs(_)) => {
                self.destroy_ovs(name)?;
                net.run = None;
                return Ok(info(net));
            }
            Some(Active::Switch(st)) => st,
        };
        if !st.ports.is_empty() {
            // Each VM once (ports are ordered by port name, which need not group a VM's).
            let vms: Vec<&str> = st
                .ports
                .values()
                .map(|p| p.vm.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            return Err(DaemonError::NetworkState {
                name: name.to_string(),
                state: format!("in use by VM(s) {}", vms.join(", ")),
                hint: "stop those VMs or detach their interfaces on this network first".into(),
            });
        }
        let Some(Active::Switch(st)) = net.run.take() else {
            unreachable!("a switch, checked above")
        };
        switch::stop(st.pid, st.start_time).await;
        self.registry.release_network(name);
        let _ = remove_durable(&self.status_path(name));
        let dir = self.net_dir(name);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::error!(dir = %dir.display(), error = %e, "cannot remove the network's run dir");
            }
        }
        tracing::info!(network = %name, "network stopped");
        Ok(info(net))
    }

    /// `net-autostart`: whether virtnetd starts the network when it starts. Kept as a marker
    /// file next to the definition.
    pub async fn set_autostart(&self, name: &str, enable: bool) -> Result<NetworkInfo> {
        let mut table = self.table.lock().await;
        let net = table.get_mut(name).ok_or_else(|| no_such(name))?;
        let marker = self.autostart_path(name);
        if enable {
            write_atomic(&marker, b"", 0o600)
                .map_err(|(a, e)| DaemonError::store(a, &marker, e))?;
        } else {
            remove_durable(&marker).map_err(|e| DaemonError::store("remove", &marker, e))?;
        }
        net.autostart = enable;
        tracing::info!(network = %name, autostart = enable, "network autostart set");
        Ok(info(net))
    }

    /// Starts every inactive network marked autostart (at daemon start, after the VM
    /// definitions are loaded so that their tap names are known, before running VMs are
    /// recovered). A network that cannot start is logged and left inactive.
    pub async fn autostart(&self) {
        let names: Vec<String> = {
            let table = self.table.lock().await;
            table
                .iter()
                .filter(|(_, n)| n.autostart && n.run.is_none())
                .map(|(name, _)| name.clone())
                .collect()
        };
        for name in names {
            match self.start(&name).await {
                Ok(_) => tracing::info!(network = %name, "network autostarted"),
                Err(e) => {
                    tracing::error!(network = %name, error = %e, "cannot autostart the network")
                }
            }
        }
    }

    /// Every network (`all`: inactive ones too).
    pub async fn list(&self, all: bool) -> Vec<NetworkInfo> {
        let table = self.table.lock().await;
        table
            .values()
            .filter(|n| all || n.run.is_some())
            .map(info)
            .collect()
    }

    /// One network.
    pub async fn info(&self, name: &str) -> Result<NetworkInfo> {
        let table = self.table.lock().await;
        table.get(name).map(info).ok_or_else(|| no_such(name))
    }

    /// The canonical XML of the definition its switch runs (`inactive`, or while inactive:
    /// the stored definition, which a `net-define` while it runs replaced): libvirt's
    /// `virNetworkGetXMLDesc` with and without `VIR_NETWORK_XML_INACTIVE`.
    pub async fn xml_desc(&self, name: &str, inactive: bool) -> Result<String> {
        let table = self.table.lock().await;
        let net = table.get(name).ok_or_else(|| no_such(name))?;
        Ok(if inactive {
            net.def.to_xml()
        } else {
            net.running_def().to_xml()
        })
    }

    /// Its canonical XML.
    pub async fn xml(&self, name: &str) -> Result<NetXml> {
        let table = self.table.lock().await;
        let net = table.get(name).ok_or_else(|| no_such(name))?;
        Ok(NetXml {
            name: name.into(),
            xml: net.def.to_xml(),
        })
    }
}

/// The UUID network `def` is defined with: its own, else the one of the definition it
/// replaces, else a new one. Refused: a UUID other than the replaced definition's, or one
/// another network has.
fn assign_uuid(table: &BTreeMap<String, Net>, def: &Network) -> Result<Uuid> {
    let existing = table.get(&def.name).and_then(|n| n.def.uuid);
    let uuid = match (def.uuid, existing) {
        (Some(new), Some(old)) if new != old => {
            return Err(DaemonError::Conflict(format!(
                "network '{}' is already defined with UUID {old}, the new definition has \
                 UUID {new}: use the same <uuid> or leave it out to keep the existing one",
                def.name
            )))
        }
        (Some(u), _) | (None, Some(u)) => u,
        (None, None) => Uuid::new_random(),
    };
    if let Some((other, _)) = table
        .iter()
        .find(|(name, n)| **name != def.name && n.def.uuid == Some(uuid))
    {
        return Err(DaemonError::Conflict(format!(
            "network '{other}' already has UUID {uuid}: leave <uuid> out to get a new one"
        )));
    }
    Ok(uuid)
}

/// The switch's `add-port` for `port` (client mode: QEMU listens), with its queue pairs; the
/// socket named relative to the switch's directory `dir` (its working directory) when the
/// switch runs there (`in_dir`), else absolute.
fn add_port(dir: Option<&Path>, name: &str, port: &Port) -> Request {
    let socket = match dir {
        Some(dir) => switch::switch_path(dir, &port.socket),
        None => port.socket.clone(),
    };
    Request::AddPort(Box::new(PortConfig {
        // More than the switch takes (16) is refused by it, with the range to use.
        queues: u16::try_from(port.queues).unwrap_or(u16::MAX),
        policy: port.policy.clone(),
        ..PortConfig::new(name, socket)
    }))
}

fn info(net: &Net) -> NetworkInfo {
    NetworkInfo {
        name: net.def.name.clone(),
        uuid: net.def.uuid.map(|u| u.to_string()).unwrap_or_default(),
        state: if net.run.is_some() {
            "active"
        } else {
            "inactive"
        }
        .into(),
        uplink: net.running_def().uplink().map(|u| u.dev.clone()),
        autostart: net.autostart,
        pid: net.switch().map(|r| r.pid),
        control: net.switch().map(|r| r.control.display().to_string()),
        restarts: net.switch().map_or(0, |r| r.restarts),
        ports: net
            .switch()
            .into_iter()
            .flat_map(|r| &r.ports)
            .map(|(name, p)| PortInfo {
                name: name.clone(),
                vm: p.vm.clone(),
                socket: p.socket.display().to_string(),
                queues: p.queues,
            })
            .collect(),
        bridge: net.running_def().ovs().map(|o| o.bridge.clone()),
    }
}

/// `(name, path)` of every `NAME.EXT` file in `dir` with a valid network name.
fn scan(dir: &Path, ext: &str) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return v;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        if let Some(name) = file.strip_suffix(&format!(".{ext}")) {
            if valid_name(name) && path.is_file() {
                v.push((name.to_string(), path.clone()));
            }
        }
    }
    v.sort();
    v
}

#[cfg(test)]
mod tests;
