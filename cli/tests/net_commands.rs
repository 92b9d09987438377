//! The network commands against a real virtnetd (in-process) and the real virtnet-vswitch:
//! net-define (and its positioned refusal), net-list [--all], net-start, net-info (with the
//! network's UUID; --json), net-dumpxml, net-destroy, net-undefine.

use std::path::Path;
use std::process::Output;

mod common;

use common::Daemon;

/// The daemon (in this process) finds `virtnet-vswitch` in `target/<profile>/`.
fn vswitch_built() {
    let cli = Path::new(env!("CARGO_BIN_EXE_virtnet"));
    virtnet_testkit::vswitch_binary(cli.parent().unwrap());
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn net_commands() {
    vswitch_built();
    let d = Daemon::start();
    let file = d.dir.path().join("sw0.xml");
    std::fs::write(
        &file,
        "<network>\n  <name>sw0</name>\n  <virtualport type='virtnet-vswitch'/>\n</network>\n",
    )
    .unwrap();
    let bad = d.dir.path().join("bad.xml");
    std::fs::write(
        &bad,
        "<network>\n<name>x</name>\n<virtualport type='ovs'/>\n</network>\n",
    )
    .unwrap();
    let o = d.virtnet(&["net-define", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("3:") && text(&o).contains("virtnet-vswitch"),
        "{}",
        text(&o)
    );

    let o = d.virtnet(&["net-define", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Network sw0 defined"), "{}", text(&o));
    let o = d.virtnet(&["net-list"]);
    assert!(!text(&o).contains("sw0"), "active only: {}", text(&o));
    let o = d.virtnet(&["net-list", "--all"]);
    assert!(
        text(&o).contains("sw0") && text(&o).contains("inactive"),
        "{}",
        text(&o)
    );
    let o = d.virtnet(&["net-start", "sw0"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = d.virtnet(&["--json", "net-info", "sw0"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "active");
    let pid = v["pid"].as_i64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // The UUID the daemon generated: in net-info (both forms) and net-dumpxml.
    let uuid = v["uuid"].as_str().unwrap().to_string();
    assert_eq!(uuid.len(), 36, "{v}");
    let o = d.virtnet(&["net-info", "sw0"]);
    assert!(
        text(&o).lines().any(|l| l == format!("UUID:      {uuid}")),
        "{}",
        text(&o)
    );
    let o = d.virtnet(&["net-dumpxml", "sw0"]);
    assert!(
        text(&o).contains("<virtualport type='virtnet-vswitch'/>"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains(&format!("<uuid>{uuid}</uuid>")),
        "{}",
        text(&o)
    );
    let o = d.virtnet(&["net-undefine", "sw0"]);
    assert!(!o.status.success(), "active: refused");
    let o = d.virtnet(&["net-destroy", "sw0"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = d.virtnet(&["net-undefine", "sw0"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = d.virtnet(&["--json", "net-list", "--all"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    let o = d.virtnet(&["net-start", "sw0"]);
    assert!(text(&o).contains("no network named 'sw0'"), "{}", text(&o));
}
