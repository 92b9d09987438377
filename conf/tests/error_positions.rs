//! Every error `load_domain` reports for parsed input points into that input: a known line
//! and column, at the start of the offending element (`<`) or attribute (its name). Checked
//! on the libvirt conformance inputs, our examples (valid and invalid), and mangled variants
//! of all of them (lines dropped or repeated, attribute values and texts replaced).

use std::fs;
use std::path::{Path, PathBuf};

use virtnet_conf::{load_domain, ConfError};

/// libvirt's case folders: `$VIRTNET_CONFORMANCE_DIR`, else `../../shared/conformance/libvirt`
/// relative to this crate (as for the other corpus tests).
fn libvirt_dir() -> PathBuf {
    match std::env::var_os("VIRTNET_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/libvirt"),
    }
}

fn xml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            xml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "xml") {
            out.push(p);
        }
    }
}

/// Every domain input: conformance inputs and outputs, hot-plug live domains, examples.
fn inputs() -> Vec<(String, String)> {
    let mut files = Vec::new();
    xml_files(&libvirt_dir(), &mut files);
    xml_files(
        &libvirt_dir().join("../libvirt-hotplug/domains"),
        &mut files,
    );
    xml_files(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples"),
        &mut files,
    );
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let text = fs::read_to_string(&p).ok()?;
            text.contains("<domain")
                .then(|| (p.display().to_string(), text))
        })
        .collect()
}

/// Variants of `text`: each line dropped, each line repeated, each attribute value and each
/// element text replaced by junk (one change per variant).
fn mangled(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for i in 0..lines.len() {
        let mut v = lines.clone();
        v.remove(i);
        out.push((format!("line {} dropped", i + 1), v.join("\n")));
        let mut v = lines.clone();
        v.insert(i, lines[i]);
        out.push((format!("line {} repeated", i + 1), v.join("\n")));
    }
    for (n, (at, _)) in text.match_indices("='").enumerate() {
        let start = at + 2;
        let Some(len) = text[start..].find('\'') else {
            continue;
        };
        for junk in ["x", "-1"] {
            let v = format!("{}{junk}{}", &text[..start], &text[start + len..]);
            out.push((format!("attribute value {} set to {junk:?}", n + 1), v));
        }
    }
    for (n, (at, _)) in text.match_indices('>').enumerate() {
        let start = at + 1;
        let Some(len) = text[start..].find('<') else {
            continue;
        };
        if len == 0 || text[start..start + len].trim().is_empty() {
            continue;
        }
        let v = format!("{}zz{}", &text[..start], &text[start + len..]);
        out.push((format!("text {} replaced", n + 1), v));
    }
    out
}

/// What is wrong with the position of `e` in `text`, if anything.
fn position_problem(text: &str, e: &ConfError) -> Option<String> {
    let pos = e.pos();
    if !pos.is_known() {
        return Some("position unknown".into());
    }
    if matches!(e, ConfError::Syntax { .. }) {
        // The parser stops anywhere (end of input, inside a tag): any known position.
        return None;
    }
    let Some(line) = text.lines().nth(pos.line as usize - 1) else {
        return Some(format!("line {} is past the end", pos.line));
    };
    let chars: Vec<char> = line.chars().collect();
    let i = pos.col as usize - 1;
    let at_element = chars.get(i) == Some(&'<');
    // An attribute: white space, then a name, then '='.
    let at_attribute = i > 0
        && chars[i - 1].is_whitespace()
        && chars.get(i).is_some_and(|c| c.is_alphabetic() || *c == '_')
        && chars[i..]
            .iter()
            .skip_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
            .find(|c| !c.is_whitespace())
            == Some(&'=');
    if at_element || at_attribute {
        None
    } else {
        Some(format!(
            "{}:{} is not at the start of an element or attribute: {line:?}",
            pos.line, pos.col
        ))
    }
}

#[test]
fn every_error_points_at_an_element_or_attribute() {
    let inputs = inputs();
    assert!(inputs.len() >= 90, "only {} inputs found", inputs.len());
    let mut checked_errors = 0;
    let mut variants = 0;
    let mut bad = Vec::new();
    for (name, text) in &inputs {
        let mut all = vec![("as is".to_string(), text.clone())];
        all.extend(mangled(text));
        for (how, v) in all {
            variants += 1;
            let Err(errs) = load_domain(&v) else { continue };
            for e in errs {
                checked_errors += 1;
                if let Some(p) = position_problem(&v, &e) {
                    bad.push(format!("{name} ({how}): {p}: {e:?}"));
                }
            }
        }
    }
    println!("{variants} documents, {checked_errors} errors checked");
    assert!(
        checked_errors > 1000,
        "only {checked_errors} errors checked"
    );
    assert!(
        bad.is_empty(),
        "{} errors without a proper position, e.g.:\n{}",
        bad.len(),
        bad.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// The check itself can fail.
#[test]
fn position_check_catches_unknown_and_misplaced_positions() {
    let text = "<domain type='kvm'>\n  <name>x</name>\n</domain>";
    let unknown = ConfError::unsupported(virtnet_conf::xml::Pos::UNKNOWN, "m");
    assert!(position_problem(text, &unknown).is_some());
    for (line, col) in [(2, 8), (1, 16), (1, 10), (3, 1 + 9)] {
        let misplaced = ConfError::unsupported(virtnet_conf::xml::Pos { line, col }, "m");
        assert!(position_problem(text, &misplaced).is_some(), "{line}:{col}");
    }
    let at_element = ConfError::unsupported(virtnet_conf::xml::Pos { line: 2, col: 3 }, "m");
    assert_eq!(position_problem(text, &at_element), None);
    let at_attr = ConfError::unsupported(virtnet_conf::xml::Pos { line: 1, col: 9 }, "m");
    assert_eq!(position_problem(text, &at_attr), None);
}

/// Errors about elements the input does not have (or that the defaults added) point at the
/// nearest element the input does have.
#[test]
fn errors_about_missing_or_added_elements_point_at_their_parent() {
    let numa_only = "<domain type='kvm'>\n<name>n</name>\n<maxMemory unit='KiB'>4194304</maxMemory>\n\
        <os><type>hvm</type></os>\n<cpu><numa><cell id='0' cpus='0' memory='1048576'/></numa></cpu>\n\
        </domain>";
    let small_max = "<domain type='kvm'>\n<name>n</name>\n<maxMemory slots='2' unit='KiB'>1024</maxMemory>\n\
        <os><type>hvm</type></os>\n<cpu><numa><cell id='0' cpus='0' memory='1048576'/></numa></cpu>\n\
        </domain>";
    let no_memory = "<domain type='kvm'>\n<name>n</name>\n<os><type>hvm</type></os>\n</domain>";
    let no_devices_element = "<domain type='kvm'>\n<name>n</name>\n<memory>1024</memory>\n\
        <os><type arch='x86_64' machine='pc'>hvm</type></os>\n<devices>\n\
        <console type='pty'><target type='virtio'/><address type='virtio-serial' controller='0' bus='0' port='0'/></console>\n\
        <console type='pty'><target type='virtio'/><address type='virtio-serial' controller='0' bus='0' port='0'/></console>\n\
        </devices></domain>";
    for (text, line, needle) in [
        (numa_only, 3, "slot count"),
        (small_max, 3, "maximum memory size"),
        (no_memory, 1, "<memory>"),
    ] {
        let errs = load_domain(text).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        let e = &errs[0];
        assert!(e.to_string().contains(needle), "{e}");
        assert_eq!(e.pos().line, line, "{e:?}");
        assert_eq!(position_problem(text, e), None, "{e:?}");
    }
    if let Err(errs) = load_domain(no_devices_element) {
        for e in errs {
            assert_eq!(position_problem(no_devices_element, &e), None, "{e:?}");
        }
    }
}
