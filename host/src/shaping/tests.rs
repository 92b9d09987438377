use super::*;
use std::process::Command as Cmd;
use virtnet_testkit::{require, with_netns, Need};

fn sh(cmd: &str) -> String {
    let out = Cmd::new("sh").args(["-c", cmd]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn tap(name: &str) -> u32 {
    sh(&format!(
        "ip tuntap add dev {name} mode tap && ip link set {name} up"
    ));
    current_ifindex(name).unwrap()
}

fn rate(average: u64, peak: Option<u64>, burst: Option<u64>) -> RateLimit {
    RateLimit {
        average,
        peak,
        burst,
    }
}

/// The commands and the batch, as values: what libvirt's tc calls become.
#[test]
fn commands_and_batch_are_libvirts_mapping_in_bytes() {
    let cmds = egress_commands("vnet0", &rate(122, Some(244), Some(32)));
    let text: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
    assert_eq!(
        text,
        [
            "qdisc replace dev vnet0 root handle 1: htb default 1",
            "class replace dev vnet0 parent 1: classid 1:1 htb rate 124928bps ceil 249856bps \
             burst 32768b"
        ]
    );
    let spec = ShapeSpec {
        dev: "vnet0".into(),
        ifindex: 7,
        inbound: None,
        outbound: Some(rate(1000, Some(2000), None)),
        macvtap: false,
    };
    let batch = ingress_batch(&spec, &["virtnet-bw-vnet0-3".into()]);
    let text: Vec<String> = batch.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        text,
        [
            r#"{"delete":{"table":{"family":"netdev","name":"virtnet-bw-vnet0-3"}}}"#,
            r#"{"add":{"table":{"family":"netdev","name":"virtnet-bw-vnet0-7"}}}"#,
            r#"{"add":{"chain":{"family":"netdev","table":"virtnet-bw-vnet0-7","name":"limit","type":"filter","hook":"ingress","dev":"vnet0","prio":0,"policy":"accept"}}}"#,
            r#"{"add":{"rule":{"family":"netdev","table":"virtnet-bw-vnet0-7","chain":"limit","expr":[{"limit":{"rate":1024000,"per":"second","rate_unit":"bytes","burst":1024000,"burst_unit":"bytes","inv":true}},{"counter":null},{"drop":null}]}}}"#,
            r#"{"add":{"rule":{"family":"netdev","table":"virtnet-bw-vnet0-7","chain":"limit","expr":[{"limit":{"rate":2048000,"per":"second","rate_unit":"bytes","burst":65536,"burst_unit":"bytes","inv":true}},{"counter":null},{"drop":null}]}}}"#,
        ]
    );
}

/// Both directions load on a tap, are replaced by an update, removed idempotently; a stale
/// table of an earlier tap of the same name is dropped, and the undo of a tap whose name
/// was reused removes nothing of the new one.
#[test]
fn shaping_a_tap_loads_updates_and_leaves_nothing() {
    if !require(&[Need::Root, Need::Binary(nft::NFT), Need::Binary(TC)]) {
        return;
    }
    with_netns(|| {
        let idx = tap("bw0");
        let mut spec = ShapeSpec {
            dev: "bw0".into(),
            ifindex: idx,
            inbound: Some(rate(122, Some(244), Some(32))),
            outbound: Some(rate(1220, None, None)),
            macvtap: false,
        };
        apply(&spec).unwrap();
        let q = sh("tc class show dev bw0");
        assert!(q.contains("rate 999424bit ceil 1998Kbit burst 32Kb"), "{q}");
        let t = sh(&format!("nft list table netdev {}", table_name("bw0", idx)));
        assert!(
            t.contains("hook ingress device \"bw0\"")
                && t.contains("limit rate over 1220 kbytes/second burst 1220 kbytes"),
            "{t}"
        );
        // Update: inbound only, another rate; the outbound table goes.
        spec.inbound = Some(rate(1220, None, None));
        spec.outbound = None;
        apply(&spec).unwrap();
        let q = sh("tc class show dev bw0");
        assert!(q.contains("rate 9994Kbit ceil 9994Kbit"), "{q}");
        assert_eq!(list_tables().unwrap(), Vec::<String>::new());
        // And back to outbound only: the qdisc goes.
        spec.inbound = None;
        spec.outbound = Some(rate(10, None, None));
        apply(&spec).unwrap();
        assert!(!sh("tc qdisc show dev bw0").contains("htb"));
        assert_eq!(list_tables().unwrap(), vec![table_name("bw0", idx)]);
        // The tap goes and another one gets its name: the old table (it outlives the tap) is
        // replaced when the new tap is shaped, and the old undo leaves the new one alone.
        sh("ip link del bw0");
        let idx2 = tap("bw0");
        assert_ne!(idx, idx2);
        let spec2 = ShapeSpec {
            ifindex: idx2,
            ..spec.clone()
        };
        apply(&spec2).unwrap();
        assert_eq!(list_tables().unwrap(), vec![table_name("bw0", idx2)]);
        remove("bw0", idx, true).unwrap();
        assert_eq!(list_tables().unwrap(), vec![table_name("bw0", idx2)]);
        remove("bw0", idx2, true).unwrap();
        remove("bw0", idx2, true).unwrap();
        assert!(list_tables().unwrap().is_empty());
        assert!(!sh("tc qdisc show dev bw0").contains("htb"));
    });
}

/// A failure after the first part leaves the tap unshaped: an inbound limit on a device
/// that is not there fails after the nft table loaded, and the table is gone.
#[test]
fn a_failed_shape_leaves_no_table_or_qdisc() {
    if !require(&[Need::Root, Need::Binary(nft::NFT), Need::Binary(TC)]) {
        return;
    }
    with_netns(|| {
        let spec = ShapeSpec {
            dev: "nosuch0".into(),
            ifindex: 999,
            inbound: Some(rate(122, None, None)),
            outbound: Some(rate(122, None, None)),
            macvtap: false,
        };
        // The netdev chain loads for a missing device (hooked by name), the qdisc does not.
        let e = apply(&spec).unwrap_err();
        assert!(matches!(e, HostError::Tc { .. }), "{e}");
        assert!(list_tables().unwrap().is_empty());
    });
}

/// Values HTB cannot hold are the user's to fix: refused naming them, after the nft table of
/// the other direction loaded, and nothing is left.
#[test]
fn values_tc_refuses_are_a_user_error_and_leave_nothing() {
    if !require(&[Need::Root, Need::Binary(nft::NFT), Need::Binary(TC)]) {
        return;
    }
    with_netns(|| {
        let idx = tap("bw1");
        let spec = ShapeSpec {
            dev: "bw1".into(),
            ifindex: idx,
            inbound: Some(rate(1, None, Some(1 << 40))),
            outbound: Some(rate(122, None, None)),
            macvtap: false,
        };
        let e = apply(&spec).unwrap_err();
        assert!(e.is_user_error(), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("cannot enforce <bandwidth><inbound> on 'bw1'")
                && m.contains("Illegal \"burst\"")
                && m.contains("smaller burst"),
            "{m}"
        );
        assert!(list_tables().unwrap().is_empty());
        assert!(!sh("tc qdisc show dev bw1").contains("htb"));
    });
}

/// A root qdisc someone else made on the device (an unmanaged tap's owner) is neither replaced
/// nor removed: refused naming it, and nothing of virtnet's is left.
#[test]
fn a_foreign_root_qdisc_is_kept_and_refused() {
    if !require(&[Need::Root, Need::Binary(nft::NFT), Need::Binary(TC)]) {
        return;
    }
    with_netns(|| {
        let idx = tap("bw2");
        sh("tc qdisc add dev bw2 root handle 5: tbf rate 1mbit burst 10k latency 50ms");
        let spec = ShapeSpec {
            dev: "bw2".into(),
            ifindex: idx,
            inbound: Some(rate(122, None, None)),
            outbound: Some(rate(122, None, None)),
            macvtap: false,
        };
        let e = apply(&spec).unwrap_err();
        assert!(e.is_user_error(), "{e}");
        assert!(e.to_string().contains("qdisc tbf 5: root"), "{e}");
        assert!(sh("tc qdisc show dev bw2").contains("tbf 5:"));
        assert!(list_tables().unwrap().is_empty());
        // Its undo (had it been recorded) would not remove it either.
        remove("bw2", idx, true).unwrap();
        assert!(sh("tc qdisc show dev bw2").contains("tbf 5:"));
    });
}
