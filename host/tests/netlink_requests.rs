//! The exact rtnetlink requests LinuxHost sends, checked with a recorder. No root needed.

use std::io;
use std::sync::Arc;

use netlink_packet_route::link::{
    InfoBridgePort, InfoKind, InfoPortData, InfoPortKind, LinkAttribute, LinkInfo, LinkMessage,
};
use virtnet_host::netlink::{RecordingNetlink, RouteNetlinkMessage, NLM_F_ACK};
use virtnet_host::{BridgePortOpts, HostError, HostNet, LinuxHost, Sysfs};

/// (name, ifindex, kind, master)
const LINKS: &[(&str, u32, Option<&str>, u32)] = &[
    ("br0", 5, Some("bridge"), 0),
    ("vnet0", 9, Some("tun"), 0),
    ("vnet1", 10, Some("tun"), 5),
    ("eth1", 3, None, 0),
];

fn answer(m: &LinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
    let found = LINKS.iter().find(|(name, idx, _, _)| {
        m.header.index == *idx
            || m.attributes
                .contains(&LinkAttribute::IfName(name.to_string()))
    });
    let Some((name, idx, kind, master)) = found else {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    };
    let mut r = LinkMessage::default();
    r.header.index = *idx;
    r.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(k) = kind {
        r.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::from(*k),
            )]));
    }
    if *master != 0 {
        r.attributes.push(LinkAttribute::Controller(*master));
    }
    Ok(vec![RouteNetlinkMessage::NewLink(r)])
}

fn host() -> (LinuxHost, Arc<RecordingNetlink>) {
    let nl = Arc::new(RecordingNetlink::new(Box::new(|msg| match msg {
        RouteNetlinkMessage::GetLink(m) => answer(m),
        _ => Ok(vec![]),
    })));
    let host = LinuxHost::with_parts(
        Box::new(nl.clone()),
        Sysfs::new("/nonexistent"),
        "/nonexistent",
    );
    (host, nl)
}

fn changes(nl: &RecordingNetlink) -> Vec<(u16, RouteNetlinkMessage)> {
    nl.requests()
        .into_iter()
        .filter(|r| !matches!(r.message, RouteNetlinkMessage::GetLink(_)))
        .map(|r| (r.flags, r.message))
        .collect()
}

#[test]
fn attach_sets_master_then_isolation() {
    let (host, nl) = host();
    host.attach_to_bridge("vnet0", "br0", &BridgePortOpts { isolated: true })
        .unwrap();
    let mut set = LinkMessage::default();
    set.header.index = 9;
    set.attributes.push(LinkAttribute::Controller(5));
    let mut iso = LinkMessage::default();
    iso.header.index = 9;
    iso.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::Isolated(
            true,
        )])),
    ]));
    assert_eq!(
        changes(&nl),
        vec![
            (NLM_F_ACK, RouteNetlinkMessage::SetLink(set)),
            (NLM_F_ACK, RouteNetlinkMessage::NewLink(iso)),
        ]
    );
}

#[test]
fn detach_clears_master_only_on_the_named_bridge() {
    let (host, nl) = host();
    host.detach_from_bridge("vnet1", "br7").unwrap();
    assert!(changes(&nl).is_empty());
    host.detach_from_bridge("vnet1", "br0").unwrap();
    let mut set = LinkMessage::default();
    set.header.index = 10;
    set.attributes.push(LinkAttribute::Controller(0));
    assert_eq!(
        changes(&nl),
        vec![(NLM_F_ACK, RouteNetlinkMessage::SetLink(set))]
    );
    host.detach_from_bridge("gone0", "br0").unwrap();
}

#[test]
fn non_bridge_and_missing_bridge_change_nothing() {
    let (host, nl) = host();
    let e = host
        .attach_to_bridge("vnet0", "eth1", &BridgePortOpts::default())
        .unwrap_err();
    assert!(
        matches!(&e, HostError::NotABridge { kind, .. } if kind == "physical"),
        "{e}"
    );
    let e = host
        .attach_to_bridge("vnet0", "br9", &BridgePortOpts::default())
        .unwrap_err();
    assert!(matches!(e, HostError::BridgeNotFound { .. }));
    let e = host.attach_to_bridge("vnet1", "br0", &BridgePortOpts::default());
    assert!(e.is_ok(), "already on br0 is fine");
    assert!(changes(&nl).is_empty());
}

#[test]
fn delete_link_respects_the_ifindex_guard() {
    let (host, nl) = host();
    host.delete_link("vnet0", Some(99)).unwrap();
    host.delete_link("nosuch", None).unwrap();
    assert!(changes(&nl).is_empty());
    host.delete_link("vnet0", Some(9)).unwrap();
    let mut del = LinkMessage::default();
    del.header.index = 9;
    assert_eq!(
        changes(&nl),
        vec![(NLM_F_ACK, RouteNetlinkMessage::DelLink(del))]
    );
}
