//! `-netdev` / QMP `netdev_add`: the host side of a NIC, as libvirt writes it
//! (`qemuBuildHostNetProps`): same keys, same order.

use std::net::IpAddr;

use serde_json::Value;
use virtnet_conf::interface::{InterfaceKind, SocketAddr};

use super::backend::{is_tap_type, FdRef, NicBackend};
use super::caps::QemuCaps;
use super::ids::NicSpec;
use super::opts::{id_is_safe, Props};
use crate::error::QemuError;

/// The `-netdev` JSON (also the arguments of QMP `netdev_add`) of one interface.
///
/// Errors: the back end does not fit the type ([`QemuError::BackendMismatch`]); a type or
/// setting virtnet does not build: `hostdev` ([`QemuError::UnsupportedInterface`]: it has no
/// netdev, only a vfio-pci device), what validation refuses ([`QemuError::Refused`]).
pub fn netdev_json(
    spec: &NicSpec<'_>,
    backend: &NicBackend,
    caps: &QemuCaps,
) -> Result<Value, QemuError> {
    let iface = spec.iface;
    check_supported(spec, caps)?;
    let mismatch = |expected: &str| QemuError::BackendMismatch {
        interface: spec.describe(),
        message: format!(
            "got a {} back end, expected {expected}",
            backend.kind_name()
        ),
    };
    let mut p = Props::new();
    match (&iface.kind, backend) {
        (k, NicBackend::Tap { fds, vhost_fds }) if is_tap_type(k.type_()) => {
            tap_props(spec, fds, vhost_fds, caps, &mut p)?;
        }
        (k, _) if is_tap_type(k.type_()) => return Err(mismatch("Tap")),
        (InterfaceKind::VhostUser { .. }, NicBackend::VhostUser) => {
            p.put("type", "vhost-user")
                .put("chardev", spec.ids.chardev.as_str());
            p.put_opt("queues", iface.queues());
        }
        (InterfaceKind::VhostUser { .. }, _) => return Err(mismatch("VhostUser")),
        (InterfaceKind::User, NicBackend::User) => {
            p.put("type", "user");
            for ip in &iface.guest_ip.ips {
                match ip.address.value {
                    IpAddr::V4(a) => {
                        let net = match ip.prefix {
                            Some(n) if n > 0 => format!("{a}/{n}"),
                            _ => a.to_string(),
                        };
                        p.put("net", net);
                    }
                    IpAddr::V6(a) => {
                        p.put("ipv6-prefix", a.to_string());
                        p.put_opt("ipv6-prefixlen", ip.prefix.filter(|n| *n > 0));
                    }
                }
            }
        }
        (InterfaceKind::User, _) => return Err(mismatch("User")),
        (InterfaceKind::Server(a), NicBackend::Socket) => {
            p.put("type", "socket").put("listen", socket_addr(a));
        }
        (InterfaceKind::Client(a), NicBackend::Socket) => {
            p.put("type", "socket").put("connect", socket_addr(a));
        }
        (InterfaceKind::Mcast(a), NicBackend::Socket) => {
            p.put("type", "socket").put("mcast", socket_addr(a));
        }
        (InterfaceKind::Udp { remote, local, .. }, NicBackend::Socket) => {
            p.put("type", "socket")
                .put("udp", socket_addr(remote))
                .put("localaddr", socket_addr(local));
        }
        (
            InterfaceKind::Server(_)
            | InterfaceKind::Client(_)
            | InterfaceKind::Mcast(_)
            | InterfaceKind::Udp { .. },
            _,
        ) => return Err(mismatch("Socket")),
        (InterfaceKind::Vdpa { .. }, NicBackend::Vdpa { fdset_id, .. }) => {
            p.put("type", "vhost-vdpa")
                .put("vhostdev", format!("/dev/fdset/{fdset_id}"));
            p.put_opt("queues", iface.queues());
        }
        (InterfaceKind::Vdpa { .. }, _) => return Err(mismatch("Vdpa")),
        (InterfaceKind::Hostdev { .. }, _) => {
            return Err(QemuError::UnsupportedInterface {
                interface: spec.describe(),
                message: "a hostdev interface has no -netdev: the VF is a vfio-pci device of \
                          its own (use nic_device_json)"
                    .into(),
            })
        }
        // Tap types are all handled by the guards above.
        (InterfaceKind::Bridge { .. }, _)
        | (InterfaceKind::Network { .. }, _)
        | (InterfaceKind::Ethernet, _)
        | (InterfaceKind::Direct { .. }, _) => unreachable!("tap types are matched above"),
    }
    if !id_is_safe(&spec.ids.netdev) {
        return Err(QemuError::UnsupportedInterface {
            interface: spec.describe(),
            message: format!(
                "the id '{}' cannot be used by QEMU: use an alias of letters, digits and '-'",
                spec.ids.netdev
            ),
        });
    }
    p.put("id", spec.ids.netdev.as_str());
    Ok(p.into_value())
}

/// Refuses what the builder cannot express, whatever the back end: the validation layer's
/// argv rules ([`crate::validate::Rule::argv_guard`]), for callers that did not validate.
pub(crate) fn check_supported(spec: &NicSpec<'_>, caps: &QemuCaps) -> Result<(), QemuError> {
    crate::validate::argv_guard(spec.iface, caps)
}

fn tap_props(
    spec: &NicSpec<'_>,
    fds: &[FdRef],
    vhost_fds: &[FdRef],
    caps: &QemuCaps,
    p: &mut Props,
) -> Result<(), QemuError> {
    let bad = |message: String| QemuError::BackendMismatch {
        interface: spec.describe(),
        message,
    };
    let queues = spec.iface.queues().unwrap_or(1).max(1) as usize;
    if fds.len() != queues {
        return Err(bad(format!(
            "{} tap fd(s) given, the interface has {queues} queue(s): open one tap fd per queue",
            fds.len()
        )));
    }
    if !vhost_fds.is_empty() && vhost_fds.len() != fds.len() {
        return Err(bad(format!(
            "{} vhost-net fd(s) for {} tap fd(s): give one per tap fd, or none",
            vhost_fds.len(),
            fds.len()
        )));
    }
    if !vhost_fds.is_empty() && !caps.vhost_net {
        return Err(bad(
            "vhost-net fds given although the capabilities say vhost-net is not usable".into(),
        ));
    }
    let join = |v: &[FdRef]| v.iter().map(FdRef::to_string).collect::<Vec<_>>().join(":");
    p.put("type", "tap");
    if fds.len() == 1 {
        p.put("fd", fds[0].to_string());
    } else {
        p.put("fds", join(fds));
    }
    if !vhost_fds.is_empty() {
        p.put("vhost", true);
        if vhost_fds.len() == 1 {
            p.put("vhostfd", vhost_fds[0].to_string());
        } else {
            p.put("vhostfds", join(vhost_fds));
        }
    }
    p.put_opt("sndbuf", spec.iface.tune.as_ref().and_then(|t| t.sndbuf));
    Ok(())
}

/// `ADDRESS:PORT` (the address may be empty: all addresses).
fn socket_addr(a: &SocketAddr) -> String {
    let host = a.address.as_ref().map_or("", |h| h.value.as_str());
    format!("{host}:{}", a.port.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argv::opts::json_arg;
    use virtnet_conf::xml::{parse_document, Limits};
    use virtnet_conf::Interface;

    fn iface(xml: &str) -> Interface {
        let mut i =
            Interface::from_element(parse_document(xml, Limits::default()).unwrap()).unwrap();
        i.fill_defaults();
        i
    }

    fn netdev(xml: &str, backend: NicBackend) -> Result<String, QemuError> {
        let list = vec![iface(xml)];
        let spec = NicSpec::new(&list, 0).unwrap();
        netdev_json(&spec, &backend, &QemuCaps::latest()).map(|v| json_arg(&v))
    }

    fn fds(names: &[i32]) -> Vec<FdRef> {
        names.iter().map(|n| FdRef::Fd(*n)).collect()
    }

    #[test]
    fn tap_single_and_multiqueue() {
        let tap = NicBackend::Tap {
            fds: fds(&[30]),
            vhost_fds: fds(&[31]),
        };
        assert_eq!(
            netdev(
                "<interface type='bridge'><source bridge='br0'/><model type='virtio'/>\
                    <tune><sndbuf>1600</sndbuf></tune></interface>",
                tap
            )
            .unwrap(),
            r#"{"type":"tap","fd":"30","vhost":true,"vhostfd":"31","sndbuf":1600,"id":"hostnet0"}"#
        );
        let mq = NicBackend::Tap {
            fds: fds(&[30, 32]),
            vhost_fds: fds(&[31, 33]),
        };
        let xml =
            "<interface type='ethernet'><model type='virtio'/><driver queues='2'/></interface>";
        assert_eq!(
            netdev(xml, mq).unwrap(),
            r#"{"type":"tap","fds":"30:32","vhost":true,"vhostfds":"31:33","id":"hostnet0"}"#
        );
        let named = NicBackend::Tap {
            fds: vec![FdRef::Name("tapfd-net0".into())],
            vhost_fds: vec![],
        };
        assert_eq!(
            netdev("<interface type='ethernet'/>", named).unwrap(),
            r#"{"type":"tap","fd":"tapfd-net0","id":"hostnet0"}"#
        );
        let short = NicBackend::Tap {
            fds: fds(&[30]),
            vhost_fds: vec![],
        };
        let e = netdev(xml, short).unwrap_err();
        assert!(matches!(e, QemuError::BackendMismatch { .. }), "{e}");
    }

    #[test]
    fn vhost_user_user_socket_vdpa() {
        assert_eq!(
            netdev(
                "<interface type='vhostuser'><source type='unix' path='/s' mode='client'/>\
                 <driver queues='4'/></interface>",
                NicBackend::VhostUser
            )
            .unwrap(),
            r#"{"type":"vhost-user","chardev":"charnet0","queues":4,"id":"hostnet0"}"#
        );
        assert_eq!(
            netdev(
                "<interface type='user'><ip address='172.17.2.0' family='ipv4' prefix='24'/>\
                 <ip address='2001:db8:ac10:fd01::' family='ipv6' prefix='64'/></interface>",
                NicBackend::User
            )
            .unwrap(),
            r#"{"type":"user","net":"172.17.2.0/24","ipv6-prefix":"2001:db8:ac10:fd01::","ipv6-prefixlen":64,"id":"hostnet0"}"#
        );
        assert_eq!(
            netdev(
                "<interface type='server'><source port='2015'/></interface>",
                NicBackend::Socket
            )
            .unwrap(),
            r#"{"type":"socket","listen":":2015","id":"hostnet0"}"#
        );
        assert_eq!(
            netdev(
                "<interface type='udp'><source address='192.168.10.1' port='5555'><local \
                 address='192.168.10.1' port='5556'/></source></interface>",
                NicBackend::Socket
            )
            .unwrap(),
            r#"{"type":"socket","udp":"192.168.10.1:5555","localaddr":"192.168.10.1:5556","id":"hostnet0"}"#
        );
        assert_eq!(
            netdev(
                "<interface type='vdpa'><source dev='/dev/vhost-vdpa-0'/><driver queues='2'/>\
                 </interface>",
                NicBackend::Vdpa {
                    fdset_id: 3,
                    fd: None
                }
            )
            .unwrap(),
            r#"{"type":"vhost-vdpa","vhostdev":"/dev/fdset/3","queues":2,"id":"hostnet0"}"#
        );
    }

    #[test]
    fn refusals() {
        // Scripts: run by virtnet around the tap for type='ethernet' (the netdev stays
        // fd-based), refused on other types as libvirt's QEMU driver does.
        let tap = || NicBackend::Tap {
            fds: fds(&[3]),
            vhost_fds: vec![],
        };
        assert_eq!(
            netdev(
                "<interface type='ethernet'><script path='/etc/qemu-ifup'/>\
                 <downscript path='/etc/qemu-ifdown'/></interface>",
                tap()
            )
            .unwrap(),
            r#"{"type":"tap","fd":"3","id":"hostnet0"}"#
        );
        let e = netdev(
            "<interface type='bridge'><source bridge='br0'/><script path='/etc/qemu-ifup'/>\
             </interface>",
            tap(),
        )
        .unwrap_err();
        assert!(matches!(e, QemuError::Refused(_)), "{e:?}");
        assert!(e.to_string().contains("type 'bridge'"), "{e}");
        let e = netdev(
            "<interface type='user'><backend type='passt'/></interface>",
            NicBackend::User,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not supported yet"), "{e}");
        // Validation refuses this (conf refuses <backend tap>); the builder does not rely on it.
        let e = netdev(
            "<interface type='vhostuser'><source type='unix' path='/s' mode='client'/>\
             <backend vhost='/dev/vhost-net'/></interface>",
            NicBackend::VhostUser,
        )
        .unwrap_err();
        assert!(e.to_string().contains("has no tap"), "{e}");
        let e = netdev("<interface type='user'/>", NicBackend::Socket).unwrap_err();
        assert!(e.to_string().contains("expected User"), "{e}");
        let e = netdev(
            "<interface type='hostdev'><source><address type='pci' bus='3' slot='7'/></source>\
             </interface>",
            NicBackend::Vfio,
        )
        .unwrap_err();
        assert!(e.to_string().contains("vfio-pci"), "{e}");
    }
}
