//! Command-line conformance with libvirt's own test data (`/work/shared/conformance/libvirt`,
//! see its README, "How to compare a generated command line with expected.args").
//!
//! For every case folder with an `expected.args`: load `input.xml` (or `expected-out.xml` when
//! the input is missing) with `virtnet_conf::load_domain`, build the command line with the
//! "latest" capabilities (QEMU 10.0, vhost-net usable) and placeholder back ends, and compare
//! the network arguments with libvirt's, in order: every `-netdev`, every `-device` of a NIC
//! (it has a `netdev`) or of a `vfio-pci` host device, and the `-chardev` of each vhost-user
//! netdev. JSON values are compared as text after normalisation (so key order counts);
//! `-chardev` values as key=value sets.
//!
//! Normalised: fd-bearing keys (`fd`, `fds`, `vhostfd`, `vhostfds`) are compared by shape
//! (same count), and `vectors` is dropped on vhost-user NICs only (virtnet sets `vectors:0`
//! under TCG; see `tests/conformance/KNOWN-DIFFERENCES.md`).
//!
//! When `build_argv` refuses a case for a device that is not about networking (graphics,
//! sound, ...), the network part is built alone with `build_nic_argv` ("nic-only" in the
//! table). Every case known to differ is listed, with why, in KNOWN-DIFFERENCES.md.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use virtnet_conf::load_domain;
use virtnet_qemu::argv::{build_argv, build_nic_argv, FdRef, NicBackend, QemuCaps, RuntimePaths};
use virtnet_qemu::validate::{validate_domain, Operation, Rule};
use virtnet_qemu::QemuError;

/// Cases whose network arguments must match libvirt's while the rest of their command line
/// may differ. Together with [`MUST_BE_WHOLE_SAME`] (whose network arguments must match too)
/// the cases that must match; this union only grows.
const MUST_PASS_NETWORK_ONLY: &[&str] = &[
    "disk-vhostuser",
    "downscript",
    "net-bandwidth",
    "net-bandwidth2",
    "net-isolated-port",
    "net-virtio-rss",
];

/// Cases whose whole command line (normalised for the documented differences) must be
/// libvirt's, network arguments included. This list only grows.
const MUST_BE_WHOLE_SAME: &[&str] = &[
    "net-client",
    "net-coalesce",
    "net-eth",
    "net-eth-hostip",
    "net-eth-ifname",
    "net-eth-names",
    "net-eth-unmanaged-tap",
    "net-hostdev",
    "net-hostdev-bootorder",
    "net-hostdev-multidomain",
    "net-hostdev-vfio",
    "net-hostdev-vfio-multidomain",
    "net-linkstate",
    "net-mcast",
    "net-midonet",
    "net-mtu",
    "net-openvswitch",
    "net-server",
    "net-udp",
    "net-usb",
    "net-user",
    "net-user-addr",
    "net-vdpa",
    "net-vdpa-multiqueue",
    "net-vhostuser",
    "net-vhostuser-multiq",
    "net-virtio",
    "net-virtio-device",
    "net-virtio-disable-offloads",
    "net-virtio-netdev",
    "net-virtio-rxtxqueuesize",
    "net-virtio-teaming",
    "net-virtio-teaming-hostdev",
    "net-virtio-vhost",
    "tap-vhost-incorrect",
];

/// The fd number our command lines give the monitor (libvirt's files write `@mon-fd@`).
const MONITOR_FD: i32 = 1729;

/// Cases libvirt refuses; virtnet must refuse them too (in conf validation or the builder).
const MUST_FAIL: &[&str] = &["net-hostdev-fail", "net-vhostuser-fail"];

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

/// `(option, value)` pairs of an `.args` file (environment and binary lines skipped). Values
/// in single quotes are unquoted.
fn parse_args_file(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix(" \\").unwrap_or(line).trim();
        if !line.starts_with('-') {
            continue;
        }
        match line.split_once(' ') {
            None => out.push((line.to_string(), None)),
            Some((opt, val)) => {
                let val = val
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .unwrap_or(val);
                out.push((opt.to_string(), Some(val.to_string())));
            }
        }
    }
    out
}

/// Our argv as `(option, value)` pairs.
fn pair_up(args: &[String]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let takes_value = !matches!(
            args[i].as_str(),
            "-S" | "-no-user-config" | "-nodefaults" | "-no-reboot" | "-no-shutdown"
        );
        if takes_value && i + 1 < args.len() {
            out.push((args[i].clone(), Some(args[i + 1].clone())));
            i += 2;
        } else {
            out.push((args[i].clone(), None));
            i += 1;
        }
    }
    out
}

/// `socket,id=x,path=y` → ("socket", sorted key=value list).
fn chardev_set(v: &str) -> (String, Vec<String>) {
    let mut parts = v.split(',');
    let backend = parts.next().unwrap_or("").to_string();
    let mut kv: Vec<String> = parts.map(str::to_string).collect();
    kv.sort();
    (backend, kv)
}

fn chardev_id(v: &str) -> Option<String> {
    v.split(',')
        .find_map(|kv| kv.strip_prefix("id="))
        .map(str::to_string)
}

/// The network arguments of an argv, normalised, as comparable strings in order.
fn network_items(pairs: &[(String, Option<String>)]) -> Vec<String> {
    let json = |v: &str| serde_json::from_str::<Value>(v).ok();
    let vhost_user_netdevs = vhost_user_netdevs(pairs);
    // The chardevs the netdevs use.
    let net_chardevs: Vec<String> = netdevs(pairs)
        .filter_map(|v| v["chardev"].as_str().map(str::to_string))
        .collect();
    let mut out = Vec::new();
    for (opt, val) in pairs {
        let Some(val) = val.as_deref() else { continue };
        match opt.as_str() {
            "-netdev" => {
                let mut v = json(val).unwrap_or(Value::Null);
                normalise_fds(&mut v);
                out.push(format!("-netdev {v}"));
            }
            "-device" => {
                let Some(mut v) = json(val) else { continue };
                let is_nic = v.get("netdev").is_some();
                if !(is_nic || v["driver"] == "vfio-pci") {
                    continue;
                }
                drop_vhost_user_vectors(&mut v, &vhost_user_netdevs);
                out.push(format!("-device {v}"));
            }
            "-chardev" if chardev_id(val).is_some_and(|id| net_chardevs.contains(&id)) => {
                let (b, kv) = chardev_set(val);
                out.push(format!("-chardev {b} {}", kv.join(" ")));
            }
            _ => {}
        }
    }
    out
}

/// The whole command line, normalised for the documented, deliberate differences (see
/// KNOWN-DIFFERENCES.md): libvirt's master-key secret, `-overcommit mem-lock=off`,
/// `-no-shutdown`, `-audiodev`, its always-present `memory-backend-ram`, and the
/// placeholders of both sides (the monitor's fd number is libvirt's `@mon-fd@`).
fn whole_items(pairs: &[(String, Option<String>)], libvirt: bool) -> Vec<String> {
    let mut out = Vec::new();
    let ram_object = r#""qom-type":"memory-backend-ram","id":"pc.ram""#;
    let dropped_ram = libvirt
        && pairs
            .iter()
            .any(|(o, v)| o == "-object" && v.as_deref().is_some_and(|v| v.contains(ram_object)));
    let vhost_user = vhost_user_netdevs(pairs);
    for (opt, val) in pairs {
        let v = val.clone().unwrap_or_default();
        if libvirt {
            let drop = match opt.as_str() {
                "-no-shutdown" | "-audiodev" => true,
                "-overcommit" => v == "mem-lock=off",
                "-object" if v.contains(r#""qom-type":"secret""#) => true,
                "-object" if v.contains(ram_object) => true,
                _ => false,
            };
            if drop {
                continue;
            }
        }
        let mut v = v
            .replace(
                &format!("charmonitor,fd={MONITOR_FD},"),
                "charmonitor,fd=@mon-fd@,",
            )
            .replace(r#","x-use-canonical-path-for-ramblock-id":false"#, "");
        if libvirt && v.contains("/var/lib/libvirt/qemu/ram/") {
            // libvirt's shared RAM without a source is a file in its state directory;
            // virtnet uses a memfd.
            if let Ok(mut j) = serde_json::from_str::<Value>(&v) {
                j["qom-type"] = "memory-backend-memfd".into();
                j.as_object_mut().unwrap().shift_remove("mem-path");
                v = j.to_string();
            }
        }
        if dropped_ram && opt == "-machine" {
            v = v.replace(",memory-backend=pc.ram", "");
        }
        if opt == "-netdev" {
            let mut j: Value = serde_json::from_str(&v).unwrap_or(Value::Null);
            normalise_fds(&mut j);
            v = j.to_string();
        }
        if opt == "-device" {
            if let Ok(mut j) = serde_json::from_str::<Value>(&v) {
                drop_vhost_user_vectors(&mut j, &vhost_user);
                v = j.to_string();
            }
        }
        if opt == "-add-fd" {
            // libvirt writes the vDPA fd as XXXXXXX.
            v = v
                .split(',')
                .map(|kv| if kv.starts_with("fd=") { "fd=N" } else { kv })
                .collect::<Vec<_>>()
                .join(",");
        }
        out.push(format!("{opt} {v}"));
    }
    out
}

/// The `-netdev` values that are JSON.
fn netdevs(pairs: &[(String, Option<String>)]) -> impl Iterator<Item = Value> + '_ {
    pairs
        .iter()
        .filter(|(o, _)| o == "-netdev")
        .filter_map(|(_, v)| serde_json::from_str::<Value>(v.as_deref()?).ok())
}

/// The ids of the vhost-user netdevs.
fn vhost_user_netdevs(pairs: &[(String, Option<String>)]) -> Vec<String> {
    netdevs(pairs)
        .filter(|j| j["type"] == "vhost-user")
        .map(|j| j["id"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Drops `vectors` from a `-device` on one of the `vhost_user` netdevs (virtnet sets
/// `vectors:0` there under TCG, see KNOWN-DIFFERENCES.md).
fn drop_vhost_user_vectors(device: &mut Value, vhost_user: &[String]) {
    let netdev = device["netdev"].as_str().unwrap_or("").to_string();
    if vhost_user.contains(&netdev) {
        if let Some(o) = device.as_object_mut() {
            o.shift_remove("vectors");
        }
    }
}

/// fd-bearing keys become their shape: `"fds":"<2 fds>"`.
fn normalise_fds(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        for key in ["fd", "fds", "vhostfd", "vhostfds"] {
            if let Some(Value::String(s)) = o.get_mut(key) {
                *s = format!("<{} fds>", s.split(':').count());
            }
        }
    }
}

/// The placeholder back ends with fd numbers like libvirt's fakes (2800.., vhost 2200..).
fn fake_fds(backends: Vec<NicBackend>) -> Vec<NicBackend> {
    let numbered = |base: i32, n: usize| (0..n).map(|q| FdRef::Fd(base + q as i32)).collect();
    backends
        .into_iter()
        .map(|b| match b {
            NicBackend::Tap { fds, vhost_fds } => NicBackend::Tap {
                fds: numbered(2800, fds.len()),
                vhost_fds: numbered(2200, vhost_fds.len()),
            },
            NicBackend::Vdpa { fdset_id, .. } => NicBackend::Vdpa {
                fdset_id,
                fd: Some(FdRef::Fd(3000 + fdset_id as i32)),
            },
            other => other,
        })
        .collect()
}

enum Outcome {
    /// `nic_only`: why the whole command line was refused, when it was; `whole`: the first
    /// difference of the whole command line (normalised), `None` when it is the same.
    Match {
        nic_only: Option<String>,
        whole: Option<String>,
    },
    Differ(String),
    Refused(String),
    Skipped(String),
}

fn first_difference(expected: &[String], got: &[String]) -> String {
    let short = |s: &str| {
        if s.len() > 220 {
            format!("{}...", &s[..220])
        } else {
            s.to_string()
        }
    };
    for i in 0..expected.len().max(got.len()) {
        match (expected.get(i), got.get(i)) {
            (Some(e), Some(g)) if e == g => continue,
            (Some(e), Some(g)) => return format!("#{i}: expected {} | got {}", short(e), short(g)),
            (Some(e), None) => return format!("#{i}: missing {}", short(e)),
            (None, Some(g)) => return format!("#{i}: extra {}", short(g)),
            (None, None) => unreachable!(),
        }
    }
    String::new()
}

fn run_case(dir: &Path) -> Outcome {
    let Ok(expected) = fs::read_to_string(dir.join("expected.args")) else {
        return Outcome::Skipped("no expected.args".into());
    };
    let input = fs::read_to_string(dir.join("input.xml"))
        .or_else(|_| fs::read_to_string(dir.join("expected-out.xml")));
    let Ok(input) = input else {
        return Outcome::Skipped("neither input.xml nor expected-out.xml".into());
    };
    let domain = match load_domain(&input) {
        Ok(d) => d,
        Err(errs) => return Outcome::Refused(format!("conf: {}", errs[0].located())),
    };
    let caps = QemuCaps::latest();
    let backends = match NicBackend::placeholders(&domain.devices.interfaces, &caps) {
        Ok(b) => fake_fds(b),
        Err(e) => return Outcome::Refused(format!("backends: {e}")),
    };
    // The monitor passed as an fd, as libvirt and virtnetd do (libvirt's files say @mon-fd@).
    let paths = RuntimePaths {
        qmp_fd: Some(MONITOR_FD),
        memory_dir: Some("/run/virtnet/test/ram".into()),
        // virtnetd confines QEMU by default, with libvirt's -sandbox argument.
        sandbox: true,
        ..RuntimePaths::new("/run/virtnet/test/qmp.sock")
    };
    let (argv, nic_only) = match build_argv(&domain, &caps, &backends, &paths) {
        Ok(a) => (a, None),
        Err(e @ QemuError::UnsupportedDevice { .. }) => {
            match build_nic_argv(&domain, &caps, &backends) {
                Ok(a) => (a, Some(e.to_string())),
                Err(e) => return Outcome::Refused(format!("builder: {e}")),
            }
        }
        Err(e) => return Outcome::Refused(format!("builder: {e}")),
    };
    let want_pairs = parse_args_file(&expected);
    let got_pairs = pair_up(&argv);
    let want = network_items(&want_pairs);
    let got = network_items(&got_pairs);
    if want == got {
        let whole = if nic_only.is_some() {
            None
        } else {
            let (w, g) = (
                whole_items(&want_pairs, true),
                whole_items(&got_pairs, false),
            );
            (w != g).then(|| first_difference(&w, &g))
        };
        Outcome::Match { nic_only, whole }
    } else {
        Outcome::Differ(first_difference(&want, &got))
    }
}

#[test]
fn network_arguments_match_libvirt() {
    let mut names: Vec<(String, PathBuf)> = fs::read_dir(corpus_dir())
        .expect("read corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    names.sort();

    let mut table = String::from("case | result | first difference\n");
    let mut passed = Vec::new();
    let mut whole_same = Vec::new();
    let mut with_input = 0;
    let mut passed_with_input = 0;
    for (name, dir) in &names {
        if !dir.join("expected.args").exists() {
            continue;
        }
        let has_input = dir.join("input.xml").exists();
        if has_input {
            with_input += 1;
        }
        let (result, detail) = match run_case(dir) {
            Outcome::Match { nic_only, whole } => {
                passed.push(name.clone());
                if has_input {
                    passed_with_input += 1;
                }
                match (nic_only, whole) {
                    (None, None) => {
                        whole_same.push(name.clone());
                        ("match", "whole argv: same".to_string())
                    }
                    (None, Some(d)) => ("match", format!("whole argv: {d}")),
                    (Some(why), _) => ("match (nic-only)", format!("whole argv refused: {why}")),
                }
            }
            Outcome::Differ(d) => ("DIFFER", d),
            Outcome::Refused(e) => ("REFUSED", e),
            Outcome::Skipped(why) => ("skipped", why),
        };
        table.push_str(&format!("{name} | {result} | {detail}\n"));
    }
    table.push_str(&format!(
        "\n{passed_with_input}/{with_input} cases with input.xml and expected.args match \
         ({} in all); whole command line the same (normalised) in {}: {whole_same:?}\n",
        passed.len(),
        whole_same.len()
    ));
    virtnet_testkit::conformance::write_table("qemu-argv_conformance", &table);
    let missing: Vec<&&str> = MUST_PASS_NETWORK_ONLY
        .iter()
        .chain(MUST_BE_WHOLE_SAME)
        .filter(|c| !passed.iter().any(|p| p == **c))
        .collect();
    assert!(
        missing.is_empty(),
        "cases that must match do not: {missing:?}\n{table}"
    );
    let not_same: Vec<&&str> = MUST_BE_WHOLE_SAME
        .iter()
        .filter(|c| !whole_same.iter().any(|p| p == **c))
        .collect();
    assert!(
        not_same.is_empty(),
        "cases whose whole command line must be libvirt's are not: {not_same:?}\n{table}"
    );
    assert!(
        passed_with_input >= 30,
        "only {passed_with_input}/{with_input} cases match (target: 30)\n{table}"
    );
}

/// libvirt's expected failures of the command-line step must be refused, with a message that
/// says what is wrong.
#[test]
fn expected_failures_are_refused() {
    let dir = corpus_dir();
    for name in MUST_FAIL {
        let text = fs::read_to_string(dir.join(name).join("input.xml")).expect("input.xml");
        let message = match load_domain(&text) {
            Err(errs) => errs[0].to_string(),
            Ok(domain) => {
                let caps = QemuCaps::latest();
                let backends = NicBackend::placeholders(&domain.devices.interfaces, &caps)
                    .expect("placeholders");
                let paths = RuntimePaths::new("/run/virtnet/test/qmp.sock");
                match build_argv(&domain, &caps, &backends, &paths) {
                    Ok(_) => panic!("{name}: accepted, but libvirt refuses it"),
                    Err(e) => e.to_string(),
                }
            }
        };
        println!("{name}: {message}");
        assert!(
            message.contains("tap") || message.contains("backend"),
            "{name}: the message should say what is wrong: {message}"
        );
    }
}

/// Cases libvirt runs but virtnet refuses at define (the validation layer, as virtnetd's
/// define calls it), with the rule that refuses each: settings nothing in virtnet would apply
/// (see `docs/interface-account.md`). Their command lines are still compared above, since
/// the builder is handed them by the conformance run only.
const REFUSED_AT_DEFINE: &[(&str, Rule)] = &[
    // <bandwidth><inbound floor>: no guaranteed-minimum scheduling.
    ("net-bandwidth2", Rule::BandwidthFloor),
    // <coalesce>: no interrupt coalescing set on taps.
    ("net-coalesce", Rule::CoalesceNotEnforced),
    // Host-side <ip>/<route> on an ethernet tap: not set yet.
    ("net-eth-hostip", Rule::EthernetHostIp),
    // <virtualport type='802.1Qbg'> on VFs: no VDP support; <model type='rtl8139'/> on a VF,
    // which is passed through as itself (libvirt keeps and ignores it).
    ("net-hostdev", Rule::VirtualPortNotSupported),
    ("net-hostdev", Rule::HostdevModel),
    ("net-hostdev-multidomain", Rule::VirtualPortNotSupported),
    ("net-hostdev-multidomain", Rule::HostdevModel),
    ("net-hostdev-vfio", Rule::VirtualPortNotSupported),
    ("net-hostdev-vfio", Rule::HostdevModel),
    (
        "net-hostdev-vfio-multidomain",
        Rule::VirtualPortNotSupported,
    ),
    ("net-hostdev-vfio-multidomain", Rule::HostdevModel),
    // MidoNet ports. (An Open vSwitch port on a network, net-openvswitch, is defined: its
    // network's kind decides at start.)
    ("net-midonet", Rule::VirtualPortNotSupported),
    // <tune><sndbuf> on a network NIC, which virtnet runs on a vhost-user switch port.
    ("net-mtu", Rule::SndbufNeedsTap),
    // passt (and its guest addresses).
    ("net-user-passt", Rule::PasstNotSupported),
    ("net-user-passt", Rule::GuestIpNotApplied),
    // vDPA.
    ("net-vdpa", Rule::VdpaNotSupported),
    ("net-vdpa-multiqueue", Rule::VdpaNotSupported),
    // <driver name='vhost'/> on a TCG guest (<domain type='qemu'>).
    ("net-virtio-vhost", Rule::VhostNetOnTcg),
    // libvirt's own "incorrect" case: vhost on TCG, device paths virtnet never opens,
    // <driver> on an e1000.
    ("tap-vhost-incorrect", Rule::VhostNetOnTcg),
    ("tap-vhost-incorrect", Rule::BackendNotApplied),
    ("tap-vhost-incorrect", Rule::DriverNeedsVirtio),
];

/// Every case that loads is either accepted by the validation layer at define or listed in
/// [`REFUSED_AT_DEFINE`] with the rule that refuses it: a refusal of libvirt's own test data
/// is deliberate and written down, never a surprise.
#[test]
fn define_refusals_of_libvirt_cases_are_listed() {
    let mut names: Vec<(String, PathBuf)> = fs::read_dir(corpus_dir())
        .expect("read corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    names.sort();
    let mut wrong = Vec::new();
    for (name, dir) in &names {
        let input = fs::read_to_string(dir.join("input.xml"))
            .or_else(|_| fs::read_to_string(dir.join("expected-out.xml")));
        let Ok(input) = input else { continue };
        let Ok(domain) = load_domain(&input) else {
            continue;
        };
        let got: Vec<Rule> = match validate_domain(Operation::Define, &domain, None) {
            Ok(()) => Vec::new(),
            Err(r) => r.0.iter().map(|r| r.rule).collect(),
        };
        let want: Vec<Rule> = REFUSED_AT_DEFINE
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, r)| *r)
            .collect();
        let mut got_set = Vec::new();
        for r in &got {
            if !got_set.contains(r) {
                got_set.push(*r);
            }
        }
        if got_set != want {
            wrong.push(format!("(\"{name}\", {got:?}) want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}
