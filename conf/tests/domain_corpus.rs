//! The libvirt conformance corpus, domain part: for every case with an expected output,
//! parse → fill_defaults → to_xml must equal libvirt's `expected-out.xml` outside the
//! `<interface>` elements (those are checked by the interface tests), the interfaces must get
//! libvirt's guest PCI addresses, and formatting must be idempotent.

use std::fs;
use std::path::PathBuf;

use virtnet_conf::Domain;

/// Cases that must pass (this list only grows).
const MUST_PASS: &[&str] = &[];

/// `$VIRTNET_CONFORMANCE_DIR` (the folder of libvirt's case folders, as for the other corpus
/// tests), else `../../shared/conformance/libvirt` relative to this crate.
fn corpus_dir() -> PathBuf {
    if let Ok(d) = std::env::var("VIRTNET_CONFORMANCE_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/libvirt")
}

/// The document without its `<interface>` blocks, and the PCI address lines of each block.
fn split_interfaces(xml: &str) -> (String, Vec<Vec<String>>) {
    let mut rest = String::new();
    let mut ifaces: Vec<Vec<String>> = Vec::new();
    let mut inside = false;
    for line in xml.lines() {
        let t = line.trim_start();
        if !inside && t.starts_with("<interface") {
            ifaces.push(Vec::new());
            inside = !t.ends_with("/>");
            continue;
        }
        if inside {
            if t.starts_with("</interface>") {
                inside = false;
            } else if t.starts_with("<address type='pci'") && line.starts_with("      <") {
                ifaces
                    .last_mut()
                    .expect("inside an interface")
                    .push(t.to_string());
            }
            continue;
        }
        rest.push_str(line);
        rest.push('\n');
    }
    (rest, ifaces)
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: got {x:?}, expected {y:?}", i + 1);
        }
    }
    format!(
        "lengths differ: got {} lines, expected {}",
        a.lines().count(),
        b.lines().count()
    )
}

fn fill(text: &str) -> Result<String, String> {
    let mut d = Domain::parse(text).map_err(|e| format!("parse: {}", e.located()))?;
    d.fill_defaults()
        .map_err(|e| format!("fill_defaults: {}", e.located()))?;
    Ok(d.to_xml())
}

/// Runs one case; Ok(()) when it passes, Err(reason) otherwise.
fn run_case(dir: &std::path::Path) -> Result<(), String> {
    let expected = fs::read_to_string(dir.join("expected-out.xml")).map_err(|e| e.to_string())?;
    let input = fs::read_to_string(dir.join("input.xml")).unwrap_or_else(|_| expected.clone());
    let out = fill(&input)?;
    let (got_rest, got_ifaces) = split_interfaces(&out);
    let (want_rest, want_ifaces) = split_interfaces(&expected);
    if got_rest != want_rest {
        return Err(format!(
            "domain: {}",
            first_difference(&got_rest, &want_rest)
        ));
    }
    if got_ifaces != want_ifaces {
        return Err(format!(
            "interface PCI addresses: got {got_ifaces:?}, expected {want_ifaces:?}"
        ));
    }
    let again = fill(&out).map_err(|e| format!("re-parse of our output: {e}"))?;
    if again != out {
        return Err(format!(
            "not idempotent: {}",
            first_difference(&again, &out)
        ));
    }
    Ok(())
}

#[test]
fn corpus_domains_match_libvirt() {
    let root = corpus_dir();
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("conformance corpus not found at {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected-out.xml").exists())
        .collect();
    cases.sort();
    assert!(cases.len() > 30, "only {} corpus cases found", cases.len());
    let mut failed_required = Vec::new();
    let mut passed = 0;
    let mut table = format!("{:<40} result\n", "case");
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        match run_case(dir) {
            Ok(()) => {
                passed += 1;
                table.push_str(&format!("{name:<40} pass\n"));
            }
            Err(why) => {
                table.push_str(&format!("{name:<40} FAIL  {why}\n"));
                if MUST_PASS.contains(&name.as_str()) {
                    failed_required.push(format!("{name}: {why}"));
                }
            }
        }
    }
    table.push_str(&format!("{passed}/{} cases pass\n", cases.len()));
    virtnet_testkit::conformance::write_table("conf-domain_corpus", &table);
    for name in MUST_PASS {
        assert!(
            cases.iter().any(|c| c.ends_with(name)),
            "required case {name} is missing from the corpus"
        );
    }
    assert!(
        failed_required.is_empty(),
        "required cases failed:\n{}",
        failed_required.join("\n")
    );
}

/// The guest PCI addresses in a libvirt command line (`"bus":"pci.N"` ... `"addr":"0xS.0xF"`),
/// as `bus:slot.function` in hex.
fn args_addresses(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    for obj in args.split('{').skip(1) {
        let obj = obj.split('}').next().unwrap_or_default();
        let bus = ["\"bus\":\"pci.", "\"bus\":\"pcie."]
            .iter()
            .find_map(|k| obj.split(k).nth(1))
            .and_then(|r| r.split('"').next());
        let addr = obj
            .split("\"addr\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next());
        if let (Some(bus), Some(addr)) = (bus, addr) {
            let bus: u32 = bus.parse().expect("bus number");
            let (slot, func) = addr.split_once('.').unwrap_or((addr, "0x0"));
            let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex");
            out.push(format!("{bus:x}:{:x}.{:x}", hex(slot), hex(func)));
        }
    }
    out.sort();
    out
}

/// Every case with a QEMU command line: the guest PCI addresses we assign are exactly those
/// on libvirt's command line (minus the chipset's integrated IDE and SATA controllers, which
/// have no -device). This also covers the cases whose expected XML is missing.
#[test]
fn corpus_pci_addresses_match_command_lines() {
    let root = corpus_dir();
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in fs::read_dir(&root).expect("corpus") {
        let dir = entry.expect("entry").path();
        let Ok(args) = fs::read_to_string(dir.join("expected.args")) else {
            continue;
        };
        let input = fs::read_to_string(dir.join("input.xml"))
            .or_else(|_| fs::read_to_string(dir.join("expected-out.xml")));
        let Ok(input) = input else { continue };
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut d = Domain::parse(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        d.fill_defaults().unwrap_or_else(|e| panic!("{name}: {e}"));
        let q35 = d.machine_is_q35();
        let mut ours: Vec<String> = d
            .pci_addresses_in_use()
            .into_iter()
            .map(|(_, a, _)| a)
            .filter(|a| !(a.bus == 0 && a.slot == 1 && a.function == 1 && !q35))
            .filter(|a| !(a.bus == 0 && a.slot == 0x1f && a.function == 2 && q35))
            .map(|a| format!("{:x}:{:x}.{:x}", a.bus, a.slot, a.function))
            .collect();
        ours.sort();
        let theirs = args_addresses(&args);
        checked += 1;
        if ours != theirs {
            failures.push(format!(
                "{name}: ours {ours:?}, libvirt's command line {theirs:?}"
            ));
        }
    }
    assert!(checked >= 40, "only {checked} command lines checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn command_line_addresses_are_read() {
    let a = args_addresses(
        "-device '{\"driver\":\"pcie-root-port\",\"bus\":\"pcie.0\",\"multifunction\":true,\"addr\":\"0x2\"}' \\\n-device '{\"driver\":\"e1000\",\"bus\":\"pci.1\",\"addr\":\"0x1f.0x3\"}'",
    );
    assert_eq!(a, ["0:2.0", "1:1f.3"]);
}

#[test]
fn interface_blocks_are_split() {
    let xml = "<domain>\n  <devices>\n    <interface type='user'>\n      <mac address='x'/>\n      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>\n    </interface>\n    <interface type='user'/>\n  </devices>\n</domain>\n";
    let (rest, ifaces) = split_interfaces(xml);
    assert_eq!(rest, "<domain>\n  <devices>\n  </devices>\n</domain>\n");
    assert_eq!(ifaces.len(), 2);
    assert_eq!(ifaces[0].len(), 1);
    assert!(ifaces[1].is_empty());
}
