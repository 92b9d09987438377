//! `virtnet validate` and `virtnet format` as a user runs them: exit codes, messages, stdin.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn virtnet(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_virtnet"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run virtnet");
    {
        let mut sin = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            // The command may stop reading early (e.g. on a size limit): ignore a broken pipe.
            let _ = sin.write_all(data);
        }
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn valid_example_passes() {
    let f = examples().join("three-nics.xml");
    let name = f.to_str().unwrap();
    let out = virtnet(&["validate", name], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stderr.is_empty());
    // As virt-xml-validate: `FILE: valid`; nothing with --quiet.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{name}: valid\n")
    );
    let out = virtnet(&["validate", "--quiet", name], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

/// `attach-interface --mac` with a bad MAC is refused naming the option (not as XML at a
/// position the user never wrote); no daemon needed: the options are read first.
#[test]
fn attach_interface_refuses_a_bad_mac_naming_the_option() {
    let out = virtnet(
        &[
            "attach-interface",
            "vm1",
            "--type",
            "user",
            "--mac",
            "zz:54",
            "--print-xml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("invalid value 'zz:54' for '--mac <MAC>': unable to parse mac address"),
        "{err}"
    );
    assert!(!err.contains("XML"), "{err}");
    let help = virtnet(&["attach-interface", "--help"], None);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("network:"), "{help}");
    assert!(!help.contains("not supported"), "{help}");
}

/// With VIRTNET_CONNECT set, usage lines do not show `--connect` as if it were required.
#[test]
fn virtnet_connect_is_not_shown_as_a_required_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_virtnet"))
        .args(["define"])
        .env("VIRTNET_CONNECT", "/tmp/virtnet-none.sock")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("Usage: virtnet define <FILE>"), "{err}");
    assert!(!err.contains("--connect"), "{err}");
}

#[test]
fn shared_socket_path_is_refused_with_file_line_and_path() {
    let f = examples().join("invalid/vhostuser-shared-path.xml");
    let name = f.to_str().unwrap();
    let out = virtnet(&["validate", name], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("/run/vhost/port0.sock"), "{err}");
    // The second interface starts on line 17: the error points at it (or into it).
    let line = err
        .lines()
        .find(|l| l.contains("port0.sock"))
        .expect("a line naming the path");
    let mut parts = line.splitn(4, ':');
    assert_eq!(parts.next(), Some(name));
    let lineno: u32 = parts.next().unwrap().parse().unwrap();
    assert!((17..=21).contains(&lineno), "{line}");
}

#[test]
fn vhostuser_without_shared_memory_is_refused_and_says_what_to_add() {
    let f = examples().join("invalid/vhostuser-no-shared-memory.xml");
    let out = virtnet(&["validate", f.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("requires shared memory"), "{err}");
    assert!(err.contains("memoryBacking"), "{err}");
    assert!(
        err.contains(":8:"),
        "error should point at the interface on line 8: {err}"
    );
}

#[test]
fn several_files_report_each_and_fail_if_any_fails() {
    let good = examples().join("three-nics.xml");
    let bad = examples().join("invalid/vhostuser-no-shared-memory.xml");
    let out = virtnet(
        &["validate", good.to_str().unwrap(), bad.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("vhostuser-no-shared-memory.xml:"), "{err}");
    assert!(!err.contains("three-nics.xml:"), "{err}");
}

#[test]
fn format_prints_canonical_xml_with_addresses_and_is_stable() {
    let f = examples().join("three-nics.xml");
    let out = virtnet(&["format", f.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = String::from_utf8(out.stdout).unwrap();
    assert!(first.starts_with("<domain type='kvm'>"), "{first}");
    assert!(first.contains("<address type='pci' domain='0x0000' bus='0x00'"));
    assert!(first.contains("<uuid>"), "a uuid is made when missing");
    // Formatting the output again changes nothing.
    let again = virtnet(&["format", "-"], Some(first.as_bytes()));
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(String::from_utf8(again.stdout).unwrap(), first);
}

#[test]
fn stdin_is_read_for_dash() {
    let text = std::fs::read(examples().join("three-nics.xml")).unwrap();
    let out = virtnet(&["validate", "-"], Some(&text));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn malformed_inputs_get_clear_errors_and_never_panic() {
    let huge = vec![b' '; 5 << 20];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", b"".to_vec(), "no XML element"),
        ("not xml", b"hello world".to_vec(), "XML error"),
        (
            "truncated",
            b"<domain type='kvm'>\n  <name>x</name>\n  <devices>".to_vec(),
            "not closed",
        ),
        ("wrong root", b"<network/>".to_vec(), "domain"),
        (
            "binary",
            vec![0x7f, b'E', b'L', b'F', 0, 1, 2, 0xff, 0xfe],
            "XML error",
        ),
        (
            "invalid utf-8",
            b"<domain>\xff\xfe</domain>".to_vec(),
            "UTF-8",
        ),
        ("huge", huge, "larger than"),
    ];
    for (what, data, needle) in cases {
        for cmd in ["validate", "format"] {
            let out = virtnet(&[cmd, "-"], Some(&data));
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{what} ({cmd}): {err}");
            assert!(!err.contains("panicked"), "{what} ({cmd}): {err}");
            assert!(err.starts_with("<stdin>:"), "{what} ({cmd}): {err}");
            assert!(err.contains(needle), "{what} ({cmd}): {err}");
        }
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = virtnet(&["validate", "/nonexistent/dom.xml"], None);
    assert_eq!(out.status.code(), Some(1));
    // No position: the file has none.
    assert!(
        stderr(&out).starts_with("/nonexistent/dom.xml: cannot open: "),
        "{}",
        stderr(&out)
    );
}

/// USB hostdev NICs are kept (validate accepts them, format writes them back with their
/// `<source>`); only starting or hot-plugging them is refused (by the daemon).
#[test]
fn usb_hostdev_nics_validate_and_format() {
    let f = examples().join("hostdev-usb-nic.xml");
    let out = virtnet(&["validate", f.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = virtnet(&["format", f.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let xml = String::from_utf8(out.stdout).unwrap();
    for want in [
        "<vendor id='0x0b95'/>",
        "<product id='0x1790'/>",
        "<address type='usb' bus='1' device='4'/>",
    ] {
        assert!(xml.contains(want), "{want}: {xml}");
    }
    // No guest PCI address is made up for them.
    for nic in xml.split("<interface").skip(1) {
        let nic = nic.split("</interface>").next().unwrap();
        assert!(!nic.contains("type='pci'"), "{nic}");
    }
    let again = virtnet(&["format", "-"], Some(xml.as_bytes()));
    assert_eq!(String::from_utf8(again.stdout).unwrap(), xml);
}

/// `virtnet validate` refuses what `virtnet define` refuses beyond conf's rules (the
/// validation layer for define), with FILE:LINE:COL; `format` too.
#[test]
fn what_virtnet_cannot_run_is_refused_offline_with_its_position() {
    let f = examples().join("invalid/passt-backend.xml");
    let name = f.to_str().unwrap();
    for cmd in ["validate", "format"] {
        let out = virtnet(&[cmd, name], None);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("{name}:11:")) && err.contains("passt"),
            "{cmd}: {err}"
        );
        assert!(err.contains("unsupported configuration"), "{err}");
        assert!(out.stdout.is_empty(), "{cmd}");
    }
}
