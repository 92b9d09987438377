//! Host resources the caller resolved for each interface before the command line is built.
//!
//! QEMU never opens a tap by name nor runs a script: virtnet creates taps (and macvtaps) itself
//! and hands QEMU their file descriptors, inherited at start or passed with `getfd` for
//! hot-plug.

use std::fmt;

use virtnet_conf::interface::InterfaceType;
use virtnet_conf::Interface;

use super::caps::QemuCaps;
use super::ids::NicSpec;
use crate::error::QemuError;

/// A file descriptor as QEMU is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdRef {
    /// An fd number QEMU inherits at start (the caller maps it into the child).
    Fd(i32),
    /// A name given to an fd with QMP `getfd` (hot-plug), or a placeholder for display.
    Name(String),
}

impl fmt::Display for FdRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdRef::Fd(n) => write!(f, "{n}"),
            FdRef::Name(s) => f.write_str(s),
        }
    }
}

/// What the caller set up on the host for one interface; one per entry of
/// `domain.devices.interfaces`, same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicBackend {
    /// `bridge`, `network`, `ethernet` (managed or not) and `direct` (macvtap): one tap fd per
    /// queue, and as many vhost-net fds when vhost-net is used (none otherwise). See
    /// [`tap_fds_needed`].
    Tap {
        /// Tap (or macvtap) fds, one per queue pair.
        fds: Vec<FdRef>,
        /// vhost-net fds, same count as `fds`, or empty.
        vhost_fds: Vec<FdRef>,
    },
    /// `vhostuser`: the socket path and mode come from the definition.
    VhostUser,
    /// `hostdev`: the VF is bound to vfio-pci.
    Vfio,
    /// `user`: SLIRP inside QEMU.
    User,
    /// `server`, `client`, `mcast`, `udp`: QEMU opens the socket itself.
    Socket,
    /// `vdpa`: the vhost-vdpa device fd lives in QEMU fd set `fdset_id` (`/dev/fdset/N`). At
    /// start, `fd` is the inherited fd the command line adds to that set with `-add-fd`; for
    /// hot-plug the caller uses QMP `add-fd` and leaves `fd` empty.
    Vdpa {
        /// The fd set id.
        fdset_id: u32,
        /// The inherited fd to add to the set on the command line, if any.
        fd: Option<FdRef>,
    },
}

impl NicBackend {
    /// A short name for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            NicBackend::Tap { .. } => "Tap",
            NicBackend::VhostUser => "VhostUser",
            NicBackend::Vfio => "Vfio",
            NicBackend::User => "User",
            NicBackend::Socket => "Socket",
            NicBackend::Vdpa { .. } => "Vdpa",
        }
    }

    /// Placeholder back ends for showing a command line without touching the host
    /// (`virtnet domxml-to-native`): fds are written `@tap-fd:net0:0@`, `@vhost-fd:net0:0@`
    /// and `@vdpa-fd:net0@`; vDPA fd sets are numbered from 0.
    pub fn placeholders(
        interfaces: &[Interface],
        caps: &QemuCaps,
    ) -> Result<Vec<NicBackend>, QemuError> {
        let mut fdset = 0;
        let mut out = Vec::with_capacity(interfaces.len());
        for index in 0..interfaces.len() {
            let spec = NicSpec::new(interfaces, index).expect("index in range");
            let id = &spec.ids.device;
            let b = match spec.iface.type_() {
                InterfaceType::Bridge
                | InterfaceType::Network
                | InterfaceType::Ethernet
                | InterfaceType::Direct => {
                    let need = tap_fds_needed(&spec, caps)?.unwrap_or_default();
                    let name = |kind: &str, q: usize| FdRef::Name(format!("@{kind}-fd:{id}:{q}@"));
                    NicBackend::Tap {
                        fds: (0..need.taps).map(|q| name("tap", q)).collect(),
                        vhost_fds: (0..need.vhost).map(|q| name("vhost", q)).collect(),
                    }
                }
                InterfaceType::VhostUser => NicBackend::VhostUser,
                InterfaceType::Hostdev => NicBackend::Vfio,
                InterfaceType::User => NicBackend::User,
                InterfaceType::Server
                | InterfaceType::Client
                | InterfaceType::Mcast
                | InterfaceType::Udp => NicBackend::Socket,
                InterfaceType::Vdpa => {
                    fdset += 1;
                    NicBackend::Vdpa {
                        fdset_id: fdset - 1,
                        fd: Some(FdRef::Name(format!("@vdpa-fd:{id}@"))),
                    }
                }
            };
            out.push(b);
        }
        Ok(out)
    }
}

/// How many fds a tap-based interface needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TapFds {
    /// Tap (or macvtap) fds: one per queue pair.
    pub taps: usize,
    /// vhost-net fds: as many as taps when vhost-net is used, else 0.
    pub vhost: usize,
}

/// For a tap-based interface (`bridge`, `network`, `ethernet`, `direct`), how many tap and
/// vhost-net fds the caller must open; `None` for other types.
///
/// vhost-net is used, as libvirt does, for virtio models unless `<driver name='qemu'/>`, and
/// only when `caps.vhost_net`; an explicit `<driver name='vhost'/>` without a usable
/// `/dev/vhost-net` is an error.
pub fn tap_fds_needed(spec: &NicSpec<'_>, caps: &QemuCaps) -> Result<Option<TapFds>, QemuError> {
    let iface = spec.iface;
    if !is_tap_type(iface.type_()) {
        return Ok(None);
    }
    let taps = iface.queues().unwrap_or(1).max(1) as usize;
    let driver_name = iface
        .driver
        .as_ref()
        .and_then(|d| d.name.as_ref())
        .map(|n| n.value.as_str());
    let wants_vhost = iface.is_virtio() && driver_name != Some("qemu");
    crate::validate::argv_guard(iface, caps)?;
    let vhost = if wants_vhost && caps.vhost_net {
        taps
    } else {
        0
    };
    Ok(Some(TapFds { taps, vhost }))
}

/// Whether QEMU gets tap fds for this type.
pub(crate) fn is_tap_type(t: InterfaceType) -> bool {
    matches!(
        t,
        InterfaceType::Bridge
            | InterfaceType::Network
            | InterfaceType::Ethernet
            | InterfaceType::Direct
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_conf::xml::{parse_document, Limits};

    fn iface(xml: &str) -> Interface {
        let mut i =
            Interface::from_element(parse_document(xml, Limits::default()).unwrap()).unwrap();
        i.fill_defaults();
        i
    }

    #[test]
    fn fd_counts_follow_queues_model_and_vhost() {
        let list = vec![
            iface(
                "<interface type='bridge'><source bridge='br0'/><model type='virtio'/>\
                 <driver queues='4'/></interface>",
            ),
            iface(
                "<interface type='ethernet'><model type='e1000'/><driver queues='4'/></interface>",
            ),
            iface(
                "<interface type='network'><source network='n'/><model type='virtio'/>\
                 <driver name='qemu'/></interface>",
            ),
            iface("<interface type='user'/>"),
            iface(
                "<interface type='direct'><source dev='eth0' mode='bridge'/><model \
                 type='virtio'/><driver name='vhost'/></interface>",
            ),
        ];
        let caps = QemuCaps::latest();
        let need =
            |i: usize, caps: &QemuCaps| tap_fds_needed(&NicSpec::new(&list, i).unwrap(), caps);
        assert_eq!(need(0, &caps).unwrap(), Some(TapFds { taps: 4, vhost: 4 }));
        assert_eq!(need(1, &caps).unwrap(), Some(TapFds { taps: 1, vhost: 0 }));
        assert_eq!(need(2, &caps).unwrap(), Some(TapFds { taps: 1, vhost: 0 }));
        assert_eq!(need(3, &caps).unwrap(), None);
        assert_eq!(need(4, &caps).unwrap(), Some(TapFds { taps: 1, vhost: 1 }));
        let no_vhost = QemuCaps {
            vhost_net: false,
            ..caps
        };
        assert_eq!(
            need(0, &no_vhost).unwrap(),
            Some(TapFds { taps: 4, vhost: 0 })
        );
        let e = need(4, &no_vhost).unwrap_err().to_string();
        assert!(e.contains("vhost_net") && e.contains("name='vhost'"), "{e}");
    }

    #[test]
    fn placeholders_name_every_fd() {
        let list = vec![
            iface(
                "<interface type='bridge'><source bridge='br0'/><model type='virtio'/>\
                 <driver queues='2'/></interface>",
            ),
            iface("<interface type='vdpa'><source dev='/dev/vhost-vdpa-0'/></interface>"),
            iface("<interface type='vdpa'><source dev='/dev/vhost-vdpa-1'/></interface>"),
        ];
        let b = NicBackend::placeholders(&list, &QemuCaps::latest()).unwrap();
        assert_eq!(
            b[0],
            NicBackend::Tap {
                fds: vec![
                    FdRef::Name("@tap-fd:net0:0@".into()),
                    FdRef::Name("@tap-fd:net0:1@".into())
                ],
                vhost_fds: vec![
                    FdRef::Name("@vhost-fd:net0:0@".into()),
                    FdRef::Name("@vhost-fd:net0:1@".into())
                ],
            }
        );
        assert_eq!(
            b[2],
            NicBackend::Vdpa {
                fdset_id: 1,
                fd: Some(FdRef::Name("@vdpa-fd:net2@".into()))
            }
        );
        assert_eq!(FdRef::Fd(23).to_string(), "23");
    }
}
