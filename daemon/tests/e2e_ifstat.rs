//! `domifstat` and `domifaddr --source arp` end to end: one TCG guest on a bridge in a private
//! network namespace pings the host's address; `virtnet domifstat` shows the guest's view of
//! its tap's counters (tx: what the guest sent) and the real virsh over `libvirt-sock` the
//! same numbers; the guest's address shows in the host's ARP table through both. A second NIC,
//! on a switch network with a port filter, pings the uplink: its counters come from the switch
//! port and its address from the filter's learning. A third, user-mode NIC has no host
//! device: both refuse its counters saying why.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::e2e::{destroy_leaving_nothing, ready_console};
use common::virsh::virsh;
use common::TestDaemon;
use serde_json::Value;
use virtnet_testkit::{bridge_nic, ip, require, with_netns, Need, TestDomain};

const PINGS: u64 = 10;

/// `target/<profile>/virtnet`, built (or found up to date) by cargo once per run.
fn cli_binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(build_cli).clone()
}

fn build_cli() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_virtnetd")).with_file_name("virtnet");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "virtnet", "--bin", "virtnet"]);
    if bin.parent().and_then(Path::file_name) == Some("release".as_ref()) {
        cmd.arg("--release");
    }
    assert!(cmd.status().unwrap().success(), "cannot build virtnet");
    bin
}

/// `virtnet -c SOCKET ARGS...`: (success, stdout, stderr).
fn virtnet(d: &TestDaemon, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(cli_binary())
        .arg("-c")
        .arg(&d.socket)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `DEV counter N` lines (virsh's and virtnet's domifstat) as counter → N.
fn counters(out: &str) -> BTreeMap<String, u64> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (_, k, v) = (w.next()?, w.next()?, w.next()?);
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[test]
fn domifstat_and_domifaddr_through_the_cli_and_virsh() {
    let Some(qemu) = virtnet_testkit::e2e_qemu() else {
        return;
    };
    if !require(&[Need::Binary("virsh")]) {
        return;
    }
    let guest = virtnet_testkit::guest();
    let cli = cli_binary();
    assert!(cli.is_file());
    let vswitch = common::vswitch();
    with_netns(move || {
        assert!(vswitch.is_file());
        ip("link add br0 type bridge");
        ip("addr add 10.0.8.1/24 dev br0");
        ip("link set br0 up");
        let tmp = virtnet_testkit::traversable_tempdir();
        let d = TestDaemon::start_with(tmp.path(), Some(&qemu));
        let net = "<network><name>sw0</name><virtualport type='virtnet-vswitch'/>\
            <uplink dev='sw0-up'><ip address='10.22.0.1' prefix='24'/></uplink></network>";
        common::e2e::define_and_start_network(&d, net, "sw0");
        let serial = tmp.path().join("serial.sock");
        let mac = "52:54:00:00:08:02";
        let user_mac = "52:54:00:00:08:03";
        let sw_mac = "52:54:00:00:08:04";
        let mut dom = TestDomain::new("ifs", &serial)
            .nic(&bridge_nic(mac, "br0"), mac, Some("10.0.8.2/24"))
            .nic(
                &format!("<interface type='user'><mac address='{user_mac}'/><model type='virtio'/></interface>"),
                user_mac,
                None,
            )
            .nic(
                &format!(
                    "<interface type='network'><mac address='{sw_mac}'/><source network='sw0'/>\
                     <model type='virtio'/><filterref filter='clean-traffic'/></interface>"
                ),
                sw_mac,
                Some("10.22.0.2/24"),
            );
        dom.shared_memory = true;
        assert_eq!(d.define(&dom.xml(guest)).0, 201);

        // A VM that does not run has no counters.
        let (ok, _, err) = virtnet(&d, &["domifstat", "ifs", mac]);
        assert!(!ok && err.contains("not running"), "{err}");

        let (s, v) = d.post("/v1/domains/ifs/start");
        assert_eq!(s, 200, "{v}\n{}", d.log());
        let rt = virtnet_testkit::runtime();
        let mut con = rt.block_on(ready_console(&serial));
        rt.block_on(con.wait_nic_up(mac, Duration::from_secs(120)))
            .unwrap();
        let (_, list) = d.get("/v1/domains/ifs/interfaces");
        let rows = list["interfaces"].as_array().unwrap();
        let tap = rows
            .iter()
            .find(|r| r["mac"] == mac)
            .and_then(|r| r["interface"].as_str())
            .unwrap()
            .to_string();

        let (ok, out, err) = virtnet(&d, &["domifstat", "ifs", &tap]);
        assert!(ok, "{err}");
        let before = counters(&out);
        assert_eq!(before.len(), 8, "{out}");

        let (out, rc) = rt
            .block_on(con.run(
                &format!("ping -c {PINGS} -i 0.2 -W 5 10.0.8.1"),
                Duration::from_secs(60),
            ))
            .unwrap();
        assert_eq!(rc, 0, "the guest's pings: {out}");

        // The CLI by tap name, its JSON by MAC, and virsh: the guest's view.
        let (ok, out, err) = virtnet(&d, &["domifstat", "ifs", &tap]);
        assert!(ok, "{err}");
        assert!(
            out.lines().all(|l| l.starts_with(&format!("{tap} "))),
            "{out}"
        );
        let after = counters(&out);
        let (ok, json, err) = virtnet(&d, &["--json", "domifstat", "ifs", mac]);
        assert!(ok, "{err}");
        let json: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json["source"], format!("tap {tap}"));
        let (ok, vout, err, _) = virsh(&d, &["domifstat", "ifs", &tap]);
        assert!(ok, "virsh domifstat: {err}\n{}", d.log());
        let by_virsh = counters(&vout);
        for k in ["tx_packets", "rx_packets"] {
            assert!(
                after[k] - before[k] >= PINGS,
                "{k}: {} -> {}\n{out}",
                before[k],
                after[k]
            );
            assert!(json[k].as_u64().unwrap() >= after[k]);
            // virsh comes a moment later: the same counts, give or take a few packets.
            assert!(
                by_virsh[k] >= after[k] && by_virsh[k] <= after[k] + 5,
                "{k}: virsh {} virtnet {}\n{vout}",
                by_virsh[k],
                after[k]
            );
        }
        // An ICMP echo with 56 bytes of data is a 98-byte frame.
        assert!(after["tx_bytes"] - before["tx_bytes"] >= PINGS * 98);
        assert_eq!(after["tx_errs"], 0);
        assert_eq!(by_virsh.len(), 8, "{vout}");

        // The user-mode NIC: refused, saying why, through both.
        let (ok, _, err) = virtnet(&d, &["domifstat", "ifs", user_mac]);
        assert!(!ok && err.contains("user-mode"), "{err}");
        let (ok, _, err, _) = virsh(&d, &["domifstat", "ifs", user_mac]);
        assert!(!ok && err.contains("user-mode"), "{err}");

        // Addresses as the host sees them: the guest's ARP entry on br0.
        let (ok, out, err) = virtnet(&d, &["domifaddr", "ifs", "--source", "arp"]);
        assert!(ok, "{err}");
        let line = out
            .lines()
            .find(|l| l.contains(mac))
            .unwrap_or_else(|| panic!("{out}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words, [tap.as_str(), mac, "ipv4", "10.0.8.2/0"], "{out}");
        assert!(
            out.contains(user_mac) && out.contains("none known"),
            "{out}"
        );
        let (ok, json, err) = virtnet(&d, &["--json", "domifaddr", "ifs", mac]);
        assert!(ok, "{err}");
        let json: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json["interfaces"].as_array().unwrap().len(), 1, "{json}");
        assert_eq!(json["interfaces"][0]["addresses"][0]["address"], "10.0.8.2");
        let (ok, vout, err, _) = virsh(&d, &["domifaddr", "ifs", "--source", "arp"]);
        assert!(ok, "virsh domifaddr: {err}");
        let line = vout
            .lines()
            .find(|l| l.contains(mac))
            .unwrap_or_else(|| panic!("{vout}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words, [tap.as_str(), mac, "ipv4", "10.0.8.2/0"], "{vout}");
        assert!(
            !vout.contains(user_mac),
            "libvirt lists only NICs with an address: {vout}"
        );
        // No DHCP server, no guest agent: refused, saying so.
        let (ok, _, err) = virtnet(&d, &["domifaddr", "ifs", "--source", "lease"]);
        assert!(!ok && err.contains("no DHCP server"), "{err}");
        let (ok, _, err, _) = virsh(&d, &["domifaddr", "ifs", "--source", "agent"]);
        assert!(!ok && err.contains("guest agent"), "{err}");

        // The switch NIC: the port's counters, without error counts (virsh leaves them out),
        // and the address the port filter learned.
        rt.block_on(con.wait_nic_up(sw_mac, Duration::from_secs(60)))
            .unwrap();
        let (out, rc) = rt
            .block_on(con.run(
                "i=0; while [ $i -lt 20 ]; do ping -c 1 -W 1 10.22.0.1 >/dev/null && break; \
                 i=$((i+1)); done",
                Duration::from_secs(60),
            ))
            .unwrap();
        assert_eq!(rc, 0, "{out}");
        let (ok, out, err) = virtnet(&d, &["domifstat", "ifs", sw_mac]);
        assert!(ok, "{err}");
        let before = counters(&out);
        assert!(!before.contains_key("rx_errs"), "{out}");
        let (out, rc) = rt
            .block_on(con.run(
                &format!("ping -c {PINGS} -i 0.2 -W 5 10.22.0.1"),
                Duration::from_secs(60),
            ))
            .unwrap();
        assert_eq!(rc, 0, "the guest's pings over the switch: {out}");
        let (ok, out, err) = virtnet(&d, &["domifstat", "ifs", sw_mac]);
        assert!(ok, "{err}");
        let after = counters(&out);
        let (ok, vout, err, _) = virsh(&d, &["domifstat", "ifs", sw_mac]);
        assert!(ok, "virsh domifstat: {err}");
        let by_virsh = counters(&vout);
        assert_eq!(by_virsh.len(), 6, "no error counts: {vout}");
        for k in ["tx_packets", "rx_packets"] {
            assert!(
                after[k] - before[k] >= PINGS,
                "{k}: {before:?} -> {after:?}"
            );
            assert!(
                by_virsh[k] >= after[k] && by_virsh[k] <= after[k] + 5,
                "{vout}"
            );
        }
        let (ok, json, err) = virtnet(&d, &["--json", "domifstat", "ifs", sw_mac]);
        assert!(ok, "{err}");
        assert!(json.contains("switch port"), "{json}");
        let (ok, out, err) = virtnet(&d, &["domifaddr", "ifs", sw_mac]);
        assert!(ok, "{err}");
        assert!(out.contains("10.22.0.2/0"), "{out}");
        let (ok, vout, err, _) = virsh(&d, &["domifaddr", "ifs", "--source", "arp"]);
        assert!(ok, "{err}");
        assert!(
            vout.lines()
                .any(|l| l.contains(sw_mac) && l.contains("10.22.0.2/0")),
            "{vout}"
        );

        destroy_leaving_nothing(&d, "ifs");
    });
}
