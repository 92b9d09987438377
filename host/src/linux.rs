//! [`LinuxHost`]: the real implementation of [`HostNet`].

use std::path::{Path, PathBuf};

use netlink_packet_route::link::LinkAttribute;

use crate::api::HostNet;
use crate::bridge::BridgePortOpts;
use crate::cgroup::{CgroupGroup, CgroupSpec, CreatedCgroup};
use crate::error::{HostError, Result};
use crate::macvtap::{MacvtapHandle, MacvtapSpec};
use crate::name::NameCounter;
use crate::netlink::{self, LinkRef, LinkStatus, NetlinkTransport, SocketTransport};
use crate::ovs::{OvsPortSpec, Vsctl};
use crate::script::{ScriptRun, ScriptWait};
use crate::tap::{TapHandle, TapSpec};
use crate::undo::HostUndo;
use crate::vf::{self, PreparedVf, SavedVf, Sysfs, VfSpec};
use virtnet_conf::interface::MacAddr;

/// Linux host networking: `/dev/net/tun`, rtnetlink, sysfs, `/dev/tapN`.
///
/// Its netlink socket belongs to the network namespace of the thread that created it, and
/// taps are created in the namespace of the calling thread. `sysfs/class/net` is
/// per-namespace too: the sysfs root must be mounted from the same network namespace (the
/// tests mount a fresh sysfs in theirs) for macvtap lookups to work.
pub struct LinuxHost {
    pub(crate) nl: Box<dyn NetlinkTransport>,
    pub(crate) sysfs: Sysfs,
    pub(crate) dev_dir: PathBuf,
    pub(crate) tap_names: NameCounter,
    pub(crate) macvtap_names: NameCounter,
    pub(crate) ovs: Vsctl,
}

impl LinuxHost {
    /// The real host: a netlink socket, sysfs at `/sys`, device nodes in `/dev`.
    pub fn new() -> Result<Self> {
        let nl = SocketTransport::open()
            .map_err(|e| HostError::netlink("open a NETLINK_ROUTE socket", e))?;
        Ok(Self::with_parts(Box::new(nl), Sysfs::new("/sys"), "/dev"))
    }

    /// Builds a host from parts: tests pass a [`crate::netlink::RecordingNetlink`], a fake
    /// sysfs tree, or a private device directory (where `/dev/tapN` nodes are made).
    pub fn with_parts(
        nl: Box<dyn NetlinkTransport>,
        sysfs: Sysfs,
        dev_dir: impl Into<PathBuf>,
    ) -> Self {
        LinuxHost {
            nl,
            sysfs,
            dev_dir: dev_dir.into(),
            tap_names: NameCounter::new("vnet"),
            macvtap_names: NameCounter::new("macvtap"),
            ovs: Vsctl::default(),
        }
    }

    /// Uses `ovs` for Open vSwitch ports (e.g. another OVSDB: [`Vsctl::with_db`]); the default
    /// is ovs-vsctl's own database.
    pub fn with_ovs(mut self, ovs: Vsctl) -> Self {
        self.ovs = ovs;
        self
    }

    /// The sysfs used for macvtap and VF lookups.
    pub fn sysfs(&self) -> &Sysfs {
        &self.sysfs
    }

    /// The directory holding `tapN` device nodes.
    pub fn dev_dir(&self) -> &Path {
        &self.dev_dir
    }

    /// The ifindex of `name`, or `LinkNotFound`.
    pub(crate) fn ifindex(&self, name: &str) -> Result<u32> {
        match netlink::get_link(&*self.nl, LinkRef::Name(name), false) {
            Ok(Some(m)) => Ok(m.header.index),
            Ok(None) => Err(HostError::LinkNotFound {
                name: name.to_string(),
            }),
            Err(e) => Err(HostError::netlink(format!("look up '{name}'"), e)),
        }
    }
}

impl HostNet for LinuxHost {
    fn create_tap(&self, spec: &TapSpec) -> Result<TapHandle> {
        self.create_tap_impl(spec)
    }

    fn open_tap(&self, name: &str, queues: u16, vnet_hdr: bool) -> Result<TapHandle> {
        self.open_tap_impl(name, queues, vnet_hdr)
    }

    fn attach_to_bridge(
        &self,
        port: &str,
        bridge: &str,
        opts: &BridgePortOpts,
    ) -> Result<HostUndo> {
        self.attach_impl(port, bridge, opts)
    }

    fn detach_from_bridge(&self, port: &str, bridge: &str) -> Result<()> {
        self.detach_impl(port, bridge)
    }

    fn ovs_add_port(&self, spec: &OvsPortSpec) -> Result<HostUndo> {
        self.ovs.add_port(spec)
    }

    fn ovs_del_port(&self, port: &str) -> Result<()> {
        self.ovs.del_port(port)
    }

    fn ovs_interfaces(&self) -> Result<Vec<crate::ovs::OvsInterface>> {
        self.ovs.interfaces()
    }

    fn create_macvtap(&self, spec: &MacvtapSpec) -> Result<MacvtapHandle> {
        self.create_macvtap_impl(spec)
    }

    fn delete_link(&self, name: &str, ifindex: Option<u32>) -> Result<()> {
        let op = || format!("delete '{name}'");
        let Some(m) = netlink::get_link(&*self.nl, LinkRef::Name(name), false)
            .map_err(|e| HostError::netlink(op(), e))?
        else {
            return Ok(());
        };
        if ifindex.is_some_and(|i| i != m.header.index) {
            return Ok(());
        }
        match netlink::del_link(&*self.nl, m.header.index) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            r => r.map_err(|e| HostError::netlink(op(), e)),
        }
    }

    fn set_mac(&self, name: &str, mac: MacAddr) -> Result<()> {
        let op = || format!("set MAC {mac} on '{name}'");
        let Some(m) = netlink::get_link(&*self.nl, LinkRef::Name(name), false)
            .map_err(|e| HostError::netlink(op(), e))?
        else {
            return Ok(());
        };
        let attrs = vec![LinkAttribute::Address(mac.0.to_vec())];
        netlink::set_link(&*self.nl, m.header.index, attrs, None)
            .map_err(|e| HostError::netlink(op(), e))
    }

    fn prepare_vf(&self, spec: &VfSpec) -> Result<PreparedVf> {
        vf::prepare(&*self.nl, &self.sysfs, spec)
    }

    fn restore_vf(&self, saved: &SavedVf) -> Result<()> {
        vf::restore(&*self.nl, &self.sysfs, saved)
    }

    fn link(&self, name: &str) -> Result<Option<LinkStatus>> {
        let op = |e| HostError::netlink(format!("look up '{name}'"), e);
        let Some(m) = netlink::get_link(&*self.nl, LinkRef::Name(name), false).map_err(op)? else {
            return Ok(None);
        };
        let mut status = LinkStatus::from_message(&m);
        if let Some(master) = netlink::link_master(&m) {
            let mm = netlink::get_link(&*self.nl, LinkRef::Index(master), false).map_err(op)?;
            status.master = mm.as_ref().and_then(netlink::link_name).map(str::to_string);
        }
        Ok(Some(status))
    }

    fn ipv4_neighbours(&self) -> Result<Vec<crate::Neighbour>> {
        netlink::ipv4_neighbours(&*self.nl)
            .map_err(|e| HostError::netlink("read the neighbour table".to_string(), e))
    }

    fn start_script(&self, run: &ScriptRun) -> Result<ScriptWait> {
        crate::script::spawn_script(run)
    }

    fn create_cgroup(&self, spec: &CgroupSpec) -> Result<CreatedCgroup> {
        crate::cgroup::create(spec)
    }

    fn remove_cgroup(&self, group: &CgroupGroup) -> Result<()> {
        crate::cgroup::remove(group)
    }

    fn shape(&self, spec: &crate::ShapeSpec) -> Result<HostUndo> {
        crate::shaping::apply(spec)?;
        Ok(HostUndo::Unshape {
            dev: spec.dev.clone(),
            ifindex: spec.ifindex,
        })
    }

    fn unshape(&self, dev: &str, ifindex: u32) -> Result<()> {
        crate::shaping::remove(dev, ifindex, true)
    }

    fn load_filter(&self, filter: &crate::nwfilter::TapFilter) -> Result<HostUndo> {
        crate::nwfilter::load(filter)
    }

    fn delete_nft_table(&self, family: &str, name: &str) -> Result<()> {
        crate::nft::delete_table(family, name)
    }

    fn filter_tables(&self) -> Result<Vec<(crate::nwfilter::FilterFamily, String)>> {
        crate::nwfilter::tables()
    }
}
