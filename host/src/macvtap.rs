//! macvtap devices: created on a host NIC, used through `/dev/tapN`.

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::str::FromStr;

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVtap, LinkAttribute, LinkInfo, LinkMessage, MacVtapMode,
};

use crate::devnode;
use crate::error::{HostError, Result};
use crate::linux::LinuxHost;
use crate::name::{validate_ifname, NAME_TRIES};
use crate::netlink::{self, LinkRef, LinkStatus};
use crate::tap::MAX_QUEUES;
use crate::tun::{open_rw, set_iff, IFF_NO_PI, IFF_TAP, IFF_VNET_HDR};
use crate::undo::{HostUndo, UndoStack};
use virtnet_conf::interface::MacAddr;

/// macvtap mode (`<source dev='eth0' mode='...'/>`); serialised by its XML name (`bridge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacvtapMode {
    /// Guests on the same lower device talk directly.
    Bridge,
    /// All traffic goes out to the external switch (which must hairpin).
    Vepa,
    /// Like VEPA, but guests can never talk to each other.
    Private,
    /// The lower device is given to one guest.
    Passthrough,
}

impl MacvtapMode {
    fn netlink(self) -> MacVtapMode {
        match self {
            MacvtapMode::Bridge => MacVtapMode::Bridge,
            MacvtapMode::Vepa => MacVtapMode::Vepa,
            MacvtapMode::Private => MacVtapMode::Private,
            MacvtapMode::Passthrough => MacVtapMode::Passthrough,
        }
    }
}

impl fmt::Display for MacvtapMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MacvtapMode::Bridge => "bridge",
            MacvtapMode::Vepa => "vepa",
            MacvtapMode::Private => "private",
            MacvtapMode::Passthrough => "passthrough",
        })
    }
}

impl FromStr for MacvtapMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "bridge" => Ok(MacvtapMode::Bridge),
            "vepa" => Ok(MacvtapMode::Vepa),
            "private" => Ok(MacvtapMode::Private),
            "passthrough" => Ok(MacvtapMode::Passthrough),
            _ => Err(format!(
                "unknown macvtap mode '{s}': use bridge, vepa, private or passthrough"
            )),
        }
    }
}

/// What macvtap to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacvtapSpec {
    /// `<target dev=.../>`; `None` = first free `macvtapN`.
    pub name: Option<String>,
    /// The host device (`<source dev=.../>`).
    pub lower: String,
    /// The mode.
    pub mode: MacvtapMode,
    /// The guest's MAC (a macvtap carries the guest MAC itself).
    pub mac: MacAddr,
    /// MTU, `None` = inherit from the lower device.
    pub mtu: Option<u32>,
    /// Number of queues (fds on `/dev/tapN`).
    pub queues: u16,
    /// Keep `IFF_VNET_HDR` on the queues.
    pub vnet_hdr: bool,
}

impl MacvtapSpec {
    /// Defaults: automatic name, one queue, vnet_hdr on.
    pub fn new(lower: impl Into<String>, mode: MacvtapMode, mac: MacAddr) -> Self {
        MacvtapSpec {
            name: None,
            lower: lower.into(),
            mode,
            mac,
            mtu: None,
            queues: 1,
            vnet_hdr: true,
        }
    }
}

/// A created macvtap with its open queues.
#[derive(Debug)]
pub struct MacvtapHandle {
    /// Interface name.
    pub name: String,
    /// Interface index (the `N` of `/dev/tapN`).
    pub ifindex: u32,
    /// One fd per queue; pass them to QEMU.
    pub fds: Vec<OwnedFd>,
    /// Undo steps, oldest first: delete the macvtap (unlike a tap it outlives its fds) and,
    /// for passthrough, give the lower device its MAC back.
    pub undo: Vec<HostUndo>,
}

impl LinuxHost {
    pub(crate) fn create_macvtap_impl(&self, spec: &MacvtapSpec) -> Result<MacvtapHandle> {
        validate_ifname(&spec.lower)?;
        if let Some(n) = &spec.name {
            validate_ifname(n)?;
        }
        if spec.queues == 0 || spec.queues > MAX_QUEUES {
            return Err(HostError::InvalidSpec {
                device: spec.name.clone().unwrap_or_else(|| "macvtapN".into()),
                reason: format!(
                    "{} queues requested; 1 to {MAX_QUEUES} allowed",
                    spec.queues
                ),
            });
        }
        let lower = netlink::get_link(&*self.nl, LinkRef::Name(&spec.lower), false)
            .map_err(|e| HostError::netlink(format!("look up '{}'", spec.lower), e))?
            .ok_or_else(|| HostError::LowerDeviceNotFound {
                name: spec.lower.clone(),
            })?;
        let name = match &spec.name {
            Some(n) => match self.new_macvtap(n, lower.header.index, spec) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    return Err(HostError::NameInUse { name: n.clone() })
                }
                r => r.map(|_| n.clone()).map_err(|e| create_err(n, spec, e))?,
            },
            None => self.new_macvtap_free_name(lower.header.index, spec)?,
        };
        // Created: from here on, a failure undoes what was done.
        let mut undo = UndoStack::new();
        undo.push(HostUndo::DeleteLink {
            name: name.clone(),
            ifindex: None,
        });
        match self.finish_macvtap(&name, &lower, spec, &mut undo) {
            Ok((ifindex, fds)) => Ok(MacvtapHandle {
                name,
                ifindex,
                fds,
                undo: undo.take(),
            }),
            Err(e) => {
                let errors = undo.rollback(self);
                Err(e.with_undo_errors(errors))
            }
        }
    }

    /// Sets the MAC (passthrough), brings the macvtap up and opens its queues.
    fn finish_macvtap(
        &self,
        name: &str,
        lower: &LinkMessage,
        spec: &MacvtapSpec,
        undo: &mut UndoStack,
    ) -> Result<(u32, Vec<OwnedFd>)> {
        let ifindex = self.ifindex(name)?;
        undo.take();
        undo.push(HostUndo::DeleteLink {
            name: name.to_string(),
            ifindex: Some(ifindex),
        });
        if spec.mode == MacvtapMode::Passthrough {
            // A passthrough macvtap inherits the lower device's MAC and changing it changes
            // the lower device's: save the lower MAC first (libvirt does the same).
            let original = LinkStatus::from_message(lower).mac;
            netlink::set_link(
                &*self.nl,
                ifindex,
                vec![LinkAttribute::Address(spec.mac.0.to_vec())],
                None,
            )
            .map_err(|e| {
                HostError::netlink(
                    format!("set MAC {} on passthrough macvtap '{name}'", spec.mac),
                    e,
                )
            })?;
            if let Some(mac) = original {
                undo.push(HostUndo::SetMac {
                    name: spec.lower.clone(),
                    mac,
                });
            }
        }
        netlink::set_link(&*self.nl, ifindex, vec![], Some(true)).map_err(|e| {
            if e.raw_os_error() == Some(libc::EADDRINUSE) {
                HostError::MacInUse {
                    name: name.to_string(),
                    lower: spec.lower.clone(),
                    mac: spec.mac.to_string(),
                }
            } else {
                HostError::netlink(format!("bring macvtap '{name}' up"), e)
            }
        })?;
        let fds = self.open_macvtap_queues(name, ifindex, spec.queues, spec.vnet_hdr)?;
        Ok((ifindex, fds))
    }

    fn new_macvtap(&self, name: &str, lower: u32, spec: &MacvtapSpec) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Link(lower));
        msg.attributes
            .push(LinkAttribute::Address(spec.mac.0.to_vec()));
        if let Some(mtu) = spec.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVtap),
            LinkInfo::Data(InfoData::MacVtap(vec![InfoMacVtap::Mode(
                spec.mode.netlink(),
            )])),
        ]));
        netlink::new_link(&*self.nl, msg, true)
    }

    fn new_macvtap_free_name(&self, lower: u32, spec: &MacvtapSpec) -> Result<String> {
        for _ in 0..NAME_TRIES {
            let candidate = self.macvtap_names.next_name();
            match self.new_macvtap(&candidate, lower, spec) {
                Ok(()) => return Ok(candidate),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(create_err(&candidate, spec, e)),
            }
        }
        Err(HostError::NoFreeName {
            prefix: self.macvtap_names.prefix().to_string(),
            tries: NAME_TRIES,
        })
    }

    /// Opens `/dev/tapN` `queues` times, making the node first if devtmpfs did not.
    fn open_macvtap_queues(
        &self,
        name: &str,
        ifindex: u32,
        queues: u16,
        vnet_hdr: bool,
    ) -> Result<Vec<OwnedFd>> {
        let rel = format!("class/net/{name}/macvtap/tap{ifindex}/dev");
        let text = self.sysfs.read(&rel)?;
        let dev = devnode::parse_dev(&text).ok_or_else(|| HostError::Sysfs {
            op: "parse major:minor in".into(),
            path: self.sysfs.path(&rel),
            source: io::Error::new(io::ErrorKind::InvalidData, text.clone()),
        })?;
        let node = devnode::node_for(&self.dev_dir, ifindex, dev)?;
        let path = &node.path;
        let mut flags = IFF_TAP | IFF_NO_PI;
        if vnet_hdr {
            flags |= IFF_VNET_HDR;
        }
        let opened = (0..queues)
            .map(|_| {
                let fd = open_rw(path)
                    .map_err(|e| HostError::device(format!("open {}", path.display()), e))?;
                set_iff(fd.as_fd(), "", flags).map_err(|e| {
                    HostError::device(format!("set flags on {}", path.display()), e)
                })?;
                Ok(fd)
            })
            .collect::<Result<Vec<_>>>();
        if node.made {
            // We made the node only to open it; don't leave it behind.
            let _ = fs::remove_file(path);
        }
        opened
    }
}

fn create_err(name: &str, spec: &MacvtapSpec, e: io::Error) -> HostError {
    HostError::netlink(
        format!(
            "create macvtap '{name}' on '{}' (mode {})",
            spec.lower, spec.mode
        ),
        e,
    )
}
