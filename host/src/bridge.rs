//! Attaching taps to Linux bridges (IFLA_MASTER) over netlink.

use netlink_packet_route::link::{
    InfoBridgePort, InfoPortData, InfoPortKind, LinkAttribute, LinkInfo, LinkMessage,
};

use crate::error::{HostError, Result};
use crate::linux::LinuxHost;
use crate::netlink::{self, link_kind, link_master, link_name, LinkRef};
use crate::undo::HostUndo;

/// Per-port options when attaching to a bridge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgePortOpts {
    /// Set `isolated on` (`<port isolated='yes'/>`): isolated ports can't talk to each other.
    pub isolated: bool,
}

impl LinuxHost {
    /// Looks up `bridge` and checks it is a Linux bridge; returns its ifindex.
    fn bridge_index(&self, bridge: &str) -> Result<u32> {
        let m = netlink::get_link(&*self.nl, LinkRef::Name(bridge), false)
            .map_err(|e| HostError::netlink(format!("look up bridge '{bridge}'"), e))?
            .ok_or_else(|| HostError::BridgeNotFound {
                bridge: bridge.to_string(),
            })?;
        match link_kind(&m).as_deref() {
            Some("bridge") => Ok(m.header.index),
            other => Err(HostError::NotABridge {
                bridge: bridge.to_string(),
                kind: other.unwrap_or("physical").to_string(),
            }),
        }
    }

    fn port_link(&self, port: &str) -> Result<Option<LinkMessage>> {
        netlink::get_link(&*self.nl, LinkRef::Name(port), false)
            .map_err(|e| HostError::netlink(format!("look up '{port}'"), e))
    }

    pub(crate) fn attach_impl(
        &self,
        port: &str,
        bridge: &str,
        opts: &BridgePortOpts,
    ) -> Result<HostUndo> {
        let br = self.bridge_index(bridge)?;
        let p = self
            .port_link(port)?
            .ok_or_else(|| HostError::LinkNotFound {
                name: port.to_string(),
            })?;
        let undo = HostUndo::DetachFromBridge {
            port: port.to_string(),
            bridge: bridge.to_string(),
        };
        match link_master(&p) {
            Some(m) if m == br => {}
            Some(m) => {
                let master = netlink::get_link(&*self.nl, LinkRef::Index(m), false)
                    .ok()
                    .flatten()
                    .and_then(|l| link_name(&l).map(str::to_string))
                    .unwrap_or_else(|| format!("ifindex {m}"));
                return Err(HostError::AlreadyAttached {
                    port: port.to_string(),
                    master,
                });
            }
            None => {
                netlink::set_link(
                    &*self.nl,
                    p.header.index,
                    vec![LinkAttribute::Controller(br)],
                    None,
                )
                .map_err(|e| {
                    HostError::netlink(format!("attach '{port}' to bridge '{bridge}'"), e)
                })?;
            }
        }
        if opts.isolated {
            let mut msg = LinkMessage::default();
            msg.header.index = p.header.index;
            msg.attributes.push(LinkAttribute::LinkInfo(vec![
                LinkInfo::PortKind(InfoPortKind::Bridge),
                LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::Isolated(
                    true,
                )])),
            ]));
            if let Err(e) = netlink::new_link(&*self.nl, msg, false) {
                let err =
                    HostError::netlink(format!("isolate port '{port}' on bridge '{bridge}'"), e);
                let undo_errs = self.detach_impl(port, bridge).err().into_iter().collect();
                return Err(err.with_undo_errors(undo_errs));
            }
        }
        Ok(undo)
    }

    pub(crate) fn detach_impl(&self, port: &str, bridge: &str) -> Result<()> {
        let Some(p) = self.port_link(port)? else {
            return Ok(());
        };
        let Some(master) = link_master(&p) else {
            return Ok(());
        };
        let on_bridge = netlink::get_link(&*self.nl, LinkRef::Index(master), false)
            .map_err(|e| HostError::netlink(format!("look up the master of '{port}'"), e))?
            .is_some_and(|m| link_name(&m) == Some(bridge));
        if !on_bridge {
            return Ok(());
        }
        match netlink::set_link(
            &*self.nl,
            p.header.index,
            vec![LinkAttribute::Controller(0)],
            None,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            r => r.map_err(|e| {
                HostError::netlink(format!("detach '{port}' from bridge '{bridge}'"), e)
            }),
        }
    }
}
