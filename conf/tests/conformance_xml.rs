//! XML conformance with libvirt's own test data (`/work/shared/conformance/libvirt`, see its
//! README): every case folder is read; inputs expected to parse must parse, validate cleanly
//! and format their `<interface>` elements exactly as libvirt's expected output; the
//! expected-failure cases must fail parse or validation.
//!
//! Known, deliberate differences are listed in `tests/conformance/KNOWN-DIFFERENCES.md`.

use std::fs;
use std::path::{Path, PathBuf};

use std::panic::{catch_unwind, AssertUnwindSafe};

use virtnet_conf::xml::{parse_document, write_element, Limits};
use virtnet_conf::{validate, Domain, Interface};

/// The corpus folder: `$VIRTNET_CONFORMANCE_DIR`, else `../../shared/conformance/libvirt`
/// relative to this crate. Panics (the test fails) when it is missing.
fn corpus_dir() -> PathBuf {
    let dir = match std::env::var_os("VIRTNET_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/libvirt"),
    };
    assert!(
        dir.join("net-user").is_dir(),
        "conformance corpus not found at {} (set VIRTNET_CONFORMANCE_DIR to the folder holding \
         libvirt's case folders, e.g. /work/shared/conformance/libvirt)",
        dir.display()
    );
    dir
}

/// Every case folder, sorted.
fn cases() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = fs::read_dir(corpus_dir())
        .expect("read corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    v.sort();
    v
}

/// The `<interface>...</interface>` blocks of a document, as text lines (with their
/// indentation), each block ending with a newline.
fn interface_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if cur.is_none() && (t.starts_with("<interface ") || t.starts_with("<interface>")) {
            if t.ends_with("/>") {
                out.push(format!("{line}\n"));
                continue;
            }
            cur = Some(String::new());
        }
        if let Some(c) = cur.as_mut() {
            c.push_str(line);
            c.push('\n');
            if t.starts_with("</interface>") {
                out.push(cur.take().unwrap());
            }
        }
    }
    out
}

/// Interface snippets of libvirt's expected outputs (canonical by definition) must come out of
/// `Interface::from_element` → `to_element` byte for byte.
#[test]
fn interface_snippets_round_trip_byte_for_byte() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (name, dir) in cases() {
        let Ok(text) = fs::read_to_string(dir.join("expected-out.xml")) else {
            continue;
        };
        for (i, block) in interface_blocks(&text).into_iter().enumerate() {
            checked += 1;
            let indent = block.len() - block.trim_start().len();
            let el = parse_document(&block, Limits::default()).expect("corpus XML parses");
            let got = match Interface::from_element(el) {
                Ok(iface) => {
                    let mut s = String::new();
                    write_element(&mut s, &iface.to_element(), indent / 2);
                    s
                }
                Err(e) => format!("ERROR: {}\n", e.located()),
            };
            if got != block {
                failures.push(format!("{name} #{i}:\n--- expected\n{block}--- got\n{got}"));
            }
        }
    }
    assert!(checked >= 60, "only {checked} interface blocks found");
    assert!(
        failures.is_empty(),
        "{} of {checked} blocks differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// libvirt's expected-failure cases (README table): parse must fail or validation must report
/// a problem, and one of our messages must start with libvirt's text (`expected.err`).
const EXPECTED_FAILURES: &[&str] = &[
    "net-hostdev-fail",
    "net-user-slirp-portforward",
    "net-vhostuser-fail",
    "net-vhostuser-passt-no-shmem",
    "net-virtio-rxqueuesize-invalid-size",
    "vhost_queues-invalid",
];

/// Cases libvirt accepts and we refuse on purpose (see KNOWN-DIFFERENCES.md): validation must
/// report an error containing the text given; the XML must still format as libvirt's.
const DOCUMENTED_EXCEPTIONS: &[(&str, &str)] = &[
    ("net-many-models", "MAC address 00:11:22:33:44:58"),
    ("net-vhostuser-passt", "MAC address 00:11:22:33:44:11"),
];

/// Cases whose `<interface>` output must match libvirt's (for the documented exceptions: and
/// that are refused as documented). This list only grows.
const MUST_MATCH: &[&str] = &[
    "downscript",
    "net-bandwidth",
    "net-bandwidth2",
    "net-client",
    "net-coalesce",
    "net-eth-hostip",
    "net-eth-ifname",
    "net-eth-names",
    "net-eth-unmanaged-tap",
    "net-eth",
    "net-hostdev-bootorder",
    "net-hostdev-multidomain",
    "net-hostdev-vfio-multidomain",
    "net-hostdev-vfio",
    "net-hostdev",
    "net-isolated-port",
    "net-linkstate",
    "net-many-models",
    "net-mcast",
    "net-midonet",
    "net-mtu",
    "net-server",
    "net-udp",
    "net-usb",
    "net-user-addr",
    "net-user-passt",
    "net-user",
    "net-vdpa-multiqueue",
    "net-vdpa",
    "net-vhostuser-multiq",
    "net-vhostuser-passt",
    "net-vhostuser",
    "net-virtio-device",
    "net-virtio-disable-offloads",
    "net-virtio-netdev",
    "net-virtio-rss",
    "net-virtio-rxtxqueuesize",
    "net-virtio-teaming-hostdev",
    "net-virtio-teaming",
    "net-virtio-vhost",
    "net-virtio",
];

/// Whitespace-normalised lines of the `<interface>` blocks of a document.
fn normalised_interfaces(xml: &str) -> Vec<String> {
    interface_blocks(xml)
        .iter()
        .flat_map(|b| b.lines().map(|l| l.trim().to_string()))
        .filter(|l| !l.is_empty())
        .collect()
}

/// parse → fill_defaults → (validate) → to_xml; a panic is reported as an error.
fn pipeline(text: &str) -> Result<(String, Vec<String>), String> {
    catch_unwind(AssertUnwindSafe(|| {
        let mut d = Domain::parse(text).map_err(|e| format!("parse: {}", e.located()))?;
        d.fill_defaults()
            .map_err(|e| format!("fill_defaults: {}", e.located()))?;
        let errs: Vec<String> = validate(&d).iter().map(|e| e.to_string()).collect();
        Ok((d.to_xml(), errs))
    }))
    .unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panic: {msg}"))
    })
}

/// The first line where two normalised interface lists differ.
fn first_difference(ours: &[String], theirs: &[String]) -> Option<String> {
    let n = ours.len().max(theirs.len());
    (0..n).find_map(|i| {
        let (a, b) = (ours.get(i), theirs.get(i));
        (a != b).then(|| {
            format!(
                "line {}: ours {:?} / libvirt {:?}",
                i + 1,
                a.map_or("<none>", String::as_str),
                b.map_or("<none>", String::as_str)
            )
        })
    })
}

struct Row {
    case: String,
    kind: &'static str,
    ok: bool,
    result: String,
    detail: String,
}

fn run_case(name: &str, dir: &Path) -> Row {
    let read = |f: &str| fs::read_to_string(dir.join(f)).ok();
    let (input, expected_out, expected_err) = (
        read("input.xml"),
        read("expected-out.xml"),
        read("expected.err"),
    );
    let row = |kind, ok, result: &str, detail: String| Row {
        case: name.to_string(),
        kind,
        ok,
        result: result.to_string(),
        detail,
    };

    if EXPECTED_FAILURES.contains(&name) {
        let text = input.expect("expected-failure cases have input.xml");
        let libvirt = expected_err.unwrap_or_default().trim_end().to_string();
        let ours: Vec<String> = match pipeline(&text) {
            Err(e) if e.starts_with("panic") => return row("fail", false, "PANIC", e),
            Err(e) => vec![e.split_once(": ").map_or(e.clone(), |(_, m)| m.to_string())],
            Ok((_, errs)) => errs,
        };
        if ours.is_empty() {
            return row("fail", false, "ACCEPTED", "expected an error".into());
        }
        // Parse errors carry "LINE:COL: " from located(); compare the message itself.
        let same_text = ours.iter().any(|m| {
            let m = m
                .split_once(": ")
                .filter(|(p, _)| p.chars().all(|c| c.is_ascii_digit() || c == ':'))
                .map_or(m.as_str(), |(_, r)| r);
            m.starts_with(&libvirt)
        });
        return if same_text {
            row("fail", true, "fails as expected", ours[0].clone())
        } else {
            row(
                "fail",
                false,
                "fails, other text",
                format!("ours {:?} / libvirt {libvirt:?}", ours),
            )
        };
    }

    let Some(expected) = expected_out else {
        // No libvirt output to compare with: it must at least be accepted.
        let Some(text) = input else {
            return row(
                "no data",
                true,
                "skipped",
                "neither input nor output available".into(),
            );
        };
        return match pipeline(&text) {
            Ok((_, errs)) if errs.is_empty() => row("parse only", true, "accepted", String::new()),
            Ok((_, errs)) => row("parse only", false, "REFUSED", errs.join(" | ")),
            Err(e) => row("parse only", false, "ERROR", e),
        };
    };
    let kind = if input.is_some() {
        "compare"
    } else {
        "compare (out as in)"
    };
    let text = input.unwrap_or_else(|| expected.clone());
    let (xml, errs) = match pipeline(&text) {
        Ok(r) => r,
        Err(e) => return row(kind, false, "ERROR", e),
    };
    let exception = DOCUMENTED_EXCEPTIONS.iter().find(|(c, _)| *c == name);
    match exception {
        Some((_, needle)) if !errs.iter().any(|e| e.contains(needle)) => {
            return row(
                kind,
                false,
                "NOT REFUSED",
                format!("expected an error with {needle:?}, got {errs:?}"),
            );
        }
        None if !errs.is_empty() => return row(kind, false, "REFUSED", errs.join(" | ")),
        _ => {}
    }
    let (ours, theirs) = (
        normalised_interfaces(&xml),
        normalised_interfaces(&expected),
    );
    match first_difference(&ours, &theirs) {
        None if exception.is_some() => row(
            kind,
            true,
            "refused as documented; XML matches",
            String::new(),
        ),
        None => row(kind, true, "match", String::new()),
        Some(d) => row(kind, false, "DIFF", d),
    }
}

/// The whole corpus through parse → fill_defaults → validate → to_xml.
#[test]
fn libvirt_conformance_table() {
    let rows: Vec<Row> = cases().iter().map(|(n, d)| run_case(n, d)).collect();
    let mut table = String::from("case | kind | result | first difference / detail\n");
    for r in &rows {
        table.push_str(&format!(
            "{} | {} | {} | {}\n",
            r.case, r.kind, r.result, r.detail
        ));
    }
    let compared: Vec<&Row> = rows.iter().filter(|r| r.kind == "compare").collect();
    let matched = compared.iter().filter(|r| r.ok).count();
    let exceptions = compared
        .iter()
        .filter(|r| r.ok && DOCUMENTED_EXCEPTIONS.iter().any(|(c, _)| *c == r.case))
        .count();
    let out_as_in: Vec<&Row> = rows
        .iter()
        .filter(|r| r.kind == "compare (out as in)")
        .collect();
    let failures: Vec<&Row> = rows.iter().filter(|r| r.kind == "fail").collect();
    table.push_str(&format!(
        "\n{matched}/{} cases with input and expected output match ({exceptions} of them documented \
         exceptions: XML matches, refused on purpose); {}/{} with expected output as input; {}/{} \
         expected failures fail as libvirt's\n",
        compared.len(),
        out_as_in.iter().filter(|r| r.ok).count(),
        out_as_in.len(),
        failures.iter().filter(|r| r.ok).count(),
        failures.len()
    ));
    virtnet_testkit::conformance::write_table("conf-conformance_xml", &table);

    assert_eq!(rows.len(), 51, "the corpus has 51 case folders\n{table}");
    assert_eq!(
        compared.len(),
        38,
        "38 cases have input and expected output\n{table}"
    );
    assert_eq!(failures.len(), 6, "{table}");
    let broken: Vec<&str> = rows
        .iter()
        .filter(|r| !r.ok && (r.kind == "fail" || MUST_MATCH.contains(&r.case.as_str())))
        .map(|r| r.case.as_str())
        .collect();
    assert!(
        broken.is_empty(),
        "cases that must pass fail: {broken:?}\n{table}"
    );
    for c in MUST_MATCH {
        assert!(
            rows.iter().any(|r| r.case == *c),
            "MUST_MATCH names unknown case {c}"
        );
    }
}

/// libvirt's hot-plug test data: the device XMLs parse, pass the interface rules, and format
/// stably; the live domains (with libvirt's own aliases) validate cleanly.
#[test]
fn hotplug_devices_and_live_domains() {
    let dir = corpus_dir().join("../libvirt-hotplug");
    let mut n = 0;
    for entry in fs::read_dir(dir.join("devices")).expect("hotplug devices") {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let el = parse_document(&text, Limits::default()).unwrap();
        let iface = Interface::from_element(el)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.located()));
        let errs = virtnet_conf::validate::validate_interface(&iface);
        assert!(errs.is_empty(), "{}: {errs:?}", path.display());
        let once = virtnet_conf::xml::write_document(&iface.to_element());
        let again =
            Interface::from_element(parse_document(&once, Limits::default()).unwrap()).unwrap();
        assert_eq!(
            virtnet_conf::xml::write_document(&again.to_element()),
            once,
            "{}",
            path.display()
        );
        n += 1;
    }
    assert_eq!(n, 3);
    for entry in fs::read_dir(dir.join("domains")).expect("hotplug domains") {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let d =
            Domain::parse(&text).unwrap_or_else(|e| panic!("{}: {}", path.display(), e.located()));
        let errs: Vec<String> = validate(&d).iter().map(|e| e.located()).collect();
        assert!(errs.is_empty(), "{}: {errs:#?}", path.display());
    }
}
