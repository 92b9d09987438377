//! The [`HostNet`] trait: everything the VM start/hot-plug code asks of the host network.

use crate::bridge::BridgePortOpts;
#[allow(unused_imports)] // CgroupPlacement: named in the docs
use crate::cgroup::{CgroupGroup, CgroupPlacement, CgroupSpec, CreatedCgroup};
use crate::error::Result;
use crate::macvtap::{MacvtapHandle, MacvtapSpec};
use crate::netlink::LinkStatus;
use crate::nwfilter::TapFilter;
use crate::ovs::{OvsInterface, OvsPortSpec};
use crate::script::{ScriptRun, ScriptWait};
use crate::shaping::ShapeSpec;
use crate::tap::{TapHandle, TapSpec};
use crate::undo::HostUndo;
use crate::vf::{PreparedVf, SavedVf, VfSpec};
use virtnet_conf::interface::MacAddr;

/// Host network plumbing for VM NICs.
///
/// The trait is synchronous: each call is a handful of netlink requests, ioctls and sysfs
/// writes that complete in microseconds to milliseconds. Async callers (the tokio daemon)
/// run it with `tokio::task::spawn_blocking`; this keeps the trait object-safe, lets tests
/// call it from plain threads inside their own network namespace, and avoids nesting a
/// runtime inside the daemon's runtime. Implementations are `Send + Sync` so an
/// `Arc<dyn HostNet>` can be shared.
///
/// Every method that changes something returns (in its handle) the [`HostUndo`] that reverts
/// it; on failure a method undoes its own partial work before returning the error.
pub trait HostNet: Send + Sync {
    /// Creates a tap (managed). See [`TapSpec`] for naming, MAC, MTU and queues.
    fn create_tap(&self, spec: &TapSpec) -> Result<TapHandle>;

    /// Opens `queues` fds on an existing persistent tap (`managed='no'`); changes nothing
    /// on the tap and returns no undo.
    fn open_tap(&self, name: &str, queues: u16, vnet_hdr: bool) -> Result<TapHandle>;

    /// Makes `port` a port of the Linux bridge `bridge` (IFLA_MASTER).
    fn attach_to_bridge(&self, port: &str, bridge: &str, opts: &BridgePortOpts)
        -> Result<HostUndo>;

    /// Removes `port` from `bridge`; does nothing if the port is gone or not on that bridge.
    fn detach_from_bridge(&self, port: &str, bridge: &str) -> Result<()>;

    /// Adds a tap to an Open vSwitch bridge with libvirt's `external_ids` and its VLAN
    /// ([`crate::ovs`]); refuses a bridge OVS does not have. Returns the undo removing it.
    fn ovs_add_port(&self, spec: &OvsPortSpec) -> Result<HostUndo>;

    /// Removes an Open vSwitch port (a tap); a missing port is fine.
    fn ovs_del_port(&self, port: &str) -> Result<()>;

    /// The Open vSwitch interfaces with their `vm-id` (to find ports a crash left); an error
    /// when there is no Open vSwitch to ask.
    fn ovs_interfaces(&self) -> Result<Vec<OvsInterface>>;

    /// Creates a macvtap on a host device and opens its `/dev/tapN` queues.
    fn create_macvtap(&self, spec: &MacvtapSpec) -> Result<MacvtapHandle>;

    /// Deletes a link. Idempotent: a missing link is fine, and if `ifindex` is given and the
    /// name now belongs to another index (the name was reused), nothing is deleted.
    fn delete_link(&self, name: &str, ifindex: Option<u32>) -> Result<()>;

    /// Sets the MAC of link `name`; a missing link is fine (nothing to do).
    fn set_mac(&self, name: &str, mac: MacAddr) -> Result<()>;

    /// Saves an SR-IOV VF's MAC/VLAN/driver, binds it to vfio-pci (or, `managed='no'`, only
    /// checks it is bound there) and sets MAC/VLAN.
    fn prepare_vf(&self, spec: &VfSpec) -> Result<PreparedVf>;

    /// Puts back what [`HostNet::prepare_vf`] saved (MAC, VLAN, and for a managed VF the
    /// original driver).
    fn restore_vf(&self, saved: &SavedVf) -> Result<()>;

    /// Looks up a link by name; `Ok(None)` if there is none.
    fn link(&self, name: &str) -> Result<Option<LinkStatus>>;

    /// The IPv4 neighbour (ARP) table of the calling thread's namespace: the entries with a
    /// known MAC (`ip -4 neigh`).
    fn ipv4_neighbours(&self) -> Result<Vec<crate::Neighbour>>;

    /// Starts an interface's `<script>` or `<downscript>` with the tap's name, in the calling
    /// thread's network namespace (see [`crate::script`]: deadline, process group, output to
    /// the VM's log); [`ScriptWait::wait`] waits for it, on any thread. A method here, not a
    /// separate runner, so the executor's undo stack runs downscripts like any other undo
    /// step and [`crate::FakeHost`] records runs and injects failures in plan tests.
    fn start_script(&self, run: &ScriptRun) -> Result<ScriptWait>;

    /// Makes the VM's cgroup ([`crate::cgroup::create`]): probes the host, makes the group,
    /// writes the limits, opens `cgroup.procs` for QEMU to join. Host without usable cgroups
    /// and no limit asked: [`CgroupPlacement::Unavailable`], not an error.
    fn create_cgroup(&self, spec: &CgroupSpec) -> Result<CreatedCgroup>;

    /// Removes a VM's cgroup after QEMU exited ([`crate::cgroup::remove`]); idempotent.
    fn remove_cgroup(&self, group: &CgroupGroup) -> Result<()>;

    /// Makes `spec` the whole `<bandwidth>` shaping of a tap or macvtap ([`crate::shaping`]): set at
    /// start/attach, replaced by a live update (a direction without a limit loses its
    /// limit). Returns the undo that removes it; on failure the tap is left unshaped.
    fn shape(&self, spec: &ShapeSpec) -> Result<HostUndo>;

    /// Removes a device's shaping ([`HostUndo::Unshape`]); idempotent.
    fn unshape(&self, dev: &str, ifindex: u32) -> Result<()>;

    /// Loads a tap's `<filterref>` as an nftables table ([`crate::nwfilter::load`]): one
    /// transaction, a leftover table of the same name replaced; returns the undo deleting it.
    fn load_filter(&self, filter: &TapFilter) -> Result<HostUndo>;

    /// Deletes nftables table `family`/`name`; a missing table is fine.
    fn delete_nft_table(&self, family: &str, name: &str) -> Result<()>;

    /// The filter tables loaded ([`crate::nwfilter::tables`]: bridge family, virtnet's
    /// prefix), to find those no running VM holds after a crash.
    fn filter_tables(&self) -> Result<Vec<(crate::nwfilter::FilterFamily, String)>>;

    /// Runs a script and waits for it ([`HostNet::start_script`], then
    /// [`ScriptWait::wait`]): blocks up to its timeout.
    fn run_script(&self, run: &ScriptRun) -> Result<()> {
        self.start_script(run)?.wait()
    }
}
