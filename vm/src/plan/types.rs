//! The plan's value types. All serialisable (MACs, PCI addresses and modes as typed values
//! serialised in their text form), so a plan can be shown, snapshot-tested and stored.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use virtnet_host::{FilterSpec, GrantSpec, MacAddr, MacvtapMode, OvsPortSpec, PciAddr, RateLimit};
use virtnet_qemu::{FdRef, NicBackend};

/// Where the fds a host step opens go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FdSink {
    /// At start: QEMU inherits them at these fd numbers (one per fd, in order).
    Inherit(Vec<i32>),
    /// Hot-plug: they are sent over QMP with `getfd` under these names.
    GetFd(Vec<String>),
}

impl FdSink {
    /// How many fds go there.
    pub fn len(&self) -> usize {
        match self {
            FdSink::Inherit(v) => v.len(),
            FdSink::GetFd(v) => v.len(),
        }
    }

    /// Whether no fd goes there.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How QEMU is told about them (`fd=3` or `fd=tapfd-net1`).
    pub fn refs(&self) -> Vec<FdRef> {
        match self {
            FdSink::Inherit(v) => v.iter().map(|n| FdRef::Fd(*n)).collect(),
            FdSink::GetFd(v) => v.iter().map(|s| FdRef::Name(s.clone())).collect(),
        }
    }
}

/// Hands out fd targets while planning: inherited fd numbers at start, `getfd` names for
/// hot-plug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdNaming {
    /// Numbers from `next` up (QEMU inherits them).
    Inherit {
        /// The next free number.
        next: i32,
    },
    /// Names `<role>-<device id>` (one fd) or `<role>-<device id>-<queue>` (several), as
    /// libvirt names them (`tapfd-net1`, `vhostfd-net1`).
    GetFd,
}

impl FdNaming {
    /// `count` targets for the fds of `device` in `role` (`tapfd`, `vhostfd`).
    pub fn take(&mut self, device: &str, role: &str, count: usize) -> FdSink {
        match self {
            FdNaming::Inherit { next } => {
                let v = (0..count as i32).map(|i| *next + i).collect();
                *next += count as i32;
                FdSink::Inherit(v)
            }
            FdNaming::GetFd if count == 1 => FdSink::GetFd(vec![format!("{role}-{device}")]),
            FdNaming::GetFd => {
                FdSink::GetFd((0..count).map(|q| format!("{role}-{device}-{q}")).collect())
            }
        }
    }
}

/// One thing to do on the host before QEMU starts. Each says which interface it is for
/// (`nic`: index in `<devices>`) and where the fds it opens go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum HostStep {
    /// Create a tap (managed: deleted when the VM stops) and, for `type='bridge'`, make it a
    /// port of the bridge.
    CreateTap {
        /// Interface index.
        nic: usize,
        /// `<target dev>`; `None` = the first free `vnetN`, chosen at run time.
        name: Option<String>,
        /// The guest MAC (the tap gets it with the first byte set to 0xfe).
        mac: MacAddr,
        /// `<mtu size>`.
        mtu: Option<u32>,
        /// Queues (fds).
        queues: u16,
        /// Open with `IFF_VNET_HDR`.
        vnet_hdr: bool,
        /// The bridge to attach it to.
        bridge: Option<String>,
        /// `<port isolated='yes'/>`.
        isolated: bool,
        /// Where the tap fds go.
        fds: FdSink,
    },
    /// Add the tap the step before created to an Open vSwitch bridge (`type='bridge'` with
    /// `<virtualport type='openvswitch'>`, [`virtnet_host::ovs`]): with libvirt's
    /// `external_ids` and `<vlan>` as its tag/trunks; undone (port removed) at unplug, stop,
    /// failure and recovery. The tap's name is known only at run time, so the spec's `port`
    /// is filled in then.
    AddOvsPort {
        /// Interface index.
        nic: usize,
        /// The port; `port` is empty here (the tap's name, chosen at run time).
        port: OvsPortSpec,
    },
    /// Open an existing tap (`type='ethernet'` with `<target dev managed='no'/>`): nothing is
    /// created, and the tap stays when the VM stops.
    OpenTap {
        /// Interface index.
        nic: usize,
        /// The tap's name.
        name: String,
        /// Queues (fds).
        queues: u16,
        /// Open with `IFF_VNET_HDR`.
        vnet_hdr: bool,
        /// Where the tap fds go.
        fds: FdSink,
    },
    /// Create a macvtap on a host device (`type='direct'`) and open its queues.
    CreateMacvtap {
        /// Interface index.
        nic: usize,
        /// `<target dev>`; `None` = the first free `macvtapN`.
        name: Option<String>,
        /// The host device (`<source dev>`).
        lower: String,
        /// `bridge`, `vepa`, `private` or `passthrough`.
        mode: MacvtapMode,
        /// The guest MAC (the macvtap carries it).
        mac: MacAddr,
        /// `<mtu size>`.
        mtu: Option<u32>,
        /// Queues (fds).
        queues: u16,
        /// Open with `IFF_VNET_HDR`.
        vnet_hdr: bool,
        /// Where the macvtap fds go.
        fds: FdSink,
    },
    /// Open `/dev/vhost-net` once per queue (tap NICs with vhost-net).
    OpenVhostNet {
        /// Interface index.
        nic: usize,
        /// Where the vhost-net fds go.
        fds: FdSink,
    },
    /// Run the interface's `<script>` with the name of the tap the step before created or
    /// opened (`type='ethernet'`; libvirt's order: right after the tap), and record its
    /// `<downscript>` to run at teardown. If the script fails, the NIC is undone and the
    /// downscript does not run; the downscript's undo is recorded only once the script (if
    /// any) succeeded.
    RunScripts {
        /// Interface index.
        nic: usize,
        /// QEMU device id, naming the NIC in the log and errors.
        device: String,
        /// `<script path>`, run now.
        script: Option<String>,
        /// `<downscript path>`, run at VM stop or NIC unplug.
        downscript: Option<String>,
    },
    /// Limit the tap's or macvtap's traffic (`<bandwidth>`, [`virtnet_host::shaping`]): an
    /// HTB qdisc on the device's egress, an nftables limit on its ingress (host → guest and
    /// guest → host on a tap, the other way round on a macvtap). Right after the device (and
    /// its scripts); undone (qdisc and table removed) at stop and unplug.
    Shape {
        /// Interface index.
        nic: usize,
        /// Host → guest (`<inbound>`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inbound: Option<RateLimit>,
        /// Guest → host (`<outbound>`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outbound: Option<RateLimit>,
    },
    /// Load the NIC's `<filterref>` as an nftables table on the tap the step before created or
    /// opened ([`virtnet_host::nwfilter`]: bridge family for a bridge port, netdev family
    /// for a tap on no bridge): table `virtnet-filter-VM-TAP`, deleted when the NIC goes.
    LoadFilter {
        /// Interface index.
        nic: usize,
        /// The domain's name (part of the table's name).
        vm: String,
        /// The guest MAC (frames from the guest must carry it).
        mac: MacAddr,
        /// What to enforce (the `<filterref>` resolved).
        filter: FilterSpec,
    },
    /// Save an SR-IOV VF's state, set its MAC/VLAN through the PF, bind it to vfio-pci.
    PrepareVf {
        /// Interface index.
        nic: usize,
        /// The VF's host PCI address (`0000:03:10.1`).
        pci: PciAddr,
        /// The MAC to give it.
        mac: Option<MacAddr>,
        /// The VLAN tag to give it.
        vlan: Option<u16>,
        /// `managed='yes'`: virtnet binds it to vfio-pci (with `no` it must be bound already).
        managed: bool,
    },
}

impl HostStep {
    /// The interface the step is for.
    pub fn nic(&self) -> usize {
        match self {
            HostStep::CreateTap { nic, .. }
            | HostStep::OpenTap { nic, .. }
            | HostStep::CreateMacvtap { nic, .. }
            | HostStep::OpenVhostNet { nic, .. }
            | HostStep::RunScripts { nic, .. }
            | HostStep::Shape { nic, .. }
            | HostStep::LoadFilter { nic, .. }
            | HostStep::PrepareVf { nic, .. }
            | HostStep::AddOvsPort { nic, .. } => *nic,
        }
    }

    /// Where its fds go (`None`: it opens none).
    pub fn fds(&self) -> Option<&FdSink> {
        match self {
            HostStep::CreateTap { fds, .. }
            | HostStep::OpenTap { fds, .. }
            | HostStep::CreateMacvtap { fds, .. }
            | HostStep::OpenVhostNet { fds, .. } => Some(fds),
            HostStep::PrepareVf { .. }
            | HostStep::AddOvsPort { .. }
            | HostStep::RunScripts { .. }
            | HostStep::Shape { .. }
            | HostStep::LoadFilter { .. } => None,
        }
    }

    /// A one-line description for messages and summaries.
    pub fn describe(&self) -> String {
        let name = |n: &Option<String>, auto: &str| n.clone().unwrap_or_else(|| auto.to_string());
        match self {
            HostStep::CreateTap {
                name: n,
                bridge,
                queues,
                ..
            } => {
                let mut s = format!("create tap {}", name(n, "vnetN"));
                if *queues > 1 {
                    s.push_str(&format!(" ({queues} queues)"));
                }
                if let Some(b) = bridge {
                    s.push_str(&format!(" on bridge '{b}'"));
                }
                s
            }
            HostStep::OpenTap { name, .. } => format!("open existing tap '{name}'"),
            HostStep::AddOvsPort { port, .. } => {
                let mut s = format!(
                    "add the tap to Open vSwitch bridge '{}' (iface-id {})",
                    port.bridge, port.iface_id
                );
                if let Some(v) = &port.vlan {
                    let tags: Vec<String> = v.tags.iter().map(u16::to_string).collect();
                    let what = if v.trunk { "trunks" } else { "tag" };
                    s.push_str(&format!(", {what} {}", tags.join(",")));
                }
                s
            }
            HostStep::CreateMacvtap {
                name: n,
                lower,
                mode,
                ..
            } => format!(
                "create macvtap {} on '{lower}' (mode {mode})",
                name(n, "macvtapN")
            ),
            HostStep::OpenVhostNet { fds, .. } => {
                format!("open /dev/vhost-net ({} fds)", fds.len())
            }
            HostStep::RunScripts {
                script, downscript, ..
            } => {
                let mut v = Vec::new();
                if let Some(s) = script {
                    v.push(format!("run script {s} with the tap's name"));
                }
                if let Some(d) = downscript {
                    v.push(format!("run downscript {d} at teardown"));
                }
                v.join("; ")
            }
            HostStep::Shape {
                inbound, outbound, ..
            } => {
                let dir = |r: &Option<RateLimit>, what: &str| {
                    r.as_ref().map(|r| format!("{what} {}", r.describe()))
                };
                let v: Vec<String> = [dir(inbound, "host->guest"), dir(outbound, "guest->host")]
                    .into_iter()
                    .flatten()
                    .collect();
                format!("limit the bandwidth: {}", v.join("; "))
            }
            HostStep::LoadFilter { filter, .. } => {
                let ips: Vec<String> = filter.ips.iter().map(|i| i.to_string()).collect();
                let ips = if filter.learning {
                    "the first address the guest uses".to_string()
                } else {
                    ips.join(", ")
                };
                format!(
                    "filter the tap with nftables (filter '{}', addresses: {ips})",
                    filter.name
                )
            }
            HostStep::PrepareVf {
                pci, managed: true, ..
            } => format!("prepare VF {pci} for vfio-pci"),
            HostStep::PrepareVf { pci, .. } => {
                format!("check VF {pci} is on vfio-pci (managed='no'), set its MAC/VLAN")
            }
        }
    }
}

/// What QEMU's side of an interface is, besides the fds the steps open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlannedBackend {
    /// Tap or macvtap fds (from the NIC's steps), plus vhost-net fds if any.
    Tap,
    /// A vhost-user socket.
    VhostUser {
        /// Socket path.
        socket: String,
        /// `server` (QEMU listens and waits for the back end) or `client`.
        mode: String,
    },
    /// A VF bound to vfio-pci.
    Vfio,
    /// SLIRP inside QEMU.
    User,
    /// A QEMU socket netdev (server, client, mcast, udp).
    Socket,
}

/// The plan of one interface: its ids, its host steps, its back end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicPlan {
    /// Index in `<devices>`.
    pub index: usize,
    /// The interface type (`bridge`, `direct`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// QEMU device id (`net0`).
    pub device_id: String,
    /// QEMU netdev id (`hostnet0`); none for hostdev.
    pub netdev_id: Option<String>,
    /// The guest MAC.
    pub mac: Option<MacAddr>,
    /// Host steps, in order.
    pub steps: Vec<HostStep>,
    /// QEMU's side.
    pub backend: PlannedBackend,
}

impl NicPlan {
    /// The back end to give the argv builder (or `netdev_json` for hot-plug).
    pub fn qemu_backend(&self) -> NicBackend {
        match &self.backend {
            PlannedBackend::Tap => {
                let mut fds = Vec::new();
                let mut vhost_fds = Vec::new();
                for s in &self.steps {
                    match s {
                        HostStep::OpenVhostNet { fds: f, .. } => vhost_fds.extend(f.refs()),
                        other => fds.extend(other.fds().map(FdSink::refs).unwrap_or_default()),
                    }
                }
                NicBackend::Tap { fds, vhost_fds }
            }
            PlannedBackend::VhostUser { .. } => NicBackend::VhostUser,
            PlannedBackend::Vfio => NicBackend::Vfio,
            PlannedBackend::User => NicBackend::User,
            PlannedBackend::Socket => NicBackend::Socket,
        }
    }
}

/// One QMP command to run after QEMU is up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QmpCommand {
    /// The command (`set_link`, `cont`).
    pub execute: String,
    /// Its arguments (`{}` when none).
    pub arguments: Value,
}

/// The QEMU capabilities the plan was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCaps {
    /// `major.minor.micro`.
    pub version: String,
    /// Whether tap NICs get vhost-net fds (never under TCG, as with libvirt).
    pub vhost_net: bool,
}

/// Everything needed to start one VM, decided before anything is touched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartPlan {
    /// The domain name.
    pub name: String,
    /// The QEMU binary.
    pub qemu_binary: PathBuf,
    /// The per-VM run directory (created 0700 at start, removed at stop). A confined QEMU
    /// does not see it: what it holds (the monitor socket, chardev sockets) QEMU gets as fds.
    pub run_dir: PathBuf,
    /// QMP socket (inside the run dir).
    pub qmp_socket: PathBuf,
    /// QEMU's log file.
    pub log_path: PathBuf,
    /// What the command line was built for.
    pub caps: PlannedCaps,
    /// What virtnetd opens for QEMU before the host steps (the QMP socket, chardev sockets
    /// and files), each with the fd number QEMU inherits it at and its undo.
    pub pass_fds: Vec<super::PassFd>,
    /// Per-interface plans, in `<devices>` order.
    pub nics: Vec<NicPlan>,
    /// All host steps, in order (the NICs' steps, concatenated).
    pub host_steps: Vec<HostStep>,
    /// QEMU's arguments (without the binary); inherited fds by the numbers in `host_steps`.
    pub argv: Vec<String>,
    /// QMP commands after QEMU is up, ending with `cont` (with `migrate-incoming` for the
    /// destination of a live migration).
    pub post_start: Vec<QmpCommand>,
    /// Unix sockets QEMU listens on outside the run dir (vhost-user `mode='server'`, serial
    /// `mode='bind'`): removed after QEMU exits.
    pub sockets_to_remove: Vec<PathBuf>,
    /// How QEMU is confined; `None` = unconfined (runs as virtnetd's user).
    pub sandbox: Option<virtnet_qemu::Sandbox>,
    /// The VM's cgroup, made before anything else (QEMU joins it between fork and exec);
    /// `None` = no group of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<virtnet_host::CgroupSpec>,
    /// Paths QEMU opens by name that its user must reach (confined starts only): all
    /// checked before anything else happens, granted right after the run dir is made, given
    /// back at stop ([`virtnet_host::dac`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<GrantSpec>,
}

impl StartPlan {
    /// Every inherited fd number: the host steps' in order, then the passed fds'.
    pub fn inherited_fds(&self) -> Vec<i32> {
        let passed = self.pass_fds.iter().map(|p| p.fd);
        self.host_steps
            .iter()
            .filter_map(HostStep::fds)
            .flat_map(|f| match f {
                FdSink::Inherit(v) => v.clone(),
                FdSink::GetFd(_) => Vec::new(),
            })
            .chain(passed)
            .collect()
    }

    /// A short human summary: one line per host step, the fd map, the QMP commands.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "plan for VM '{}' (QEMU {}, run dir {})\n",
            self.name,
            self.caps.version,
            self.run_dir.display()
        );
        if let Some(c) = &self.cgroup {
            s.push_str(&format!(
                "  cgroup {} {}\n",
                c.name,
                limits_summary(&c.limits)
            ));
        }
        for g in &self.access {
            s.push_str(&format!(
                "  access: {} (if out of its reach)\n",
                g.describe()
            ));
        }
        for p in &self.pass_fds {
            s.push_str(&format!("  host: {} -> QEMU fd {}\n", p.describe(), p.fd));
        }
        for n in &self.nics {
            s.push_str(&format!(
                "  nic {} {} type={} mac={}\n",
                n.index,
                n.device_id,
                n.type_,
                n.mac.map_or_else(|| "-".to_string(), |m| m.to_string())
            ));
            for st in &n.steps {
                let fds = match st.fds() {
                    Some(FdSink::Inherit(v)) => format!(" -> QEMU fds {v:?}"),
                    Some(FdSink::GetFd(v)) => format!(" -> getfd {v:?}"),
                    None => String::new(),
                };
                s.push_str(&format!("    host: {}{fds}\n", st.describe()));
            }
        }
        let netdevs: Vec<&String> = self
            .argv
            .iter()
            .zip(self.argv.iter().skip(1))
            .filter(|(o, _)| *o == "-netdev")
            .map(|(_, v)| v)
            .collect();
        for n in netdevs {
            s.push_str(&format!("  -netdev {n}\n"));
        }
        for c in &self.post_start {
            s.push_str(&format!("  qmp: {} {}\n", c.execute, c.arguments));
        }
        s
    }
}

/// `memory.max=268435456 pids.max=4096 cpu.shares=512`.
fn limits_summary(l: &virtnet_host::CgroupLimits) -> String {
    let v = serde_json::to_value(l).unwrap_or_default();
    let fields: Vec<String> = v
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
        .unwrap_or_default();
    fields.join(" ")
}
