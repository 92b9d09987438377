//! Property tests: format ∘ parse is stable on generated domains, and no input panics.

use proptest::prelude::*;
use virtnet_conf::load_domain;

/// The `<source>` element for a generated interface of type `kind` (empty for types without one).
fn source(kind: &str, index: usize) -> String {
    match kind {
        "bridge" => "<source bridge='br0'/>".to_string(),
        "network" => "<source network='default'/>".to_string(),
        "direct" => "<source dev='eth0' mode='bridge'/>".to_string(),
        "vhostuser" => format!("<source type='unix' path='/run/vhost/p{index}.sock' mode='server'/>"),
        "hostdev" => format!(
            "<source><address type='pci' domain='0x0000' bus='0x03' slot='0x{:02x}' function='0x1'/></source>",
            index % 32
        ),
        "server" | "client" => format!("<source address='127.0.0.1' port='{}'/>", 5000 + index),
        "mcast" => "<source address='230.0.0.1' port='5558'/>".to_string(),
        "udp" => format!(
            "<source address='127.0.0.1' port='{}'><local address='127.0.0.1' port='{}'/></source>",
            6000 + index,
            7000 + index
        ),
        _ => String::new(),
    }
}

/// One generated `<interface>` of a random type with random optional parts.
fn interface(index: usize) -> impl Strategy<Value = String> {
    let mac = format!("52:54:00:00:{:02x}:{:02x}", index / 256, index % 256);
    let kind = prop_oneof![
        Just("bridge"),
        Just("ethernet"),
        Just("network"),
        Just("direct"),
        Just("user"),
        Just("vhostuser"),
        Just("hostdev"),
        Just("server"),
        Just("client"),
        Just("mcast"),
        Just("udp"),
    ];
    (
        kind,
        prop::option::of(prop_oneof![Just("virtio"), Just("e1000"), Just("rtl8139")]),
        prop::option::of(1u32..8),
        prop::option::of(prop_oneof![Just("up"), Just("down")]),
        prop::option::of(576u32..9000),
        prop::option::of(1u32..4095),
        prop::option::of(1u32..20),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            move |(kind, model, queues, link, mtu, vlan, boot, target, with_mac)| {
                // Without <mac>, load_domain assigns a random one.
                let mut s = format!("<interface type='{kind}'>\n");
                if with_mac {
                    s += &format!("<mac address='{mac}'/>\n");
                }
                s += &source(kind, index);
                let model = if kind == "vhostuser" {
                    Some("virtio")
                } else {
                    model
                };
                if let Some(m) = model {
                    s += &format!("<model type='{m}'/>");
                }
                if target && matches!(kind, "bridge" | "ethernet") {
                    s += &format!("<target dev='tap-p{index}'/>");
                }
                if let (Some(q), Some("virtio")) = (queues, model) {
                    s += &format!("<driver queues='{q}'/>");
                }
                if let Some(l) = link {
                    s += &format!("<link state='{l}'/>");
                }
                if let Some(m) = mtu {
                    s += &format!("<mtu size='{m}'/>");
                }
                if let (Some(v), "hostdev") = (vlan, kind) {
                    s += &format!("<vlan><tag id='{v}'/></vlan>");
                }
                if let Some(b) = boot {
                    s += &format!("<boot order='{}'/>", b * 100 + index as u32);
                }
                s += "</interface>\n";
                s
            },
        )
}

/// A generated domain with 0..6 interfaces and a few other devices.
fn domain() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("kvm"), Just("qemu")],
        prop_oneof![Just("pc"), Just("q35")],
        1u64..65536,
        any::<bool>(),
        any::<bool>(),
        (0usize..6).prop_flat_map(|n| (0..n).map(interface).collect::<Vec<_>>()),
    )
        .prop_map(|(ty, machine, mem_mib, disk, serial, nics)| {
            let mut s = format!(
                "<domain type='{ty}'>\n<name>gen</name>\n<memory unit='MiB'>{mem_mib}</memory>\n\
                 <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\n\
                 <os><type arch='x86_64' machine='{machine}'>hvm</type></os>\n<devices>\n"
            );
            if disk {
                s += "<disk type='file' device='disk'><source file='/tmp/d.qcow2'/>\
                      <target dev='vda' bus='virtio'/></disk>\n";
            }
            for n in nics {
                s += &n;
            }
            if serial {
                s += "<serial type='pty'><target port='0'/></serial>\n";
            }
            s += "</devices>\n</domain>\n";
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever we accept, we write canonically: formatting our own output again changes nothing.
    #[test]
    fn format_of_parse_is_stable(text in domain()) {
        if let Ok(first) = load_domain(&text) {
            let xml1 = first.to_xml();
            let second = load_domain(&xml1)
                .unwrap_or_else(|e| panic!("our own output was refused: {e:?}\n{xml1}"));
            prop_assert_eq!(&second.to_xml(), &xml1);
        }
    }

    /// Most generated domains are valid: the stability property above is not vacuous.
    #[test]
    fn generated_domains_are_mostly_accepted(text in domain()) {
        // Every generated part is valid on its own; only combinations the validator refuses
        // on purpose (e.g. two hostdevs on one VF) may fail, and they must name a line.
        if let Err(problems) = load_domain(&text) {
            for p in problems {
                prop_assert!(p.pos().is_known(), "error without a position: {p}\n{text}");
            }
        }
    }

    /// Cutting, duplicating or corrupting a valid document gives an error or a domain, never a panic.
    #[test]
    fn mangled_documents_never_panic(
        text in domain(),
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        junk in "[<>&'\"=/a-z0-9 \n\\x00-\\x1f]{0,12}",
    ) {
        let a = cut.index(text.len() + 1);
        let b = at.index(text.len() + 1);
        let (lo, hi) = (a.min(b), a.max(b));
        if text.is_char_boundary(lo) && text.is_char_boundary(hi) {
            let _ = load_domain(&text[..lo]);
            let _ = load_domain(&format!("{}{}{}", &text[..lo], junk, &text[hi..]));
            let _ = load_domain(&format!("{}{}", &text[..hi], &text[lo..]));
        }
    }

    /// Arbitrary text never panics.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = load_domain(&text);
    }
}

/// The stability property must see accepted domains; count them over a fixed sample.
#[test]
fn most_generated_domains_are_valid() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = domain();
    let mut accepted = 0;
    let total = 200;
    let mut last_err = String::new();
    for _ in 0..total {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        match load_domain(&text) {
            Ok(_) => accepted += 1,
            Err(e) => last_err = format!("{e:?}\n{text}"),
        }
    }
    assert!(
        accepted * 10 >= total * 8,
        "only {accepted}/{total} generated domains were accepted; last refusal: {last_err}"
    );
}
