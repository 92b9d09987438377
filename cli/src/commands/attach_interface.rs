//! `virtnet attach-interface NAME --type TYPE [--source S] [--target DEV] [--mac MAC]
//! [--model M] [--source-mode client|server] [--managed] [--print-xml] [--live] [--config]
//! [--persistent]`: virsh's short form; builds the `<interface>` and attaches it.

use virtnet_conf::interface::MacAddr;
use virtnet_conf::xml::escape;

use super::attach_device::{attach, report};
use super::device_scope::DeviceScope;
use crate::client::{Client, ClientError};

/// Interface types `attach-interface` builds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfaceType {
    /// A tap on a host bridge (`--source` = the bridge).
    Bridge,
    /// A virtnet network (`--source` = its name, as `virtnet net-list` shows).
    Network,
    /// A tap on no bridge (`--target` names it).
    Ethernet,
    /// A macvtap on a host device (`--source` = the device).
    Direct,
    /// A vhost-user socket (`--source` = the socket path).
    Vhostuser,
    /// QEMU's user-mode networking.
    User,
    /// An SR-IOV VF passed through (`--source` = its PCI address, 0000:03:10.1).
    Hostdev,
}

impl IfaceType {
    fn as_str(self) -> &'static str {
        match self {
            IfaceType::Bridge => "bridge",
            IfaceType::Network => "network",
            IfaceType::Ethernet => "ethernet",
            IfaceType::Direct => "direct",
            IfaceType::Vhostuser => "vhostuser",
            IfaceType::User => "user",
            IfaceType::Hostdev => "hostdev",
        }
    }
}

/// The options that describe the interface.
#[derive(clap::Args, Debug, Clone)]
pub struct IfaceOpts {
    /// Interface type.
    #[arg(long = "type", value_name = "TYPE")]
    pub type_: IfaceType,
    /// What it connects to: bridge, network, host device, socket path or VF PCI address.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Host device name (`<target dev>`).
    #[arg(long, value_name = "DEV")]
    pub target: Option<String>,
    /// Guest MAC (default: a new 52:54:00 one).
    // Parsed here, so that a bad one is refused naming the option, not as XML.
    #[arg(long, value_name = "MAC")]
    pub mac: Option<MacAddr>,
    /// NIC model (virtio, e1000, rtl8139, ...).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// vhostuser: who listens on the socket, `client` (the back end does; default) or
    /// `server` (QEMU does).
    #[arg(long, value_name = "MODE")]
    pub source_mode: Option<String>,
    /// hostdev: bind the VF to vfio-pci and back (managed='yes').
    #[arg(long)]
    pub managed: bool,
    /// Print the XML that would be attached, and attach nothing.
    #[arg(long)]
    pub print_xml: bool,
}

/// `DDDD:BB:SS.F` or `BB:SS.F` as an `<address type='pci'>`.
fn pci_address(s: &str) -> Result<String, String> {
    let bad = || format!("'{s}' is not a PCI address: write DDDD:BB:SS.F, e.g. 0000:03:10.1");
    let parts: Vec<&str> = s.split(':').collect();
    let (domain, bus, rest) = match parts.as_slice() {
        [d, b, r] => (*d, *b, *r),
        [b, r] => ("0000", *b, *r),
        _ => return Err(bad()),
    };
    let (slot, function) = rest.split_once('.').ok_or_else(bad)?;
    let hex = |v: &str, max: u32| {
        u32::from_str_radix(v, 16)
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(bad)
    };
    Ok(format!(
        "<address type='pci' domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{:x}'/>",
        hex(domain, 0xffff)?,
        hex(bus, 0xff)?,
        hex(slot, 0x1f)?,
        hex(function, 7)?
    ))
}

impl IfaceOpts {
    /// The `<interface>` element.
    pub fn xml(&self) -> Result<String, String> {
        let t = self.type_.as_str();
        let src = self.source.as_deref().map(escape);
        let need = |what: &str| {
            src.clone()
                .ok_or_else(|| format!("--type {t} needs --source {what}"))
        };
        let managed = if self.managed { " managed='yes'" } else { "" };
        let mut x = format!("<interface type='{t}'{managed}>");
        match self.type_ {
            IfaceType::Bridge => x += &format!("<source bridge='{}'/>", need("BRIDGE")?),
            IfaceType::Network => x += &format!("<source network='{}'/>", need("NETWORK")?),
            IfaceType::Direct => {
                x += &format!("<source dev='{}' mode='bridge'/>", need("HOST-DEVICE")?)
            }
            IfaceType::Vhostuser => {
                let mode = self.source_mode.as_deref().unwrap_or("client");
                if mode != "client" && mode != "server" {
                    return Err(format!(
                        "--source-mode must be client or server, not '{mode}'"
                    ));
                }
                x += &format!(
                    "<source type='unix' path='{}' mode='{mode}'/>",
                    need("SOCKET-PATH")?
                );
            }
            IfaceType::Hostdev => {
                let addr = pci_address(self.source.as_deref().ok_or_else(|| {
                    "--type hostdev needs --source PCI-ADDRESS (the VF, e.g. 0000:03:10.1)"
                        .to_string()
                })?)?;
                x += &format!("<source>{addr}</source>");
            }
            IfaceType::Ethernet | IfaceType::User => {
                if self.source.is_some() {
                    return Err(format!("--type {t} takes no --source"));
                }
            }
        }
        if self.source_mode.is_some() && self.type_ != IfaceType::Vhostuser {
            return Err("--source-mode is only for --type vhostuser".into());
        }
        if let Some(m) = &self.mac {
            x += &format!("<mac address='{m}'/>");
        }
        if let Some(dev) = &self.target {
            x += &format!("<target dev='{}'/>", escape(dev));
        }
        match (&self.model, self.type_) {
            (Some(m), _) => x += &format!("<model type='{}'/>", escape(m)),
            (None, IfaceType::Hostdev) => {}
            // virsh's attach-interface default for a NIC model is the hypervisor's; virtio is
            // what a virtnet guest has drivers for.
            (None, _) => x += "<model type='virtio'/>",
        }
        x += "</interface>";
        Ok(x)
    }
}

/// Runs the command.
pub async fn run(
    client: &Client,
    json: bool,
    name: &str,
    opts: &IfaceOpts,
    scope: DeviceScope,
) -> Result<(), ClientError> {
    let xml = opts.xml().map_err(|message| ClientError {
        kind: "usage".into(),
        message,
    })?;
    if opts.print_xml {
        println!("{xml}");
        return Ok(());
    }
    let r = attach(client, name, &xml, scope).await?;
    report(&r, json, "Interface");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(t: IfaceType, source: Option<&str>) -> IfaceOpts {
        IfaceOpts {
            type_: t,
            source: source.map(String::from),
            target: None,
            mac: None,
            model: None,
            source_mode: None,
            managed: false,
            print_xml: false,
        }
    }

    #[test]
    fn builds_interfaces() {
        let mut o = opts(IfaceType::Bridge, Some("br0"));
        o.mac = Some("52:54:00:00:00:01".parse().unwrap());
        o.target = Some("vnet9".into());
        assert_eq!(
            o.xml().unwrap(),
            "<interface type='bridge'><source bridge='br0'/><mac address='52:54:00:00:00:01'/>\
             <target dev='vnet9'/><model type='virtio'/></interface>"
        );
        let o = opts(IfaceType::Vhostuser, Some("/run/vu.sock"));
        assert!(o
            .xml()
            .unwrap()
            .contains("<source type='unix' path='/run/vu.sock' mode='client'/>"));
        let mut o = opts(IfaceType::Hostdev, Some("03:10.1"));
        o.managed = true;
        assert_eq!(
            o.xml().unwrap(),
            "<interface type='hostdev' managed='yes'><source><address type='pci' \
             domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source></interface>"
        );
        assert!(opts(IfaceType::Bridge, None).xml().is_err());
        assert!(opts(IfaceType::User, Some("x")).xml().is_err());
        assert!(opts(IfaceType::Hostdev, Some("zz")).xml().is_err());
        assert!(opts(IfaceType::Bridge, Some("a'b"))
            .xml()
            .unwrap()
            .contains("a&apos;b"));
    }
}
