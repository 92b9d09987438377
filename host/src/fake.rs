//! [`FakeHost`]: an in-memory [`HostNet`] for testing start/hot-plug plans without root.
//!
//! It records every call, keeps a tiny model of links, bridges and prepared VFs (so "nothing
//! left behind" can be asserted), and can fail chosen calls to exercise rollback.
//! Differences from the kernel: taps stay until `delete_link` (dropping their fds does not
//! remove them), and fds are `/dev/null`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard};

use crate::api::HostNet;
use crate::bridge::BridgePortOpts;
use crate::cgroup::{
    CgroupDir, CgroupGroup, CgroupPlacement, CgroupSpec, CgroupVersion, Controller, CreatedCgroup,
};
use crate::error::{HostError, Result};
use crate::macvtap::{MacvtapHandle, MacvtapSpec};
use crate::name::validate_ifname;
use crate::netlink::LinkStatus;
use crate::nwfilter::{FilterFamily, TapFilter};
use crate::ovs::OvsPortSpec;
use crate::script::{ScriptRun, ScriptWait};
use crate::shaping::ShapeSpec;
use crate::tap::{TapHandle, TapSpec};
use crate::undo::HostUndo;
use crate::vf::{PreparedVf, SavedVf, VfSpec};
use virtnet_conf::interface::MacAddr;

/// The kind [`FakeHost::add_link`] takes for an Open vSwitch bridge.
pub const OVS_BRIDGE: &str = "openvswitch";

/// Where [`FakeHost`] says its cgroups are.
const FAKE_CGROUP_ROOT: &str = "/fake/cgroup";

/// One recorded call to a [`FakeHost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeCall {
    /// `create_tap`
    CreateTap(TapSpec),
    /// `open_tap`
    OpenTap {
        /// Name.
        name: String,
        /// Queues.
        queues: u16,
    },
    /// `attach_to_bridge`
    AttachToBridge {
        /// Port.
        port: String,
        /// Bridge.
        bridge: String,
        /// Options.
        opts: BridgePortOpts,
    },
    /// `detach_from_bridge`
    DetachFromBridge {
        /// Port.
        port: String,
        /// Bridge.
        bridge: String,
    },
    /// `ovs_add_port`
    OvsAddPort(OvsPortSpec),
    /// `ovs_del_port`
    OvsDelPort(String),
    /// `create_macvtap`
    CreateMacvtap(MacvtapSpec),
    /// `delete_link`
    DeleteLink {
        /// Name.
        name: String,
        /// Expected index.
        ifindex: Option<u32>,
    },
    /// `set_mac`
    SetMac {
        /// Name.
        name: String,
        /// MAC.
        mac: MacAddr,
    },
    /// `prepare_vf`
    PrepareVf(VfSpec),
    /// `restore_vf`
    RestoreVf(SavedVf),
    /// `link`
    Link(String),
    /// `start_script` (nothing is run)
    RunScript(ScriptRun),
    /// `shape`
    Shape(ShapeSpec),
    /// `unshape`
    Unshape {
        /// The device.
        dev: String,
        /// Its index when shaped.
        ifindex: u32,
    },
    /// `load_filter`
    LoadFilter(TapFilter),
    /// `delete_nft_table`
    DeleteNftTable {
        /// Family.
        family: String,
        /// Name.
        name: String,
    },
}

#[derive(Debug, Clone)]
struct FakeLink {
    ifindex: u32,
    kind: String,
    mac: MacAddr,
    mtu: u32,
    master: Option<String>,
}

#[derive(Default)]
struct State {
    calls: Vec<FakeCall>,
    fail_at: BTreeSet<usize>,
    links: BTreeMap<String, FakeLink>,
    next_ifindex: u32,
    next_tap: u32,
    next_macvtap: u32,
    vfs: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    shaped: BTreeMap<(String, u32), ShapeSpec>,
    nft_tables: BTreeSet<String>,
    ovs_ports: BTreeMap<String, OvsPortSpec>,
}

/// An in-memory host. Starts with only `lo`.
pub struct FakeHost {
    state: Mutex<State>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    /// A host with only `lo`.
    pub fn new() -> Self {
        let host = FakeHost {
            state: Mutex::new(State {
                next_ifindex: 1,
                ..State::default()
            }),
        };
        host.add_link("lo", "loopback");
        host
    }

    /// Adds a pre-existing device (`kind` e.g. `bridge`, `veth`, `tun`, `physical`, or
    /// [`OVS_BRIDGE`] for an Open vSwitch bridge).
    pub fn add_link(&self, name: &str, kind: &str) {
        let mut s = self.lock();
        let ifindex = s.next_ifindex;
        s.next_ifindex += 1;
        s.links.insert(
            name.to_string(),
            FakeLink {
                ifindex,
                kind: kind.to_string(),
                mac: MacAddr::default(),
                mtu: 1500,
                master: None,
            },
        );
    }

    /// Makes call number `n` (0-based, counting every trait call) fail with
    /// [`HostError::Injected`] without changing anything.
    pub fn fail_at(&self, n: usize) {
        self.lock().fail_at.insert(n);
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.lock().calls.clone()
    }

    /// Names of the existing links, sorted.
    pub fn links(&self) -> Vec<String> {
        self.lock().links.keys().cloned().collect()
    }

    /// Names of the cgroups made and not removed. Cgroup calls are kept apart from
    /// [`FakeHost::calls`] (and do not count for [`FakeHost::fail_at`]): the executor
    /// injects failures at its cgroup step itself.
    pub fn cgroups(&self) -> Vec<String> {
        self.lock().cgroups.iter().cloned().collect()
    }

    /// The shaping in place, by device and index (set by `shape`, removed by `unshape`).
    pub fn shaped(&self) -> Vec<ShapeSpec> {
        self.lock().shaped.values().cloned().collect()
    }

    /// nftables tables loaded and not deleted (`family/name`), sorted.
    pub fn nft_tables(&self) -> Vec<String> {
        self.lock().nft_tables.iter().cloned().collect()
    }

    /// Open vSwitch ports added and not removed, by port name.
    pub fn ovs_ports(&self) -> Vec<OvsPortSpec> {
        self.lock().ovs_ports.values().cloned().collect()
    }

    /// PCI addresses of VFs currently prepared (not yet restored).
    pub fn prepared_vfs(&self) -> Vec<String> {
        self.lock().vfs.iter().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `call`; returns the locked state, or the injected failure.
    fn enter(&self, call: FakeCall) -> Result<MutexGuard<'_, State>> {
        let mut s = self.lock();
        let n = s.calls.len();
        let what = format!("{call:?}");
        s.calls.push(call);
        if s.fail_at.contains(&n) {
            return Err(HostError::Injected { call: n, what });
        }
        Ok(s)
    }
}

fn null_fds(n: u16) -> Result<Vec<OwnedFd>> {
    (0..n)
        .map(|_| {
            File::open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| HostError::device("open /dev/null", e))
        })
        .collect()
}

fn add(s: &mut State, name: &str, kind: &str, mac: MacAddr, mtu: u32) -> u32 {
    let ifindex = s.next_ifindex;
    s.next_ifindex += 1;
    s.links.insert(
        name.to_string(),
        FakeLink {
            ifindex,
            kind: kind.to_string(),
            mac,
            mtu,
            master: None,
        },
    );
    ifindex
}

fn pick_name(s: &mut State, wanted: &Option<String>, macvtap: bool) -> Result<String> {
    if let Some(n) = wanted {
        validate_ifname(n)?;
        if s.links.contains_key(n) {
            return Err(HostError::NameInUse { name: n.clone() });
        }
        return Ok(n.clone());
    }
    loop {
        let (prefix, counter) = if macvtap {
            ("macvtap", &mut s.next_macvtap)
        } else {
            ("vnet", &mut s.next_tap)
        };
        let n = format!("{prefix}{counter}");
        *counter += 1;
        if !s.links.contains_key(&n) {
            return Ok(n);
        }
    }
}

impl HostNet for FakeHost {
    fn create_tap(&self, spec: &TapSpec) -> Result<TapHandle> {
        let mut s = self.enter(FakeCall::CreateTap(spec.clone()))?;
        let name = pick_name(&mut s, &spec.name, false)?;
        let fds = null_fds(spec.queues)?;
        let ifindex = add(
            &mut s,
            &name,
            "tun",
            spec.guest_mac.tap_mac(),
            spec.mtu.unwrap_or(1500),
        );
        Ok(TapHandle {
            undo: vec![HostUndo::DeleteLink {
                name: name.clone(),
                ifindex: Some(ifindex),
            }],
            name,
            ifindex,
            fds,
        })
    }

    fn open_tap(&self, name: &str, queues: u16, _vnet_hdr: bool) -> Result<TapHandle> {
        let s = self.enter(FakeCall::OpenTap {
            name: name.to_string(),
            queues,
        })?;
        validate_ifname(name)?;
        let link = s.links.get(name).ok_or_else(|| HostError::TapNotFound {
            name: name.to_string(),
        })?;
        if link.kind != "tun" {
            return Err(HostError::NotATap {
                name: name.to_string(),
                kind: link.kind.clone(),
            });
        }
        Ok(TapHandle {
            name: name.to_string(),
            ifindex: link.ifindex,
            fds: null_fds(queues)?,
            undo: Vec::new(),
        })
    }

    fn attach_to_bridge(
        &self,
        port: &str,
        bridge: &str,
        opts: &BridgePortOpts,
    ) -> Result<HostUndo> {
        let mut s = self.enter(FakeCall::AttachToBridge {
            port: port.to_string(),
            bridge: bridge.to_string(),
            opts: opts.clone(),
        })?;
        match s.links.get(bridge) {
            None => {
                return Err(HostError::BridgeNotFound {
                    bridge: bridge.to_string(),
                })
            }
            Some(l) if l.kind != "bridge" => {
                return Err(HostError::NotABridge {
                    bridge: bridge.to_string(),
                    kind: l.kind.clone(),
                })
            }
            Some(_) => {}
        }
        let p = s
            .links
            .get_mut(port)
            .ok_or_else(|| HostError::LinkNotFound {
                name: port.to_string(),
            })?;
        match &p.master {
            Some(m) if m != bridge => {
                return Err(HostError::AlreadyAttached {
                    port: port.to_string(),
                    master: m.clone(),
                })
            }
            _ => p.master = Some(bridge.to_string()),
        }
        Ok(HostUndo::DetachFromBridge {
            port: port.to_string(),
            bridge: bridge.to_string(),
        })
    }

    fn detach_from_bridge(&self, port: &str, bridge: &str) -> Result<()> {
        let mut s = self.enter(FakeCall::DetachFromBridge {
            port: port.to_string(),
            bridge: bridge.to_string(),
        })?;
        if let Some(p) = s.links.get_mut(port) {
            if p.master.as_deref() == Some(bridge) {
                p.master = None;
            }
        }
        Ok(())
    }

    fn ovs_add_port(&self, spec: &OvsPortSpec) -> Result<HostUndo> {
        let mut s = self.enter(FakeCall::OvsAddPort(spec.clone()))?;
        if s.links.get(&spec.bridge).map(|l| l.kind.as_str()) != Some(OVS_BRIDGE) {
            return Err(HostError::OvsBridgeNotFound {
                bridge: spec.bridge.clone(),
                db: "fake".into(),
            });
        }
        if !s.links.contains_key(&spec.port) {
            return Err(HostError::LinkNotFound {
                name: spec.port.clone(),
            });
        }
        s.ovs_ports.insert(spec.port.clone(), spec.clone());
        Ok(HostUndo::OvsDelPort {
            bridge: spec.bridge.clone(),
            port: spec.port.clone(),
        })
    }

    fn ovs_interfaces(&self) -> Result<Vec<crate::ovs::OvsInterface>> {
        let s = self.lock();
        Ok(s.ovs_ports
            .values()
            .map(|p| crate::ovs::OvsInterface {
                name: p.port.clone(),
                vm_id: Some(p.vm_id.clone()),
            })
            .collect())
    }

    fn ovs_del_port(&self, port: &str) -> Result<()> {
        let mut s = self.enter(FakeCall::OvsDelPort(port.to_string()))?;
        s.ovs_ports.remove(port);
        Ok(())
    }

    fn create_macvtap(&self, spec: &MacvtapSpec) -> Result<MacvtapHandle> {
        let mut s = self.enter(FakeCall::CreateMacvtap(spec.clone()))?;
        if !s.links.contains_key(&spec.lower) {
            return Err(HostError::LowerDeviceNotFound {
                name: spec.lower.clone(),
            });
        }
        let name = pick_name(&mut s, &spec.name, true)?;
        let fds = null_fds(spec.queues)?;
        let ifindex = add(&mut s, &name, "macvtap", spec.mac, spec.mtu.unwrap_or(1500));
        Ok(MacvtapHandle {
            undo: vec![HostUndo::DeleteLink {
                name: name.clone(),
                ifindex: Some(ifindex),
            }],
            name,
            ifindex,
            fds,
        })
    }

    fn delete_link(&self, name: &str, ifindex: Option<u32>) -> Result<()> {
        let mut s = self.enter(FakeCall::DeleteLink {
            name: name.to_string(),
            ifindex,
        })?;
        let matches = s
            .links
            .get(name)
            .is_some_and(|l| ifindex.is_none_or(|i| i == l.ifindex));
        if matches {
            s.links.remove(name);
        }
        Ok(())
    }

    fn set_mac(&self, name: &str, mac: MacAddr) -> Result<()> {
        let mut s = self.enter(FakeCall::SetMac {
            name: name.to_string(),
            mac,
        })?;
        if let Some(l) = s.links.get_mut(name) {
            l.mac = mac;
        }
        Ok(())
    }

    fn prepare_vf(&self, spec: &VfSpec) -> Result<PreparedVf> {
        let mut s = self.enter(FakeCall::PrepareVf(spec.clone()))?;
        let saved = SavedVf {
            addr: spec.addr,
            pf: "fakepf0".into(),
            index: 0,
            mac: MacAddr::default(),
            vlan: 0,
            qos: 0,
            driver: Some("fakevf".into()),
            managed: spec.managed,
        };
        s.vfs.insert(spec.addr.to_string());
        Ok(PreparedVf {
            undo: HostUndo::RestoreVf(saved.clone()),
            saved,
        })
    }

    fn restore_vf(&self, saved: &SavedVf) -> Result<()> {
        let mut s = self.enter(FakeCall::RestoreVf(saved.clone()))?;
        s.vfs.remove(&saved.addr.to_string());
        Ok(())
    }

    fn link(&self, name: &str) -> Result<Option<LinkStatus>> {
        let s = self.enter(FakeCall::Link(name.to_string()))?;
        Ok(s.links.get(name).map(|l| LinkStatus {
            name: name.to_string(),
            ifindex: l.ifindex,
            kind: Some(l.kind.clone()),
            mac: Some(l.mac),
            mtu: Some(l.mtu),
            up: true,
            master: l.master.clone(),
            stats: None,
        }))
    }

    /// The fake host has no neighbours.
    fn ipv4_neighbours(&self) -> Result<Vec<crate::Neighbour>> {
        Ok(Vec::new())
    }

    fn start_script(&self, run: &ScriptRun) -> Result<ScriptWait> {
        drop(self.enter(FakeCall::RunScript(run.clone()))?);
        Ok(ScriptWait::done(Ok(())))
    }

    fn shape(&self, spec: &ShapeSpec) -> Result<HostUndo> {
        let mut s = self.enter(FakeCall::Shape(spec.clone()))?;
        if s.links.get(&spec.dev).map(|l| l.ifindex) != Some(spec.ifindex) {
            return Err(HostError::LinkNotFound {
                name: spec.dev.clone(),
            });
        }
        let key = (spec.dev.clone(), spec.ifindex);
        if spec.inbound.is_none() && spec.outbound.is_none() {
            s.shaped.remove(&key);
        } else {
            s.shaped.insert(key, spec.clone());
        }
        Ok(HostUndo::Unshape {
            dev: spec.dev.clone(),
            ifindex: spec.ifindex,
        })
    }

    fn unshape(&self, dev: &str, ifindex: u32) -> Result<()> {
        let mut s = self.enter(FakeCall::Unshape {
            dev: dev.to_string(),
            ifindex,
        })?;
        s.shaped.remove(&(dev.to_string(), ifindex));
        Ok(())
    }

    fn load_filter(&self, filter: &TapFilter) -> Result<HostUndo> {
        let mut s = self.enter(FakeCall::LoadFilter(filter.clone()))?;
        let tap = s
            .links
            .get(&filter.tap)
            .ok_or_else(|| HostError::LinkNotFound {
                name: filter.tap.clone(),
            })?;
        if (filter.family == FilterFamily::Bridge) != tap.master.is_some() {
            return Err(HostError::Nft {
                op: format!("load filter table {}", filter.table),
                message: format!(
                    "a {} filter on tap {} whose bridge is {:?}",
                    filter.family.as_str(),
                    filter.tap,
                    tap.master
                ),
            });
        }
        let family = filter.family.as_str();
        s.nft_tables.insert(format!("{family}/{}", filter.table));
        Ok(HostUndo::DeleteNftTable {
            family: family.into(),
            name: filter.table.clone(),
        })
    }

    fn delete_nft_table(&self, family: &str, name: &str) -> Result<()> {
        let mut s = self.enter(FakeCall::DeleteNftTable {
            family: family.to_string(),
            name: name.to_string(),
        })?;
        s.nft_tables.remove(&format!("{family}/{name}"));
        Ok(())
    }

    /// Not recorded as a call (a query the daemon makes at start).
    fn filter_tables(&self) -> Result<Vec<(FilterFamily, String)>> {
        let s = self.lock();
        Ok(FilterFamily::ALL
            .into_iter()
            .flat_map(|f| {
                let prefix = format!("{}/", f.as_str());
                s.nft_tables
                    .iter()
                    .filter_map(move |t| t.strip_prefix(&prefix).map(|n| (f, n.to_string())))
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    /// Records the group as made at `/fake/cgroup/<name>` (v2, every controller); no
    /// `cgroup.procs` to join.
    fn create_cgroup(&self, spec: &CgroupSpec) -> Result<CreatedCgroup> {
        self.lock().cgroups.insert(spec.name.clone());
        Ok(CreatedCgroup {
            placement: CgroupPlacement::Placed(CgroupGroup {
                version: CgroupVersion::V2,
                dirs: vec![CgroupDir {
                    path: std::path::Path::new(FAKE_CGROUP_ROOT).join(&spec.name),
                    controllers: vec![Controller::Cpu, Controller::Memory, Controller::Pids],
                }],
            }),
            procs: Vec::new(),
        })
    }

    fn remove_cgroup(&self, group: &CgroupGroup) -> Result<()> {
        let mut s = self.lock();
        for d in &group.dirs {
            if let Ok(name) = d.path.strip_prefix(FAKE_CGROUP_ROOT) {
                s.cgroups.remove(&*name.to_string_lossy());
            }
        }
        Ok(())
    }
}
