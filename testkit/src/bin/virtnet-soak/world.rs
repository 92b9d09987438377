//! The soak's fixed cast (three VMs, a bridge, a switch network) and the XML it defines them
//! with; fresh MACs and tap names; every host resource ever handed out (for the registry
//! probe).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use virtnet_testkit::{GuestArtifacts, TestDomain};

/// The VMs.
pub const VMS: [&str; 3] = ["va", "vb", "vc"];
/// The Linux bridge their bridge NICs join.
pub const BRIDGE: &str = "br0";
/// The switch network their network NICs join.
pub const NET: &str = "sw0";
/// The network's uplink tap.
pub const UPLINK: &str = "sw0-up";
/// The name of the VM the registry probe defines.
pub const PROBE: &str = "probe";
/// At most this many NICs per VM (live or persistent): attach picks detach beyond it.
pub const MAX_NICS: usize = 4;

/// The network's definition.
pub fn net_xml() -> String {
    format!(
        "<network><name>{NET}</name><virtualport type='virtnet-vswitch'/>\
         <uplink dev='{UPLINK}'/></network>"
    )
}

/// The kinds of NIC the soak plugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicKind {
    /// `type='bridge'` on [`BRIDGE`].
    Bridge,
    /// `type='network'` on [`NET`] (a vhost-user port of the switch).
    Network,
}

/// Counters for fresh names, the guest, and every resource handed out.
pub struct World {
    /// Where serial back ends (sockets, files) go.
    pub chr: PathBuf,
    /// The test guest.
    pub guest: GuestArtifacts,
    next_mac: u32,
    next_tap: u32,
    /// Tap names given as `<target dev>` so far.
    pub taps: BTreeSet<String>,
    /// vhost-user socket paths virtnetd chose for network NICs so far.
    pub sockets: BTreeSet<String>,
}

impl World {
    /// A world under `base`.
    pub fn new(base: &Path, guest: GuestArtifacts) -> World {
        World {
            chr: base.join("chr"),
            guest,
            next_mac: 1,
            next_tap: 0,
            taps: BTreeSet::new(),
            sockets: BTreeSet::new(),
        }
    }

    /// A MAC not used before.
    pub fn mac(&mut self) -> String {
        let n = self.next_mac;
        self.next_mac += 1;
        format!("52:54:00:5a:{:02x}:{:02x}", (n >> 8) & 0xff, n & 0xff)
    }

    /// A NIC of `kind` with a fresh MAC; bridge NICs get a fresh `<target dev>` when `named`
    /// (else virtnetd names the tap).
    pub fn nic(&mut self, kind: NicKind, named: bool) -> String {
        let mac = self.mac();
        match kind {
            NicKind::Bridge => {
                let target = if named {
                    let t = format!("sk{}", self.next_tap);
                    self.next_tap += 1;
                    self.taps.insert(t.clone());
                    format!("<target dev='{t}'/>")
                } else {
                    String::new()
                };
                format!(
                    "<interface type='bridge'><mac address='{mac}'/><source bridge='{BRIDGE}'/>\
                     {target}<model type='virtio'/></interface>"
                )
            }
            NicKind::Network => format!(
                "<interface type='network'><mac address='{mac}'/><source network='{NET}'/>\
                 <model type='virtio'/></interface>"
            ),
        }
    }

    /// The serial socket a VM is defined with.
    pub fn serial(&self, vm: &str) -> PathBuf {
        self.chr.join(format!("{vm}.sock"))
    }

    /// The domain XML of `vm` (test guest, TCG, 160 MiB shared memory) with `nics`.
    pub fn domain(&self, vm: &str, nics: &[String]) -> String {
        let mut d = TestDomain::new(vm, self.serial(vm));
        d.shared_memory = true;
        d.memory_mib = 160;
        d.nics = nics.to_vec();
        d.xml(&self.guest)
    }

    /// The probe VM: a definition claiming `taps` (as bridge NICs' `<target dev>`) and
    /// `sockets` (as vhost-user NICs): virtnetd's registry must accept it when none of them
    /// is held by a VM.
    pub fn probe(&mut self, taps: &[String], sockets: &[String]) -> String {
        let mut nics = Vec::new();
        for t in taps {
            let mac = self.mac();
            nics.push(format!(
                "<interface type='bridge'><mac address='{mac}'/><source bridge='{BRIDGE}'/>\
                 <target dev='{t}'/><model type='virtio'/></interface>"
            ));
        }
        for s in sockets {
            let mac = self.mac();
            nics.push(virtnet_testkit::vhostuser_nic(&mac, Path::new(s), "client"));
        }
        self.domain(PROBE, &nics)
    }
}
