use super::*;
use crate::xml::Pos;

const FULL: &str = "<network>\n  <name>sw0</name>\n  <virtualport type='virtnet-vswitch'/>\n  \
                    <uplink dev='sw0-up'>\n    <ip address='10.20.0.1' prefix='24'/>\n  \
                    </uplink>\n</network>\n";

#[test]
fn parses_and_formats_round_trip() {
    let n = parse_network(FULL).unwrap();
    assert_eq!(n.name, "sw0");
    let up = n.uplink.clone().unwrap();
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
    assert_eq!(n.uplink, None);
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
    let (m, p) = err(
        "<network><name>ovs</name><forward mode='bridge'/><bridge name='br-int'/>\n\
         <virtualport type='openvswitch'/></network>",
    );
    assert!(
        m.contains("Open vSwitch network") && m.contains("<interface type='bridge'>"),
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
