//! Unit tests of the `<interface>` model.

use super::*;
use crate::xml::{parse_document, write_document, Limits};

fn parse(s: &str) -> Result<Interface, crate::ConfError> {
    Interface::from_element(parse_document(s, Limits::default()).unwrap())
}

fn round(s: &str) -> String {
    write_document(&parse(s).unwrap().to_element())
}

#[test]
fn normalises_like_libvirt() {
    let out = round(
        "<interface type='user'><mac address='52:54:00:E5:48:5A'/><model type='ViRtIo'/>\
         <driver queues='1' name='vhost'/></interface>",
    );
    assert_eq!(
        out,
        "<interface type='user'>\n  <mac address='52:54:00:e5:48:5a'/>\n  <model type='virtio'/>\n  <driver name='vhost'/>\n</interface>\n"
    );
}

#[test]
fn canonical_order_from_scrambled_input() {
    let src = "<interface type='bridge'>
      <alias name='ua-n0'/>
      <model type='virtio'/>
      <link state='down'/>
      <target dev='tap0' managed='no'/>
      <driver queues='4' txmode='iothread' name='vhost'><guest csum='off'/><host tso4='off' csum='on'/></driver>
      <source bridge='br0'/>
      <mtu size='9000'/>
      <vlan><tag id='5'/><tag nativeMode='untagged' id='7'/></vlan>
      <boot order='2'/>
      <mac address='52:54:00:00:00:01'/>
      <rom bar='off' enabled='yes' file='/x.rom'/>
      <acpi index='3'/>
    </interface>";
    let expected = "<interface type='bridge'>
  <mac address='52:54:00:00:00:01'/>
  <source bridge='br0'/>
  <vlan trunk='yes'>
    <tag id='5'/>
    <tag id='7' nativeMode='untagged'/>
  </vlan>
  <target dev='tap0' managed='no'/>
  <model type='virtio'/>
  <driver name='vhost' txmode='iothread' queues='4'>
    <host csum='on' tso4='off'/>
    <guest csum='off'/>
  </driver>
  <link state='down'/>
  <mtu size='9000'/>
  <boot order='2'/>
  <alias name='ua-n0'/>
  <rom enabled='yes' bar='off' file='/x.rom'/>
  <acpi index='3'/>
</interface>
";
    assert_eq!(round(src), expected);
    let i = parse(src).unwrap();
    assert_eq!(i.queues(), Some(4));
    assert_eq!(i.target_dev(), Some("tap0"));
    assert!(!i.target_managed());
    assert!(!i.link_up());
    assert_eq!(i.mtu(), Some(9000));
    assert_eq!(i.vlan_tags(), vec![5, 7]);
    assert_eq!(i.boot_order(), Some(2));
    assert_eq!(i.alias(), Some("ua-n0"));
    match i.kind() {
        InterfaceKind::Bridge { bridge } => assert_eq!(bridge.value, "br0"),
        k => panic!("{k:?}"),
    }
}

#[test]
fn unknown_content_is_kept_and_written_back() {
    let out = round(
        "<interface type='network' foo='1'><source network='n' weird='w'><x/></source>\
         <mac address='52:54:00:00:00:01' zz='1'/><future a='b'><c/></future></interface>",
    );
    assert_eq!(
        out,
        "<interface type='network' foo='1'>\n  <mac address='52:54:00:00:00:01' zz='1'/>\n  <source network='n' weird='w'>\n    <x/>\n  </source>\n  <future a='b'>\n    <c/>\n  </future>\n</interface>\n"
    );
}

#[test]
fn driver_settings_only_for_virtio_like_libvirt() {
    let src = "<interface type='network'><source network='n'/><model type='e1000'/>\
               <driver name='vhost' queues='5'/><backend tap='/dev/null' vhost='/dev/zero'/></interface>";
    let i = parse(src).unwrap();
    assert_eq!(i.queues(), None);
    assert_eq!(
        write_document(&i.to_element()),
        "<interface type='network'>\n  <source network='n'/>\n  <model type='e1000'/>\n  <backend tap='/dev/null'/>\n</interface>\n"
    );
}

#[test]
fn coalesce_dropped_when_zero_or_empty() {
    for c in [
        "<coalesce><rx><frames max='0'/></rx></coalesce>",
        "<coalesce><rx></rx></coalesce>",
        "<coalesce/>",
    ] {
        let out = round(&format!(
            "<interface type='user'><model type='virtio'/>{c}</interface>"
        ));
        assert!(!out.contains("coalesce"), "{c}: {out}");
    }
    let out =
        round("<interface type='user'><coalesce><rx><frames max='7'/></rx></coalesce></interface>");
    assert!(out.contains("<frames max='7'/>"), "{out}");
}

#[test]
fn unknown_type_lists_valid_ones() {
    let e = parse("<interface type='wifi'/>").unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("'wifi'") && m.contains("'vhostuser'") && m.contains("'vdpa'"),
        "{m}"
    );
    assert_eq!(e.pos().line, 1);
}

#[test]
fn missing_type_means_user() {
    let i = parse("<interface><mac address='52:54:00:00:00:01'/></interface>").unwrap();
    assert_eq!(i.type_(), InterfaceType::User);
}

#[test]
fn required_sources_per_type() {
    for (src, needle) in [
        ("<interface type='bridge'/>", "<source bridge='br0'/>"),
        ("<interface type='bridge'><source/></interface>", "'bridge'"),
        (
            "<interface type='direct'><source mode='vepa'/></interface>",
            "'dev'",
        ),
        ("<interface type='network'/>", "network="),
        ("<interface type='vhostuser'/>", "type='unix'"),
        (
            "<interface type='vhostuser'><source type='unix' mode='client'/></interface>",
            "'path'",
        ),
        (
            "<interface type='vhostuser'><source type='unix' path='/s'/></interface>",
            "'mode'",
        ),
        (
            "<interface type='vhostuser'><source type='tcp' path='/s' mode='client'/></interface>",
            "Type='tcp'",
        ),
        ("<interface type='hostdev'/>", "<address"),
        (
            "<interface type='hostdev'><source/></interface>",
            "<address>",
        ),
        ("<interface type='vdpa'/>", "vhost-vdpa"),
        (
            "<interface type='udp'><source address='1.2.3.4' port='1'/></interface>",
            "<local>",
        ),
        (
            "<interface type='client'><source port='1'/></interface>",
            "'address'",
        ),
        (
            "<interface type='mcast'><source address='230.0.0.1'/></interface>",
            "'port'",
        ),
    ] {
        let e = parse(src).unwrap_err();
        assert!(e.to_string().contains(needle), "{src}: {e}");
    }
    // server: address optional; vhostuser with passt: source optional.
    parse("<interface type='server'><source port='5'/></interface>").unwrap();
    parse("<interface type='vhostuser'><backend type='passt'/></interface>").unwrap();
}

#[test]
fn libvirt_queue_error_text() {
    let e = parse("<interface type='user'><model type='virtio'/><driver name='vhost' queues='-5'/></interface>")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "XML error: Invalid value for attribute 'queues' in element 'driver': '-5'. Expected non-negative integer value"
    );
}

#[test]
fn bad_values_are_positioned_errors() {
    let e = parse("<interface type='user'>\n  <mac address='52:54:00:zz:00:01'/>\n</interface>")
        .unwrap_err();
    assert_eq!((e.pos().line, e.pos().col), (2, 8), "{e}");
    let e =
        parse("<interface type='user'><model type='e1000,romfile=/x'/></interface>").unwrap_err();
    assert!(
        e.to_string()
            .contains("Model name contains invalid characters"),
        "{e}"
    );
    let e = parse("<interface type='bridge'><source bridge='br0&#10;x'/></interface>").unwrap_err();
    assert!(e.to_string().contains("control characters"), "{e}");
    let e =
        parse("<interface type='user'><virtualport type='openvswitch'/></interface>").unwrap_err();
    assert!(
        e.to_string()
            .contains("unsupported for <interface type='user'>"),
        "{e}"
    );
    let e = parse("<interface type='user'><link state='sideways'/></interface>").unwrap_err();
    assert!(e.to_string().contains("'sideways'"), "{e}");
}

#[test]
fn typed_accessors() {
    let i = parse(
        "<interface type='vhostuser'><mac address='52:54:00:ee:96:6d'/>\
         <source type='unix' path='/tmp/vhost2.sock' mode='client'><reconnect enabled='yes' timeout='10'/></source>\
         <model type='virtio'/></interface>",
    )
    .unwrap();
    assert_eq!(
        i.vhostuser_socket(),
        Some(("/tmp/vhost2.sock", SocketMode::Client))
    );
    assert_eq!(i.mac().unwrap().to_string(), "52:54:00:ee:96:6d");
    assert_eq!(i.mac().unwrap().tap_mac().to_string(), "fe:54:00:ee:96:6d");
    assert!(i.link_up());
    assert!(i.target_managed());
    let h = parse(
        "<interface type='hostdev' managed='yes'><source><address type='pci' domain='0x0000' \
         bus='0x03' slot='0x07' function='0x1'/></source></interface>",
    )
    .unwrap();
    assert_eq!(h.hostdev_source().unwrap().to_string(), "0000:03:07.1");
    assert!(h.is_hostdev());
    assert!(h.wants_pci_address());
    let usb = parse("<interface type='user'><model type='usb-net'/></interface>").unwrap();
    assert!(!usb.wants_pci_address());
}

#[test]
fn fill_defaults_and_assign_mac() {
    let mut u = parse("<interface type='user'/>").unwrap();
    let mut v = parse("<interface type='vhostuser'><backend type='passt'/></interface>").unwrap();
    let mut h = parse(
        "<interface type='hostdev'><source><address type='pci' bus='1'/></source></interface>",
    )
    .unwrap();
    for i in [&mut u, &mut v, &mut h] {
        i.fill_defaults();
    }
    assert_eq!(u.model().unwrap().as_str(), "rtl8139");
    assert_eq!(v.model().unwrap().as_str(), "virtio");
    assert!(h.model().is_none());
    let before = u.clone();
    u.fill_defaults();
    assert_eq!(u, before, "fill_defaults is idempotent");

    assert!(u.mac().is_none());
    u.assign_mac(|| MacAddr::with_prefix(QEMU_MAC_PREFIX, [1, 2, 3]));
    assert_eq!(u.mac().unwrap().to_string(), "52:54:00:01:02:03");
    u.assign_mac(|| panic!("a MAC is set already"));
    let mut z =
        parse("<interface type='user'><mac address='00:00:00:00:00:00'/></interface>").unwrap();
    z.assign_mac(|| MacAddr::with_prefix(QEMU_MAC_PREFIX, [9, 9, 9]));
    assert_eq!(z.mac().unwrap().to_string(), "52:54:00:09:09:09");
    assert!(write_document(&u.to_element()).contains("<mac address='52:54:00:01:02:03'/>"));
}

/// Fuzzer find: of two `<coalesce>`, the first (max='0', which formats to nothing) was read
/// and the second kept as unknown content; a re-read then took the second. Elements that
/// may appear once are now refused when repeated, with the position of the second.
#[test]
fn repeated_single_elements_are_refused() {
    for (child, twice) in [
        (
            "coalesce",
            "<coalesce><rx><frames max='0'/></rx></coalesce><coalesce><rx/></coalesce>",
        ),
        (
            "mac",
            "<mac address='52:54:00:00:00:01'/><mac address='52:54:00:00:00:02'/>",
        ),
        ("model", "<model type='virtio'/><model type='e1000'/>"),
    ] {
        let e = parse(&format!("<interface type='user'>\n{twice}\n</interface>")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("<{child}> appears more than once in <interface>")),
            "{msg}"
        );
        assert_eq!(e.pos().line, 2, "{e:?}");
        assert!(e.pos().col > 1, "{e:?}");
    }
    // Repeatable children are still accepted.
    parse(
        "<interface type='user'><ip address='10.0.0.2' family='ipv4' prefix='24'/>\
         <ip address='fd00::2' family='ipv6'/></interface>",
    )
    .unwrap();
}

/// A USB hostdev source's `<vendor>` with more than an id used to be kept twice (typed and
/// as unknown content), which a re-read refused; it is refused at once now.
#[test]
fn usb_hostdev_ids_take_only_an_id() {
    let ok = "<interface type='hostdev'><source><vendor id='0x1234'/><product id='0xbeef'/></source></interface>";
    assert_eq!(round(&round(ok)), round(ok));
    for bad in [
        "<vendor id='0x1234' x='1'/>",
        "<vendor id='0x1234'><y/></vendor>",
    ] {
        let e = parse(&format!(
            "<interface type='hostdev'><source>{bad}<product id='0xbeef'/></source></interface>"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("<vendor>"), "{e}");
        assert!(e.pos().is_known());
    }
}

/// USB hostdev NICs (by vendor/product or by `<address type='usb'>`) parse, format back the
/// same, keep the `<source>` position, and pass conf validation (virtnet_qemu::validate refuses
/// starting or attaching them).
#[test]
fn usb_hostdev_nics_round_trip_and_validate() {
    for xml in [
        "<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:00:00:09'/>\n  \
         <source>\n    <vendor id='0x0b95'/>\n    <product id='0x1790'/>\n  </source>\n\
         </interface>",
        "<interface type='hostdev'>\n  <mac address='52:54:00:00:00:09'/>\n  <source>\n    \
         <address type='usb' bus='1' device='4'/>\n  </source>\n</interface>",
    ] {
        let i = parse(xml).unwrap();
        let InterfaceKind::Hostdev {
            source: HostdevSource::Usb { pos, .. },
            ..
        } = &i.kind
        else {
            panic!("not a USB hostdev: {i:?}");
        };
        assert_eq!((pos.line, pos.col), (3, 3), "the <source> position");
        assert_eq!(round(&round(xml)), round(xml));
        assert!(round(xml).contains("<source>"), "{}", round(xml));
        assert!(!i.wants_pci_address());
        let errs = crate::validate::validate_interface(&i);
        assert!(errs.is_empty(), "{errs:?}");
    }
}

/// Unknown content at any depth is listed, named and located; known content is not.
#[test]
fn unknown_content_is_named_and_located() {
    let known = parse(
        "<interface type='bridge'><mac address='52:54:00:00:00:01' type='static'/>\
         <source bridge='br0'/><bandwidth><inbound average='1' burst='2'/></bandwidth>\
         <driver queues='2'><host csum='off'/></driver><model type='virtio'/></interface>",
    )
    .unwrap();
    assert_eq!(known.unknown_content(), Vec::new());
    let i = parse(
        "<interface type='bridge' colour='red'>\n<source bridge='br0' speed='9'/>\n\
         <bandwidth>\n<inbound average='1' weight='3'/></bandwidth>\n\
         <driver><host csum='off' turbo='on'/></driver>\n<frob/>\n\
         <coalesce><rx><frames max='7' min='1'/></rx></coalesce></interface>",
    )
    .unwrap();
    let got: Vec<(u32, u32, String)> = i
        .unknown_content()
        .into_iter()
        .map(|u| (u.pos.line, u.pos.col, u.what))
        .collect();
    let want = [
        (1, 26, "attribute 'colour' of <interface>"),
        (2, 22, "attribute 'speed' of <source>"),
        (4, 22, "attribute 'weight' of <inbound>"),
        (5, 26, "attribute 'turbo' of <host>"),
        (6, 1, "element <frob> inside <interface>"),
        (7, 31, "attribute 'min' of <frames>"),
    ];
    let want: Vec<(u32, u32, String)> = want
        .iter()
        .map(|(l, c, w)| (*l, *c, w.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// An Open vSwitch port's interfaceid is a UUID (written canonically), its profileid at most
/// 39 bytes; a missing interfaceid is assigned once and then kept.
#[test]
fn openvswitch_parameters_are_checked_and_interfaceid_assigned() {
    let ovs = |params: &str| {
        parse(&format!(
            "<interface type='bridge'><source bridge='br-int'/>\n<virtualport \
             type='openvswitch'><parameters {params}/></virtualport></interface>"
        ))
    };
    let i = ovs("interfaceid='09B11C538B5C4EEB8F00D84EAA0AAA4F' profileid='menial'").unwrap();
    let vp = i.virtualport.as_ref().unwrap();
    assert!(vp.is_openvswitch());
    assert_eq!(
        vp.interfaceid.as_deref(),
        Some("09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f")
    );
    assert_eq!(vp.profileid.as_deref(), Some("menial"));
    let e = ovs("interfaceid='not-a-uuid'").unwrap_err();
    assert_eq!(e.pos().line, 2, "{e}");
    assert!(e.to_string().contains("a UUID"), "{e}");
    let e = ovs(&format!("profileid='{}'", "p".repeat(40))).unwrap_err();
    assert!(e.to_string().contains("1 to 39 bytes"), "{e}");

    let mut i = ovs("profileid='menial'").unwrap();
    let id = crate::domain::Uuid::parse("c7a5fdbd-edaf-9455-926a-d65c16db1809").unwrap();
    assert!(i.assign_interfaceid(|| id));
    assert!(!i.assign_interfaceid(|| unreachable!("kept")));
    let out = write_document(&i.to_element());
    assert!(
        out.contains("interfaceid='c7a5fdbd-edaf-9455-926a-d65c16db1809' profileid='menial'"),
        "{out}"
    );
    let mut plain = parse("<interface type='bridge'><source bridge='br0'/></interface>").unwrap();
    assert!(!plain.assign_interfaceid(|| unreachable!("no virtualport")));
}
