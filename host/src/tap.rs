//! Taps on `/dev/net/tun`: created (managed) or opened (`managed='no'`).
//!
//! **Lifetime decision.** Managed taps are *not* persistent: the kernel deletes a tap when
//! its last queue fd is closed. We hand the fds to QEMU (fd passing), so the tap lives
//! exactly as long as someone holds it: if virtnet crashes before QEMU has the fds, the
//! kernel closes them and the tap disappears; when QEMU exits (VM stopped or crashed) or
//! closes the netdev (hot-unplug), the tap disappears too. Nothing to clean up after a
//! crash. The handle still carries a [`HostUndo::DeleteLink`] (guarded by ifindex) so a
//! rollback can force the tap away even while QEMU holds it.
//!
//! **Naming.** A caller-given name (`<target dev=.../>`) is used as is and fails cleanly if
//! taken. Otherwise we pick `vnet0`, `vnet1`, ... ourselves (not the kernel's `vnet%d`
//! template) with a counter that only grows, like libvirt: names are predictable and a name
//! freed by one VM is not immediately reused by another. Creation uses `IFF_TUN_EXCL`, so an
//! existing device (someone's persistent tap included) is never silently attached to.

use std::os::fd::OwnedFd;

use netlink_packet_core::Nla;
use netlink_packet_route::link::{InfoData, LinkAttribute, LinkInfo, LinkMessage};

use crate::error::{HostError, Result};
use crate::linux::LinuxHost;
use crate::name::{validate_ifname, NAME_TRIES};
use crate::netlink::{self, link_kind, LinkRef};
use crate::tun::{
    open_tun, TunError, IFF_MULTI_QUEUE, IFF_NO_PI, IFF_TAP, IFF_TUN_EXCL, IFF_VNET_HDR,
};
use crate::undo::HostUndo;
use virtnet_conf::interface::MacAddr;

/// Most queues a tap can have (the kernel's MAX_TAP_QUEUES).
pub const MAX_QUEUES: u16 = 256;

/// What tap to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapSpec {
    /// `<target dev=.../>`; `None` = first free `vnetN`.
    pub name: Option<String>,
    /// The guest's MAC; the tap gets it with the first byte set to 0xFE.
    pub guest_mac: MacAddr,
    /// MTU to set (`<mtu size=.../>`), `None` = kernel default.
    pub mtu: Option<u32>,
    /// Number of queues (fds); > 1 makes a multiqueue tap.
    pub queues: u16,
    /// Open with `IFF_VNET_HDR` (needed for virtio-net offloads / vhost).
    pub vnet_hdr: bool,
}

impl TapSpec {
    /// Defaults: automatic name, kernel MTU, one queue, vnet_hdr on.
    pub fn new(guest_mac: MacAddr) -> Self {
        TapSpec {
            name: None,
            guest_mac,
            mtu: None,
            queues: 1,
            vnet_hdr: true,
        }
    }
}

/// An open tap: its name and one fd per queue.
#[derive(Debug)]
pub struct TapHandle {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
    /// One fd per queue; pass them to QEMU (`-netdev tap,fds=...`).
    pub fds: Vec<OwnedFd>,
    /// Undo steps (remove the tap); empty for `managed='no'` taps, which are not ours.
    pub undo: Vec<HostUndo>,
}

fn check_queues(name: &str, queues: u16) -> Result<()> {
    if queues == 0 || queues > MAX_QUEUES {
        return Err(HostError::InvalidSpec {
            device: name.to_string(),
            reason: format!("{queues} queues requested; a tap has 1 to {MAX_QUEUES}"),
        });
    }
    Ok(())
}

fn tap_flags(queues: u16, vnet_hdr: bool) -> u16 {
    let mut flags = IFF_TAP | IFF_NO_PI;
    if vnet_hdr {
        flags |= IFF_VNET_HDR;
    }
    if queues > 1 {
        flags |= IFF_MULTI_QUEUE;
    }
    flags
}

fn create_error(name: &str, e: TunError) -> HostError {
    match e {
        TunError::Open(source) => HostError::TunUnavailable { source },
        TunError::SetIff(e) if e.raw_os_error() == Some(libc::EBUSY) => HostError::NameInUse {
            name: name.to_string(),
        },
        TunError::SetIff(e) => HostError::device(format!("create tap '{name}' (TUNSETIFF)"), e),
    }
}

impl LinuxHost {
    pub(crate) fn create_tap_impl(&self, spec: &TapSpec) -> Result<TapHandle> {
        let shown = spec.name.as_deref().unwrap_or("vnetN");
        check_queues(shown, spec.queues)?;
        let flags = tap_flags(spec.queues, spec.vnet_hdr);
        let (first, name) = match &spec.name {
            Some(n) => {
                validate_ifname(n)?;
                open_tun(n, flags | IFF_TUN_EXCL).map_err(|e| create_error(n, e))?
            }
            None => self.create_with_free_name(flags)?,
        };
        // From here on, dropping `fds` deletes the tap (it is not persistent).
        let mut fds = vec![first];
        for _ in 1..spec.queues {
            let (fd, _) = open_tun(&name, flags).map_err(|e| match e {
                TunError::Open(source) => HostError::TunUnavailable { source },
                TunError::SetIff(e) => {
                    HostError::device(format!("open another queue of tap '{name}'"), e)
                }
            })?;
            fds.push(fd);
        }
        let ifindex = self.ifindex(&name)?;
        let mut attrs = vec![LinkAttribute::Address(spec.guest_mac.tap_mac().0.to_vec())];
        if let Some(mtu) = spec.mtu {
            attrs.push(LinkAttribute::Mtu(mtu));
        }
        netlink::set_link(&*self.nl, ifindex, attrs, Some(true)).map_err(|e| {
            HostError::netlink(format!("set MAC/MTU of tap '{name}' and bring it up"), e)
        })?;
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

    fn create_with_free_name(&self, flags: u16) -> Result<(OwnedFd, String)> {
        for _ in 0..NAME_TRIES {
            let candidate = self.tap_names.next_name();
            match open_tun(&candidate, flags | IFF_TUN_EXCL) {
                Ok(r) => return Ok(r),
                Err(e) if e.errno() == Some(libc::EBUSY) => continue,
                Err(e) => return Err(create_error(&candidate, e)),
            }
        }
        Err(HostError::NoFreeName {
            prefix: self.tap_names.prefix().to_string(),
            tries: NAME_TRIES,
        })
    }

    pub(crate) fn open_tap_impl(
        &self,
        name: &str,
        queues: u16,
        vnet_hdr: bool,
    ) -> Result<TapHandle> {
        validate_ifname(name)?;
        check_queues(name, queues)?;
        let link = netlink::get_link(&*self.nl, LinkRef::Name(name), false)
            .map_err(|e| HostError::netlink(format!("look up tap '{name}'"), e))?
            .ok_or_else(|| HostError::TapNotFound {
                name: name.to_string(),
            })?;
        let kind = link_kind(&link).unwrap_or_else(|| "physical".to_string());
        let (tun_type, multi_queue) = tun_details(&link);
        if kind != "tun" || tun_type != Some(IFF_TAP as u8) {
            let kind = if kind == "tun" {
                "tun (layer 3, not tap)".to_string()
            } else {
                kind
            };
            return Err(HostError::NotATap {
                name: name.to_string(),
                kind,
            });
        }
        if queues > 1 && !multi_queue {
            return Err(HostError::TapFlagsMismatch {
                name: name.to_string(),
                wanted: format!("{queues} queues"),
                source: std::io::Error::other("it was created without multi_queue"),
            });
        }
        let mut flags = tap_flags(queues, vnet_hdr);
        if multi_queue {
            flags |= IFF_MULTI_QUEUE;
        }
        let mut fds = Vec::with_capacity(queues as usize);
        for _ in 0..queues {
            let (fd, _) = open_tun(name, flags).map_err(|e| match e {
                TunError::Open(source) => HostError::TunUnavailable { source },
                TunError::SetIff(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    HostError::TapBusy {
                        name: name.to_string(),
                    }
                }
                TunError::SetIff(source) if source.raw_os_error() == Some(libc::EINVAL) => {
                    HostError::TapFlagsMismatch {
                        name: name.to_string(),
                        wanted: format!("{queues} queue(s), vnet_hdr={vnet_hdr}"),
                        source,
                    }
                }
                TunError::SetIff(e) => HostError::device(format!("open tap '{name}'"), e),
            })?;
            fds.push(fd);
        }
        Ok(TapHandle {
            name: name.to_string(),
            ifindex: link.header.index,
            fds,
            undo: Vec::new(),
        })
    }
}

/// `IFLA_TUN_TYPE` (1 = tun, 2 = tap) and `IFLA_TUN_MULTI_QUEUE` from a tun link message.
fn tun_details(m: &LinkMessage) -> (Option<u8>, bool) {
    const IFLA_TUN_TYPE: u16 = 3;
    const IFLA_TUN_MULTI_QUEUE: u16 = 7;
    let mut tun_type = None;
    let mut mq = false;
    for a in &m.attributes {
        let LinkAttribute::LinkInfo(infos) = a else {
            continue;
        };
        for i in infos {
            let LinkInfo::Data(InfoData::Tun(nlas)) = i else {
                continue;
            };
            for nla in nlas {
                let mut v = vec![0u8; nla.value_len()];
                nla.emit_value(&mut v);
                match nla.kind() {
                    IFLA_TUN_TYPE => tun_type = v.first().copied(),
                    IFLA_TUN_MULTI_QUEUE => mq = v.first() == Some(&1),
                    _ => {}
                }
            }
        }
    }
    (tun_type, mq)
}
