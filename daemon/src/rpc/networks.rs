//! The network procedures: list (all, and the older count/name calls), lookups by name and
//! UUID, define, undefine, create (start), destroy, XML, state, autostart, each the daemon
//! operation the HTTP API's `/v1/networks` calls. Changes are refused on a read-only
//! connection. Errors carry libvirt's codes and, where libvirt has a wording for the same
//! refusal (no such network, starting an active network, stopping an inactive one), its
//! message, so that scripts matching libvirt's messages keep working.
//!
//! Every virtnet network is persistent (defined, then started: there is no transient
//! `net-create`). A `virtnet-vswitch` network is a vhost-user switch, not a Linux bridge:
//! `virNetworkGetBridgeName` is refused for it, as libvirt refuses it for a network without
//! one; for an Open vSwitch network it answers the OVS bridge (`<bridge name>`).

use virtnet_api::networks::NetworkInfo;
use virtnet_rpc::network::{
    ListAllNetworksArgs, ListAllNetworksRet, ListNetworkNamesArgs, ListNetworkNamesRet,
    NetworkArgs, NetworkGetXmlDescArgs, NetworkRet, NetworkSetAutostartArgs, NETWORK_LIST_MAX,
};
use virtnet_rpc::remote::{
    self, DefineXmlArgs, DefineXmlFlagsArgs, IntRet, LookupByNameArgs, LookupByUuidArgs, StringRet,
};
use virtnet_rpc::virerror::NonnullNetwork;
use virtnet_rpc::{ErrorCode, Procedure};

use super::dispatch::{decode, no_args, ok, Reply};
use super::errors::{check_flags, remote_error, Refusal};
use crate::daemon::Daemon;
use crate::error::DaemonError;

/// `VIR_NETWORK_DEFINE_VALIDATE`: virtnet validates every definition anyway.
const DEFINE_VALIDATE: u32 = 1;
/// `VIR_NETWORK_XML_INACTIVE`.
const XML_INACTIVE: u32 = 1;
/// Every `virConnectListAllNetworksFlags` bit (INACTIVE 1, ACTIVE 2, PERSISTENT 4,
/// TRANSIENT 8, AUTOSTART 16, NO_AUTOSTART 32).
const LIST_KNOWN: u32 = 0x3f;

/// Whether `p` is a network procedure served (or refused with a reason) here.
pub(super) fn serves(p: Procedure) -> bool {
    matches!(
        p,
        Procedure::ConnectListAllNetworks
            | Procedure::ConnectNumOfNetworks
            | Procedure::ConnectListNetworks
            | Procedure::ConnectNumOfDefinedNetworks
            | Procedure::ConnectListDefinedNetworks
            | Procedure::NetworkLookupByName
            | Procedure::NetworkLookupByUuid
            | Procedure::NetworkGetXmlDesc
            | Procedure::NetworkIsActive
            | Procedure::NetworkIsPersistent
            | Procedure::NetworkGetAutostart
            | Procedure::NetworkGetBridgeName
    ) || changes(p)
}

/// The procedures that change a network: refused on a read-only connection.
fn changes(p: Procedure) -> bool {
    matches!(
        p,
        Procedure::NetworkDefineXml
            | Procedure::NetworkUndefine
            | Procedure::NetworkCreate
            | Procedure::NetworkCreateXml
            | Procedure::NetworkDestroy
            | Procedure::NetworkSetAutostart
            | Procedure::NetworkDefineXmlFlags
    )
}

/// Runs the network procedure `p` ([`serves`]) with the encoded `args`.
pub(super) async fn call(daemon: &Daemon, read_only: bool, p: Procedure, args: &[u8]) -> Reply {
    let nets = &daemon.networks;
    if read_only && changes(p) {
        return Err(super::errors::read_only(p));
    }
    match p {
        Procedure::ConnectListAllNetworks => {
            let a: ListAllNetworksArgs = decode(p, args)?;
            check_flags(a.flags, LIST_KNOWN, "virConnectListAllNetworks")?;
            let found: Vec<NonnullNetwork> = nets
                .list(true)
                .await
                .iter()
                .filter(|n| listed(a.flags, n))
                .map(nonnull)
                .collect();
            let ret = found.len() as u32;
            ok(&ListAllNetworksRet {
                nets: if a.need_results != 0 {
                    found
                } else {
                    Vec::new()
                },
                ret,
            })
        }
        Procedure::ConnectNumOfNetworks | Procedure::ConnectNumOfDefinedNetworks => {
            no_args(p, args)?;
            let active = p == Procedure::ConnectNumOfNetworks;
            let n = names(daemon, active).await.len();
            ok(&IntRet {
                value: i32::try_from(n).unwrap_or(i32::MAX),
            })
        }
        Procedure::ConnectListNetworks | Procedure::ConnectListDefinedNetworks => {
            let a: ListNetworkNamesArgs = decode(p, args)?;
            let max = u32::try_from(a.maxnames)
                .ok()
                .filter(|m| *m <= NETWORK_LIST_MAX)
                .ok_or_else(|| {
                    Refusal::new(
                        ErrorCode::Rpc,
                        format!(
                            "maxnames {} is not within 0..={NETWORK_LIST_MAX}",
                            a.maxnames
                        ),
                    )
                    .by_protocol()
                })?;
            let mut names = names(daemon, p == Procedure::ConnectListNetworks).await;
            names.truncate(max as usize);
            ok(&ListNetworkNamesRet { names })
        }
        Procedure::NetworkLookupByName => {
            let a: LookupByNameArgs = decode(p, args)?;
            ok(&NetworkRet {
                net: nonnull(&info(daemon, &a.name).await?),
            })
        }
        Procedure::NetworkLookupByUuid => {
            let a: LookupByUuidArgs = decode(p, args)?;
            let all = nets.list(true).await;
            let n = all
                .iter()
                .find(|n| remote::uuid_bytes(&n.uuid) == Some(a.uuid))
                .ok_or_else(|| {
                    no_network(format!(
                        "no network with matching uuid '{}'",
                        virtnet_conf::domain::Uuid(a.uuid)
                    ))
                })?;
            ok(&NetworkRet { net: nonnull(n) })
        }
        Procedure::NetworkGetXmlDesc => {
            let a: NetworkGetXmlDescArgs = decode(p, args)?;
            check_flags(a.flags, XML_INACTIVE, "virNetworkGetXMLDesc")?;
            let xml = nets
                .xml_desc(&a.net.name, a.flags & XML_INACTIVE != 0)
                .await
                .map_err(|e| refusal(&e))?;
            ok(&StringRet { value: xml })
        }
        Procedure::NetworkIsActive => {
            let a: NetworkArgs = decode(p, args)?;
            let n = info(daemon, &a.net.name).await?;
            ok(&IntRet {
                value: i32::from(n.state == "active"),
            })
        }
        Procedure::NetworkIsPersistent => {
            // Every virtnet network is defined before it runs.
            let a: NetworkArgs = decode(p, args)?;
            info(daemon, &a.net.name).await?;
            ok(&IntRet { value: 1 })
        }
        Procedure::NetworkGetAutostart => {
            let a: NetworkArgs = decode(p, args)?;
            let n = info(daemon, &a.net.name).await?;
            ok(&IntRet {
                value: i32::from(n.autostart),
            })
        }
        Procedure::NetworkGetBridgeName => {
            let a: NetworkArgs = decode(p, args)?;
            let n = info(daemon, &a.net.name).await?;
            // An Open vSwitch network's bridge, as libvirt answers for it.
            if let Some(bridge) = n.bridge {
                return ok(&StringRet { value: bridge });
            }
            Err(Refusal::new(
                ErrorCode::OperationUnsupported,
                format!(
                    "Operation not supported: network '{}' does not have a bridge name: it is \
                     a virtnet-vswitch (a vhost-user switch, no Linux bridge); guests join it \
                     with <interface type='network'><source network='{}'/></interface>",
                    n.name, n.name
                ),
            ))
        }
        Procedure::NetworkDefineXml => {
            let a: DefineXmlArgs = decode(p, args)?;
            define(daemon, &a.xml).await
        }
        Procedure::NetworkDefineXmlFlags => {
            let a: DefineXmlFlagsArgs = decode(p, args)?;
            check_flags(a.flags, DEFINE_VALIDATE, "virNetworkDefineXMLFlags")?;
            define(daemon, &a.xml).await
        }
        Procedure::NetworkCreateXml => {
            let _: DefineXmlArgs = decode(p, args)?;
            Err(Refusal::new(
                ErrorCode::OperationUnsupported,
                "Operation not supported: virtnet has no transient networks: define the \
                 network (virsh net-define FILE) and start it (virsh net-start NAME)",
            ))
        }
        Procedure::NetworkUndefine => {
            let a: NetworkArgs = decode(p, args)?;
            nets.undefine(&a.net.name).await.map_err(|e| refusal(&e))?;
            Ok(Vec::new())
        }
        Procedure::NetworkCreate => {
            let a: NetworkArgs = decode(p, args)?;
            nets.start(&a.net.name).await.map_err(|e| match &e {
                DaemonError::NetworkState { state, .. } if state == "active" => {
                    invalid("network is already active".into())
                }
                e => refusal(e),
            })?;
            Ok(Vec::new())
        }
        Procedure::NetworkDestroy => {
            let a: NetworkArgs = decode(p, args)?;
            nets.destroy(&a.net.name).await.map_err(|e| match &e {
                DaemonError::NetworkState { name, state, .. } if state == "inactive" => {
                    invalid(format!("network '{name}' is not active"))
                }
                e => refusal(e),
            })?;
            Ok(Vec::new())
        }
        Procedure::NetworkSetAutostart => {
            let a: NetworkSetAutostartArgs = decode(p, args)?;
            nets.set_autostart(&a.net.name, a.autostart != 0)
                .await
                .map_err(|e| refusal(&e))?;
            Ok(Vec::new())
        }
        p => Err(super::errors::not_supported(p)),
    }
}

async fn define(daemon: &Daemon, xml: &str) -> Reply {
    let r = daemon.networks.define(xml).await.map_err(|e| match e {
        // The daemon's wording names domain XML; this is a network's.
        DaemonError::InvalidXml { problems } => Refusal::new(
            ErrorCode::XmlError,
            format!("XML error: invalid network XML: {}", problems.join("; ")),
        ),
        e => refusal(&e),
    })?;
    ok(&NetworkRet {
        net: nonnull(&info(daemon, &r.name).await?),
    })
}

/// The names of the active (`active`) or inactive networks, sorted.
async fn names(daemon: &Daemon, active: bool) -> Vec<String> {
    daemon
        .networks
        .list(true)
        .await
        .into_iter()
        .filter(|n| (n.state == "active") == active)
        .map(|n| n.name)
        .collect()
}

async fn info(daemon: &Daemon, name: &str) -> Result<NetworkInfo, Refusal> {
    daemon.networks.info(name).await.map_err(|e| refusal(&e))
}

/// Whether network `n` passes `virConnectListAllNetworks`'s `flags`: within a group
/// (active/inactive, persistent/transient, autostart/no autostart) any set bit matches,
/// groups combine with AND, an empty group matches everything.
pub(super) fn listed(flags: u32, n: &NetworkInfo) -> bool {
    let group = |mask, bits: &[(u32, bool)]| super::dispatch::group(flags, mask, bits);
    let active = n.state == "active";
    group(0x3, &[(0x1, !active), (0x2, active)])
        // Every virtnet network is persistent: only PERSISTENT matches in its group.
        && group(0xc, &[(0x4, true)])
        && group(0x30, &[(0x10, n.autostart), (0x20, !n.autostart)])
}

/// `remote_nonnull_network` for `n`.
pub(super) fn nonnull(n: &NetworkInfo) -> NonnullNetwork {
    NonnullNetwork {
        name: n.name.clone(),
        uuid: remote::uuid_bytes(&n.uuid).unwrap_or_default(),
    }
}

/// The libvirt error for a network operation's failure: libvirt's wording for a missing
/// network; otherwise virtnet's message after libvirt's prefix for the code.
pub(super) fn refusal(e: &DaemonError) -> Refusal {
    match e {
        DaemonError::NoSuchNetwork { name } => {
            no_network(format!("no network with matching name '{name}'"))
        }
        e => {
            let r = remote_error(e);
            let prefix = match r.code {
                ErrorCode::OperationInvalid => "Requested operation is not valid: ",
                ErrorCode::OperationFailed => "operation failed: ",
                ErrorCode::InternalError => "internal error: ",
                ErrorCode::InvalidArg => "invalid argument: ",
                ErrorCode::OperationDenied => "operation forbidden: ",
                _ => "",
            };
            Refusal::new(r.code, format!("{prefix}{}", r.message))
        }
    }
}

fn no_network(what: String) -> Refusal {
    Refusal::new(ErrorCode::NoNetwork, format!("Network not found: {what}"))
}

fn invalid(what: String) -> Refusal {
    Refusal::new(
        ErrorCode::OperationInvalid,
        format!("Requested operation is not valid: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(active: bool, autostart: bool) -> NetworkInfo {
        NetworkInfo {
            name: "n".into(),
            uuid: "3e3fce45-4f53-4fa7-bb32-11f34168b82b".into(),
            state: if active { "active" } else { "inactive" }.into(),
            uplink: None,
            autostart,
            pid: None,
            control: None,
            restarts: 0,
            ports: vec![],
            bridge: None,
        }
    }

    #[test]
    fn list_all_networks_filters_as_libvirt() {
        let all = [net(true, true), net(true, false), net(false, true)];
        let which =
            |flags| -> Vec<usize> { (0..all.len()).filter(|&i| listed(flags, &all[i])).collect() };
        assert_eq!(which(0), [0, 1, 2]);
        assert_eq!(which(1), [2], "INACTIVE");
        assert_eq!(which(2), [0, 1], "ACTIVE");
        assert_eq!(which(3), [0, 1, 2], "either");
        assert_eq!(which(4), [0, 1, 2], "PERSISTENT: all are");
        assert_eq!(which(8), Vec::<usize>::new(), "TRANSIENT: none is");
        assert_eq!(which(16), [0, 2], "AUTOSTART");
        assert_eq!(which(32), [1], "NO_AUTOSTART");
        assert_eq!(which(2 | 16), [0], "groups combine with AND");
    }

    #[test]
    fn nonnull_carries_the_uuid_bytes() {
        let n = nonnull(&net(false, false));
        assert_eq!(n.name, "n");
        assert_eq!(&n.uuid[..4], &[0x3e, 0x3f, 0xce, 0x45]);
    }

    #[test]
    fn refusals_have_libvirts_codes_and_wording() {
        let r = refusal(&DaemonError::NoSuchNetwork { name: "x".into() });
        assert_eq!(r.code, ErrorCode::NoNetwork);
        assert_eq!(
            r.message,
            "Network not found: no network with matching name 'x'"
        );
        let r = refusal(&DaemonError::NetworkState {
            name: "x".into(),
            state: "in use by VM(s) vm1".into(),
            hint: "stop those VMs".into(),
        });
        assert_eq!(r.code, ErrorCode::OperationInvalid);
        assert!(
            r.message
                .starts_with("Requested operation is not valid: network 'x' is in use"),
            "{}",
            r.message
        );
        let r = refusal(&DaemonError::Conflict(
            "network 'y' already has UUID u".into(),
        ));
        assert_eq!(r.code, ErrorCode::OperationInvalid);
    }

    #[test]
    fn changes_are_the_writing_procedures() {
        for p in [
            Procedure::NetworkDefineXml,
            Procedure::NetworkUndefine,
            Procedure::NetworkCreate,
            Procedure::NetworkDestroy,
            Procedure::NetworkSetAutostart,
            Procedure::NetworkDefineXmlFlags,
        ] {
            assert!(changes(p) && serves(p), "{p}");
        }
        for p in [
            Procedure::ConnectListAllNetworks,
            Procedure::NetworkLookupByUuid,
            Procedure::NetworkGetXmlDesc,
        ] {
            assert!(!changes(p) && serves(p), "{p}");
        }
        assert!(!serves(Procedure::NetworkUpdate));
    }
}
