use super::*;
use crate::xml::Pos;

const FULL: &str = "<network>\n  <name>sw0</name>\n  <virtualport type='virtnet-vswitch'/>\n  \
                    <uplink dev='sw0-up'>\n    <ip address='10.20.0.1' prefix='24'/>\n  \
                    </uplink>\n</network>\n";

#[test]
fn parses_and_formats_round_trip() {
    let n = parse_network(FULL).unwrap();
    assert_eq!(n.name, "sw0");
    let up = n.uplink().cloned().unwrap();
    assert_eq!(up.dev, "sw0-up");
    assert_eq!(up.ip, Some(("10.20.0.1".parse().unwrap(), 24)));
    let xml = n.to_xml();
    assert_eq!(parse_network(&xml).unwrap(), n);
    assert!(
        xml.contains("<virtualport type='virtnet-vswitch'/>"),
        "{xml}"
    );
}

#[test]
fn minimal_has_no_uplink() {
    let n = parse_network("<network><name>a</name><virtualport type='virtnet-vswitch'/></network>")
        .unwrap();
    assert_eq!(n.uplink(), None);
    assert!(n.ovs().is_none());
}

fn err(text: &str) -> (String, Pos) {
    let e = parse_network(text).unwrap_err();
    (e.to_string(), e.pos())
}

#[test]
fn refusals_are_positioned() {
    let (m, p) = err("<network><name>a</name>\n<virtualport type='bridge'/></network>");
    assert!(m.contains("virtnet-vswitch"), "{m}");
    assert_eq!(p.line, 2);
    let (m, _) = err("<network><virtualport type='virtnet-vswitch'/></network>");
    assert!(m.contains("<name>"), "{m}");
    let (m, _) = err("<network><name>-x</name><virtualport type='virtnet-vswitch'/></network>");
    assert!(m.contains("not valid"), "{m}");
    let (m, _) = err("<network><name>a</name></network>");
    assert!(m.contains("virtualport"), "{m}");
    let (m, p) = err(
        "<network><name>a</name><virtualport type='virtnet-vswitch'/>\n<bridge name='x'/></network>",
    );
    assert!(m.contains("unknown element <bridge>"), "{m}");
    assert_eq!(p.line, 2);
    let (m, _) = err("<network><name>a</name><virtualport type='virtnet-vswitch'/><uplink dev='this-name-is-too-long'/></network>");
    assert!(m.contains("interface name"), "{m}");
    let (m, _) = err("<network><name>a</name><virtualport type='virtnet-vswitch'/><uplink dev='u'><ip address='10.0.0.1' prefix='40'/></uplink></network>");
    assert!(m.contains("prefix"), "{m}");
    let (m, p) = err("<network><name>ovs</name>\n<virtualport type='openvswitch'/></network>");
    assert!(
        m.contains("Open vSwitch network needs <forward mode='bridge'/>"),
        "{m}"
    );
    assert_eq!(p.line, 2);
    let (m, _) = err("<domain/>");
    assert!(m.contains("expected root element <network>"), "{m}");
    let (m, _) =
        err("<network><name>a</name><name>b</name><virtualport type='virtnet-vswitch'/></network>");
    assert!(m.contains("more than once"), "{m}");
}

#[test]
fn uuid_is_read_and_written() {
    let n = parse_network(
        "<network><name>a</name><uuid>3E3FCE45-4f534fa7bb32-11f34168b82b</uuid>\
         <virtualport type='virtnet-vswitch'/></network>",
    )
    .unwrap();
    let u = n.uuid.unwrap();
    assert_eq!(u.to_string(), "3e3fce45-4f53-4fa7-bb32-11f34168b82b");
    let xml = n.to_xml();
    assert!(
        xml.contains("<name>a</name>\n  <uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid>"),
        "{xml}"
    );
    assert_eq!(parse_network(&xml).unwrap(), n);
    // Absent: none (the daemon generates one), and none written.
    let n = parse_network("<network><name>a</name><virtualport type='virtnet-vswitch'/></network>")
        .unwrap();
    assert_eq!(n.uuid, None);
    assert!(!n.to_xml().contains("uuid"));
}

#[test]
fn bad_uuid_is_refused_where_it_is() {
    let (m, p) = err(
        "<network><name>a</name>\n  <uuid>not-a-uuid</uuid><virtualport type='virtnet-vswitch'/></network>",
    );
    assert!(
        m.contains("not-a-uuid") && m.contains("32 hexadecimal digits"),
        "{m}"
    );
    assert_eq!((p.line, p.col), (2, 3));
    let (m, p) = err(
        "<network><name>a</name><uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid>\n\
         <uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82c</uuid><virtualport type='virtnet-vswitch'/></network>",
    );
    assert!(m.contains("more than once"), "{m}");
    assert_eq!(p.line, 2);
}

const OVS: &str = "<network>\n  <name>ovs</name>\n  <forward mode='bridge'/>\n  \
                   <bridge name='br-int'/>\n  <virtualport type='openvswitch'/>\n</network>\n";

#[test]
fn openvswitch_network_parses_and_formats() {
    let n = parse_network(OVS).unwrap();
    let o = n.ovs().unwrap();
    assert_eq!(o.bridge, "br-int");
    assert_eq!(o.profileid, None);
    assert!(o.portgroups.is_empty());
    assert_eq!(n.uplink(), None);
    assert_eq!(n.to_xml(), OVS);
}

const GROUPS: &str = "<network>\n  <name>ovs</name>\n  <forward mode='bridge'/>\n  \
    <bridge name='br-int'/>\n  <virtualport type='openvswitch'>\n    \
    <parameters profileid='net-prof'/>\n  </virtualport>\n  <vlan>\n    <tag id='7'/>\n  \
    </vlan>\n  <portgroup name='blue' default='yes'>\n    <vlan>\n      <tag id='42'/>\n    \
    </vlan>\n  </portgroup>\n  <portgroup name='gold'>\n    <virtualport>\n      \
    <parameters profileid='gold'/>\n    </virtualport>\n  </portgroup>\n</network>\n";

#[test]
fn openvswitch_portgroups_round_trip() {
    let n = parse_network(GROUPS).unwrap();
    let o = n.ovs().unwrap();
    assert_eq!(o.portgroups.len(), 2);
    assert!(o.portgroups[0].default);
    assert_eq!(o.portgroups[1].profileid.as_deref(), Some("gold"));
    assert_eq!(n.to_xml(), GROUPS);
    assert_eq!(parse_network(&n.to_xml()).unwrap(), n);
}

fn vp(xml: &str) -> crate::interface::VirtualPort {
    let el = crate::xml::parse_document(xml, crate::xml::Limits::default()).unwrap();
    crate::interface::VirtualPort::from_element(el).unwrap()
}

#[test]
fn openvswitch_merge_follows_libvirt() {
    let n = parse_network(GROUPS).unwrap();
    let o = n.ovs().unwrap();
    // No port group named: the default one's VLAN, the network's profile, no interfaceid.
    let (v, vlan) = o.merge(None, None, None).unwrap();
    assert_eq!(v.kind.as_deref(), Some("openvswitch"));
    assert_eq!(v.profileid.as_deref(), Some("net-prof"));
    assert_eq!(v.interfaceid, None);
    assert_eq!(vlan.unwrap().tags[0].id, 42);
    // The NIC's interfaceid is kept; the 'gold' group: no VLAN of its own, the network's.
    let own = vp("<virtualport><parameters interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>");
    let e = o.merge(Some("gold"), Some(&own), None).unwrap_err();
    assert!(e.contains("conflicts"), "{e}");
    let (v, vlan) = {
        let only = parse_network(
            &GROUPS
                .replace("    <parameters profileid='net-prof'/>\n", "")
                .replace(
                    "<virtualport type='openvswitch'>\n  </virtualport>",
                    "<virtualport type='openvswitch'/>",
                ),
        )
        .unwrap();
        only.ovs()
            .unwrap()
            .merge(Some("gold"), Some(&own), None)
            .unwrap()
    };
    assert_eq!(
        v.interfaceid.as_deref(),
        Some("09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f")
    );
    assert_eq!(v.profileid.as_deref(), Some("gold"));
    assert_eq!(vlan.unwrap().tags[0].id, 7);
    // Refused: an unknown group, another virtual port type, an 802.1Qbg parameter.
    let e = o.merge(Some("red"), None, None).unwrap_err();
    assert!(
        e.contains("no port group 'red' (it has: blue, gold)"),
        "{e}"
    );
    let e = o
        .merge(None, Some(&vp("<virtualport type='802.1Qbh'/>")), None)
        .unwrap_err();
    assert!(e.contains("type='openvswitch'"), "{e}");
}

#[test]
fn openvswitch_refusals_are_positioned() {
    let net = |body: &str| format!("<network><name>ovs</name>\n{body}</network>");
    let cases: &[(&str, &str, (u32, u32))] = &[
        (
            "<forward mode='nat'/><bridge name='br-int'/><virtualport type='openvswitch'/>",
            "'bridge' (the forward mode",
            (2, 10),
        ),
        (
            "<forward mode='bridge'/><virtualport type='openvswitch'/>",
            "<bridge name='br-int'/>",
            (1, 1),
        ),
        (
            "<forward mode='bridge'/><bridge name='br-int'/>",
            "Linux bridge network",
            (2, 1),
        ),
        (
            "<forward mode='bridge'/><bridge name='br-int'/><virtualport type='midonet'/>",
            "use type='openvswitch'",
            (2, 48),
        ),
        (
            "<forward mode='bridge'/><bridge name='br-int'/><virtualport type='openvswitch'>\
             <parameters interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>",
            "each port's interfaceid is its interface's",
            (2, 48),
        ),
        (
            "<forward mode='bridge'/><bridge name='br-int' stp='on'/><virtualport type='openvswitch'/>",
            "unknown attribute 'stp' in <bridge>",
            (2, 47),
        ),
        (
            "<forward mode='bridge'/><bridge name='br-int'/><virtualport type='openvswitch'/>\
             <ip address='10.0.0.1'/>",
            "unknown element <ip> in <network>",
            (2, 81),
        ),
        (
            "<forward mode='bridge'/><bridge name='br-int'/><virtualport type='openvswitch'/>\
             <portgroup name='a' default='yes'/><portgroup name='b' default='yes'/>",
            "more than one <portgroup default='yes'>",
            (2, 116),
        ),
        (
            "<forward mode='bridge'/><bridge name='br-int'/><virtualport type='openvswitch'/>\
             <portgroup name='a'/><portgroup name='a'/>",
            "a name no other <portgroup> has",
            (2, 113),
        ),
        (
            "<forward mode='bridge'/><bridge name='br-int'/><virtualport type='openvswitch'/>\
             <portgroup name='a'><bandwidth/></portgroup>",
            "unknown element <bandwidth> in <portgroup>",
            (2, 101),
        ),
    ];
    for (body, want, at) in cases {
        let (m, p) = err(&net(body));
        assert!(m.contains(want), "{body}: {m}");
        assert_eq!((p.line, p.col), *at, "{body}: {m}");
    }
}
