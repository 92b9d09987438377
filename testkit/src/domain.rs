//! Domain XML for the test guest.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::guest::GuestArtifacts;

/// A test domain: the test guest under TCG with ACPI (for hot-plug), a serial console on a
/// unix socket and the given NICs; build the XML with [`TestDomain::xml`].
#[derive(Debug, Clone)]
pub struct TestDomain {
    /// `<name>`.
    pub name: String,
    /// `qemu` (TCG, the default: KVM cannot boot the guest on these machines) or `kvm`.
    pub domain_type: String,
    /// Guest RAM in MiB (default 256).
    pub memory_mib: u32,
    /// The unix socket QEMU listens on for the serial console.
    pub serial: PathBuf,
    /// `<interface>` elements, as XML.
    pub nics: Vec<String>,
    /// Guest addresses, `(MAC, ADDR/LEN)`: passed as `virtnet.ip=` on the kernel command line.
    pub ips: Vec<(String, String)>,
    /// Share guest RAM through a memfd (needed by vhost-user NICs).
    pub shared_memory: bool,
}

impl TestDomain {
    /// A domain named `name` with its serial console at `serial` and no NIC yet.
    pub fn new(name: &str, serial: impl Into<PathBuf>) -> TestDomain {
        TestDomain {
            name: name.to_string(),
            domain_type: "qemu".into(),
            memory_mib: 256,
            serial: serial.into(),
            nics: Vec::new(),
            ips: Vec::new(),
            shared_memory: false,
        }
    }

    /// Adds an `<interface>` (XML) and, if `ip` is given (`10.0.0.2/24`), its guest address.
    pub fn nic(mut self, xml: &str, mac: &str, ip: Option<&str>) -> TestDomain {
        self.nics.push(xml.to_string());
        if let Some(ip) = ip {
            self.ips.push((mac.to_string(), ip.to_string()));
        }
        self
    }

    /// Gives the guest's NIC with `mac` the address `ip` (`10.0.0.2/24`) once it comes up (a
    /// NIC hot-plugged later, or one added with [`TestDomain::nic`] without an address).
    pub fn ip(mut self, mac: &str, ip: &str) -> TestDomain {
        self.ips.push((mac.to_string(), ip.to_string()));
        self
    }

    /// The domain XML, booting `guest`.
    pub fn xml(&self, guest: &GuestArtifacts) -> String {
        let mut cmdline = guest.cmdline.clone();
        if !self.ips.is_empty() {
            let pairs: Vec<String> = self.ips.iter().map(|(m, a)| format!("{m}={a}")).collect();
            let _ = write!(cmdline, " virtnet.ip={}", pairs.join(","));
        }
        let backing = if self.shared_memory {
            "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"
        } else {
            ""
        };
        format!(
            "<domain type='{ty}'>
  <name>{name}</name>
  <memory unit='MiB'>{mem}</memory>
  {backing}
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    {nics}
    <serial type='unix'>
      <source mode='bind' path='{serial}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>",
            ty = self.domain_type,
            name = self.name,
            mem = self.memory_mib,
            kernel = guest.kernel.display(),
            initrd = guest.initrd.display(),
            nics = self.nics.join("\n    "),
            serial = self.serial.display(),
        )
    }
}

/// `<interface type='bridge'>` on `bridge` with a virtio model.
pub fn bridge_nic(mac: &str, bridge: &str) -> String {
    format!(
        "<interface type='bridge'><mac address='{mac}'/><source bridge='{bridge}'/>\
         <model type='virtio'/></interface>"
    )
}

/// `<interface type='vhostuser'>` on the unix socket `socket` with a virtio model; `mode` is
/// QEMU's side: `server` (QEMU listens, the back end connects) or `client`.
pub fn vhostuser_nic(mac: &str, socket: &Path, mode: &str) -> String {
    format!(
        "<interface type='vhostuser'><mac address='{mac}'/>\
         <source type='unix' path='{}' mode='{mode}'/><model type='virtio'/></interface>",
        socket.display()
    )
}
