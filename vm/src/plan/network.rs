//! `<interface type='network'>` on a switch network (a `virtnet-vswitch` the daemon runs):
//! resolved, before planning, into a vhost-user NIC on a socket chosen in the network's
//! socket directory, QEMU the server (`server=on`) and the switch the client. Pure: the caller
//! says which networks exist ([`ResolvedNetwork`]) and adds the switch ports it is told about
//! ([`NetworkPort`]). [`super::nic_plan`] then plans the NIC as any vhost-user NIC (under TCG
//! with `vectors=0`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use virtnet_conf::interface::{InterfaceKind, SocketMode, Spanned, VhostUserSocket};
use virtnet_conf::{Domain, Interface};

pub use virtnet_qemu::validate::port_name;
use virtnet_qemu::validate::{validate_network_source, Operation};

use super::MAX_SOCKET_PATH;
use crate::error::VmError;

/// A running switch network NICs can join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedNetwork {
    /// Where the NICs' vhost-user sockets go (`RUN_DIR/networks/NAME`).
    pub socket_dir: PathBuf,
}

/// A switch port a resolved NIC needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPort {
    /// The network.
    pub network: String,
    /// The port's name on the switch: `VM-MAC` (the MAC without colons).
    pub port: String,
    /// The vhost-user socket (QEMU listens, the switch connects).
    pub socket: PathBuf,
}

/// `iface` of VM `vm`: on a network of `networks` it becomes a vhost-user NIC (QEMU the
/// server) on `SOCKET_DIR/VM-MAC.sock`, with the port it needs; any other interface comes back
/// unchanged with `None`. Refused: a network not in `networks` (unknown or not running), a NIC
/// without MAC, a `portgroup` (virtnet networks have none), a `portid` other than the port
/// virtnet names (`VM-MAC`, as live XML shows it), a socket path longer than a unix socket
/// path can be.
pub fn resolve_network_interface(
    vm: &str,
    iface: &Interface,
    networks: &BTreeMap<String, ResolvedNetwork>,
) -> Result<(Interface, Option<NetworkPort>), VmError> {
    let InterfaceKind::Network { network, .. } = &iface.kind else {
        return Ok((iface.clone(), None));
    };
    let name = network.value.clone();
    // The validation layer's rules (define refuses them too; a definition stored before them
    // is refused here).
    validate_network_source(Operation::Start, vm, iface).map_err(VmError::Refused)?;
    let Some(net) = networks.get(&name) else {
        return Err(VmError::UnsupportedInterface {
            nic: iface.describe(),
            reason: format!(
                "network '{name}' is not a running virtnet-vswitch network: define it with \
                 `virtnet net-define` and start it with `virtnet net-start {name}`"
            ),
        });
    };
    let mac = iface
        .mac()
        .map(|m| m.to_string())
        .ok_or_else(|| VmError::UnsupportedInterface {
            nic: iface.describe(),
            reason: format!(
                "an interface on network '{name}' needs a MAC address (its switch port and \
                 socket are named after it)"
            ),
        })?;
    let port = port_name(vm, &mac);
    let socket = net.socket_dir.join(format!("{port}.sock"));
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(VmError::InvalidContext(format!(
            "the vhost-user socket {} for {} on network '{name}' is longer than \
             {MAX_SOCKET_PATH} bytes, the most a unix socket path can have: use a shorter run \
             dir or VM name",
            socket.display(),
            iface.describe()
        )));
    }
    let mut resolved = iface.clone();
    resolved.kind = InterfaceKind::VhostUser {
        socket: Some(VhostUserSocket {
            path: Spanned::new(socket.display().to_string()),
            mode: SocketMode::Server,
            reconnect: None,
        }),
    };
    Ok((
        resolved,
        Some(NetworkPort {
            network: name,
            port,
            socket,
        }),
    ))
}

/// The inverse of [`resolve_network_interface`], for what users see (`domiflist`, live
/// `dumpxml`, the attach answer): a NIC of VM `vm` resolved onto network `NET` (vhost-user,
/// QEMU the server, on `socket_dir_of(NET)/VM-MAC.sock`) is the `<interface type='network'>`
/// it was defined as again, with the resolved switch port named as libvirt's live XML names
/// the network port: `<source network='NET' portid='VM-MAC'/>` (conf reads it back). Every
/// other part of the NIC (MAC, model, alias, address, ...) is as resolved; `None` for an
/// interface that was not resolved from a network.
pub fn defined_network_interface(
    vm: &str,
    iface: &Interface,
    socket_dir_of: impl Fn(&str) -> PathBuf,
) -> Option<Interface> {
    let InterfaceKind::VhostUser {
        socket:
            Some(VhostUserSocket {
                path,
                mode: SocketMode::Server,
                ..
            }),
    } = &iface.kind
    else {
        return None;
    };
    let path = std::path::Path::new(&path.value);
    let dir = path.parent()?;
    let network = dir.file_name()?.to_str()?;
    let port = port_name(vm, &iface.mac()?.to_string());
    if socket_dir_of(network) != dir || path.file_name()?.to_str()? != format!("{port}.sock") {
        return None;
    }
    let mut defined = iface.clone();
    defined.kind = InterfaceKind::Network {
        network: Spanned::new(network.to_string()),
        portgroup: None,
        portid: Some(port),
        bridge: None,
    };
    Some(defined)
}

/// Every interface of `domain` resolved with [`resolve_network_interface`]; the ports in
/// interface order.
pub fn resolve_networks(
    domain: &Domain,
    networks: &BTreeMap<String, ResolvedNetwork>,
) -> Result<(Domain, Vec<NetworkPort>), VmError> {
    let mut resolved = domain.clone();
    let mut ports = Vec::new();
    for iface in resolved.devices.interfaces.iter_mut() {
        let (r, port) = resolve_network_interface(domain.name(), iface, networks)?;
        if let Some(p) = port {
            *iface = r;
            ports.push(p);
        }
    }
    Ok((resolved, ports))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan_start, PlanContext, PlannedBackend};
    use virtnet_conf::load_domain;
    use virtnet_qemu::QemuCaps;

    fn domain(shared: bool) -> Domain {
        domain_with(shared, "")
    }

    /// `source` adds attributes to the network NIC's `<source>`.
    fn domain_with(shared: bool, source: &str) -> Domain {
        let backing = if shared {
            "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"
        } else {
            ""
        };
        load_domain(&format!(
            "<domain type='qemu'><name>vm1</name><memory unit='MiB'>256</memory>{backing}\
             <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
             <interface type='network'><mac address='52:54:00:00:00:01'/>\
             <source network='sw0'{source}/><model type='virtio'/></interface>\
             <interface type='user'><mac address='52:54:00:00:00:02'/></interface>\
             </devices></domain>"
        ))
        .unwrap()
    }

    fn nets() -> BTreeMap<String, ResolvedNetwork> {
        BTreeMap::from([(
            "sw0".to_string(),
            ResolvedNetwork {
                socket_dir: "/run/virtnet/networks/sw0".into(),
            },
        )])
    }

    #[test]
    fn port_names_fit_the_switch_rules() {
        assert_eq!(port_name("vm1", "52:54:00:00:00:01"), "vm1-525400000001");
        assert_eq!(
            port_name("web 01\tb", "52:54:00:00:00:01"),
            "web_01_b-525400000001"
        );
        let long = "ü".repeat(40);
        let p = port_name(&long, "52:54:00:00:00:01");
        assert!(p.len() <= 64, "{p}");
        assert!(p.ends_with("-525400000001") && p.starts_with("üü"), "{p}");
        // The switch's rule (vhost-net/src/config.rs): 1 to 64 characters, no whitespace.
        for name in [p, port_name(&"x y".repeat(70), "52:54:00:00:00:01")] {
            assert!(
                name.len() <= 64 && !name.contains(char::is_whitespace),
                "{name}"
            );
        }
    }

    #[test]
    fn network_nic_becomes_vhost_user_server_and_plans() {
        let (d, ports) = resolve_networks(&domain(true), &nets()).unwrap();
        assert_eq!(
            ports,
            vec![NetworkPort {
                network: "sw0".into(),
                port: "vm1-525400000001".into(),
                socket: "/run/virtnet/networks/sw0/vm1-525400000001.sock".into(),
            }]
        );
        let caps = QemuCaps {
            version: "7.2.0".parse().unwrap(),
            vhost_net: false,
        };
        let plan = plan_start(&d, &PlanContext::new("/usr/bin/qemu", caps, "/run/x")).unwrap();
        assert_eq!(
            plan.nics[0].backend,
            PlannedBackend::VhostUser {
                socket: "/run/virtnet/networks/sw0/vm1-525400000001.sock".into(),
                mode: "server".into(),
            }
        );
        assert_eq!(plan.nics[1].backend, PlannedBackend::User);
        let argv = plan.argv.join(" ");
        assert!(
            argv.contains("path=/run/virtnet/networks/sw0/vm1-525400000001.sock,server=on"),
            "{argv}"
        );
        assert!(argv.contains("\"vectors\":0"), "TCG: {argv}");
        // QEMU leaves its listening socket behind when killed: the plan removes it.
        assert!(plan
            .sockets_to_remove
            .contains(&"/run/virtnet/networks/sw0/vm1-525400000001.sock".into()));
    }

    #[test]
    fn resolved_nic_is_shown_as_the_network_nic_it_was_defined_as() {
        let original = domain(true);
        let (d, _) = resolve_networks(&original, &nets()).unwrap();
        let dir_of = |n: &str| PathBuf::from("/run/virtnet/networks").join(n);
        let shown = defined_network_interface("vm1", &d.devices.interfaces[0], dir_of).unwrap();
        let mut shown_dom = d.clone();
        shown_dom.devices.interfaces[0] = shown;
        let mut expected = original.clone();
        expected.devices.interfaces[0].kind = InterfaceKind::Network {
            network: Spanned::new("sw0".into()),
            portgroup: None,
            portid: Some("vm1-525400000001".into()),
            bridge: None,
        };
        let xml = shown_dom.to_xml();
        assert_eq!(xml, expected.to_xml());
        assert!(
            xml.contains("<source network='sw0' portid='vm1-525400000001'/>"),
            "{xml}"
        );
        // It round-trips through conf: the live XML defines the same NIC again.
        assert_eq!(Domain::parse(&xml).unwrap().to_xml(), xml);
        // Not resolved from a network: the user NIC, another VM's name, another directory.
        assert!(defined_network_interface("vm1", &d.devices.interfaces[1], dir_of).is_none());
        assert!(defined_network_interface("vm2", &d.devices.interfaces[0], dir_of).is_none());
        let elsewhere = |n: &str| PathBuf::from("/tmp").join(n);
        assert!(defined_network_interface("vm1", &d.devices.interfaces[0], elsewhere).is_none());
    }

    #[test]
    fn unknown_network_and_missing_shared_memory_are_refused() {
        let e = resolve_networks(&domain(true), &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("virtnet net-start sw0"), "{e}");
        // Without shared memory the resolved domain fails conf's validation.
        let (d, _) = resolve_networks(&domain(false), &nets()).unwrap();
        let problems = virtnet_conf::validate(&d);
        assert!(
            problems
                .iter()
                .any(|p| p.to_string().contains("'interface' requires shared memory")),
            "{problems:?}"
        );
    }

    #[test]
    fn socket_path_too_long_is_refused() {
        let long = BTreeMap::from([(
            "sw0".to_string(),
            ResolvedNetwork {
                socket_dir: PathBuf::from("/").join("x".repeat(100)),
            },
        )]);
        let e = resolve_networks(&domain(true), &long).unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
    }

    /// A port group or a foreign port id cannot be honoured: refused, not dropped. The port
    /// id live XML shows (the port's own name) is accepted, so live XML can be defined again.
    #[test]
    fn portgroup_and_foreign_portid_are_refused() {
        let with = |attr: &str| resolve_networks(&domain_with(true, attr), &nets());
        let e = with(" portgroup='gold'").unwrap_err().to_string();
        assert!(
            e.contains("portgroup='gold'") && e.contains("no port groups"),
            "{e}"
        );
        let e = with(" portid='other'").unwrap_err().to_string();
        assert!(
            e.contains("portid='other'") && e.contains("vm1-525400000001"),
            "{e}"
        );
        assert!(with(" portid='vm1-525400000001'").is_ok());
    }
}
