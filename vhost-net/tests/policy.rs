//! Port policies against vhost-user frontends in the test process: VLAN access ports and
//! trunks (tags added and removed at the port, learning and flooding per VLAN, frames of
//! other VLANs dropped and counted), port isolation, rate limits and `set-policy`.

mod common;

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use virtnet_vhost_net::control::{execute_line, Request};
use virtnet_vhost_net::vnet_hdr::VnetHdr;
use virtnet_vhost_net::{DropReason, PortConfig, Switch, SwitchConfig};
use virtnet_vswitch_control::{NativeMode, NativeVlan, PortPolicy, PortVlan, TokenBucket};

fn add(sw: &Switch, dir: &Path, name: &str, policy: PortPolicy) -> (TestGuest, UnixListener) {
    let (l, path) = listen(dir, name);
    let mut cfg = PortConfig::new(name, &path);
    cfg.policy = policy;
    sw.add_port(cfg).unwrap();
    let mut g = TestGuest::new(accept(&l), LINUX_LIKE, 1, 2048);
    g.post_rx(0, 128);
    wait_for(&format!("port {name} ready"), || {
        sw.list_ports()
            .iter()
            .any(|p| p.name == name && p.ready_queues >= 1)
    });
    (g, l)
}

fn access(id: u16) -> PortPolicy {
    PortPolicy {
        vlan: Some(PortVlan {
            tags: vec![id],
            trunk: false,
            native: None,
        }),
        ..PortPolicy::default()
    }
}

fn trunk(tags: &[u16], native: Option<(u16, NativeMode)>) -> PortPolicy {
    PortPolicy {
        vlan: Some(PortVlan {
            tags: tags.to_vec(),
            trunk: true,
            native: native.map(|(id, mode)| NativeVlan { id, mode }),
        }),
        ..PortPolicy::default()
    }
}

/// `f` with an 802.1Q tag of `vid` after the addresses.
fn tag(f: &[u8], vid: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&vid.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

fn drops(sw: &Switch, port: &str, r: DropReason) -> u64 {
    sw.port_counters(port).unwrap().drop_count(r)
}

fn plain() -> VnetHdr {
    VnetHdr::default()
}

#[test]
fn vlans_access_ports_and_trunks() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Switch::new(SwitchConfig::default());
    let (mut a10, _l1) = add(&sw, dir.path(), "a10", access(10));
    let (mut b10, _l2) = add(&sw, dir.path(), "b10", access(10));
    let (mut c20, _l3) = add(&sw, dir.path(), "c20", access(20));
    let (mut t, _l4) = add(&sw, dir.path(), "t", trunk(&[10, 20], None));
    let (mut n, _l5) = add(&sw, dir.path(), "none", PortPolicy::default());

    // A broadcast in VLAN 10 reaches the other access port untagged and the trunk tagged,
    // not VLAN 20 nor the untagged network.
    let f = frame([0xff; 6], mac(1), 60, 1);
    a10.send(0, &plain(), &f);
    assert_eq!(b10.recv(0).frame, f);
    assert_eq!(t.recv(0).frame, tag(&f, 10), "tagged towards the trunk");
    c20.expect_nothing(0);
    n.expect_nothing(0);

    // The trunk's frame tagged 20 reaches VLAN 20 untagged only.
    let f = frame([0xff; 6], mac(4), 70, 2);
    t.send(0, &plain(), &tag(&f, 20));
    assert_eq!(c20.recv(0).frame, f, "tag removed at the access port");
    a10.expect_nothing(0);
    b10.expect_nothing(0);
    n.expect_nothing(0);

    // Learning is per VLAN: mac(1) is known in VLAN 10 only, so a frame to it in VLAN 20
    // is flooded in VLAN 20 (to nobody but the trunk) and never leaks to a10.
    let f = frame(mac(1), mac(3), 60, 3);
    c20.send(0, &plain(), &f);
    assert_eq!(t.recv(0).frame, tag(&f, 20));
    a10.expect_nothing(0);
    let f = frame(mac(1), mac(4), 60, 4);
    t.send(0, &plain(), &tag(&f, 10));
    assert_eq!(
        a10.recv(0).frame,
        f,
        "unicast in VLAN 10 to the learned port"
    );
    b10.expect_nothing(0);

    // Dropped and counted where they came from: a tagged frame on an access port, a tag
    // not in the trunk's list, an untagged frame on a trunk without a native VLAN.
    a10.send(0, &plain(), &tag(&frame([0xff; 6], mac(1), 60, 5), 10));
    t.send(0, &plain(), &tag(&frame([0xff; 6], mac(4), 60, 6), 30));
    t.send(0, &plain(), &frame([0xff; 6], mac(4), 60, 7));
    a10.wait_tx_done(0);
    t.wait_tx_done(0);
    for g in [&mut a10, &mut b10, &mut c20, &mut t, &mut n] {
        g.expect_nothing(0);
    }
    assert_eq!(drops(&sw, "a10", DropReason::VlanNotAllowed), 1);
    assert_eq!(drops(&sw, "t", DropReason::VlanNotAllowed), 2);

    // The untagged network is apart, and its tags are payload.
    let f = tag(&frame([0xff; 6], mac(5), 60, 8), 10);
    n.send(0, &plain(), &f);
    n.wait_tx_done(0);
    for g in [&mut a10, &mut b10, &mut c20, &mut t] {
        g.expect_nothing(0);
    }
    let macs = sw.mac_table();
    assert!(macs
        .iter()
        .any(|e| e.port == "none" && e.vlan.is_none() && e.mac == "52:54:00:12:34:05"));
    assert!(macs
        .iter()
        .any(|e| e.port == "a10" && e.vlan == Some(10) && e.mac == "52:54:00:12:34:01"));
}

#[test]
fn native_vlan_untagged_and_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Switch::new(SwitchConfig::default());
    let (mut a, _l1) = add(&sw, dir.path(), "a", access(10));
    let (mut u, _l2) = add(
        &sw,
        dir.path(),
        "u",
        trunk(&[10, 20], Some((10, NativeMode::Untagged))),
    );
    let (mut tg, _l3) = add(
        &sw,
        dir.path(),
        "tg",
        trunk(&[10], Some((10, NativeMode::Tagged))),
    );
    // Untagged from the native-untagged trunk is VLAN 10: plain to a, tagged to tg.
    let f = frame([0xff; 6], mac(2), 60, 1);
    u.send(0, &plain(), &f);
    assert_eq!(a.recv(0).frame, f);
    assert_eq!(tg.recv(0).frame, tag(&f, 10));
    // From a (VLAN 10): untagged to u (its native VLAN leaves untagged), tagged to tg.
    let f = frame([0xff; 6], mac(1), 60, 2);
    a.send(0, &plain(), &f);
    assert_eq!(u.recv(0).frame, f);
    assert_eq!(tg.recv(0).frame, tag(&f, 10));
    // Untagged from the native-tagged trunk is VLAN 10 too.
    let f = frame([0xff; 6], mac(3), 60, 3);
    tg.send(0, &plain(), &f);
    assert_eq!(a.recv(0).frame, f);
    assert_eq!(u.recv(0).frame, f);
}

#[test]
fn isolated_ports_reach_only_ports_that_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Switch::new(SwitchConfig::default());
    let iso = PortPolicy {
        isolated: true,
        ..PortPolicy::default()
    };
    let (mut i1, _l1) = add(&sw, dir.path(), "i1", iso.clone());
    let (mut i2, _l2) = add(&sw, dir.path(), "i2", iso);
    let (mut o, _l3) = add(&sw, dir.path(), "o", PortPolicy::default());
    // Flood from an isolated port: only the open one.
    let f = frame([0xff; 6], mac(1), 60, 1);
    i1.send(0, &plain(), &f);
    assert_eq!(o.recv(0).frame, f);
    i2.expect_nothing(0);
    // Flood from the open port: both isolated ones.
    let f = frame([0xff; 6], mac(3), 60, 2);
    o.send(0, &plain(), &f);
    assert_eq!(i1.recv(0).frame, f);
    assert_eq!(i2.recv(0).frame, f);
    // Learned unicast between isolated ports: nowhere.
    let f = frame(mac(1), mac(2), 60, 3);
    i2.send(0, &plain(), &f);
    i2.wait_tx_done(0);
    i1.expect_nothing(0);
    o.expect_nothing(0);
    // Unicast from isolated to open and back.
    let f = frame(mac(3), mac(2), 60, 4);
    i2.send(0, &plain(), &f);
    assert_eq!(o.recv(0).frame, f);
    let f = frame(mac(2), mac(3), 60, 5);
    o.send(0, &plain(), &f);
    assert_eq!(i2.recv(0).frame, f);
}

/// Sends `n` frames of `len` bytes from `g` to `to` at once (they fit in its ring), then
/// receives until `n` arrived or nothing came for 500 ms; returns how many arrived and
/// when the last one did, in seconds after the sending.
fn burst(g: &mut TestGuest, to: &mut TestGuest, n: usize, len: usize) -> (usize, f64) {
    let f = frame(mac(2), mac(1), len - 14, 1);
    let t0 = Instant::now();
    for _ in 0..n {
        g.send(0, &plain(), &f);
    }
    let mut got = 0;
    let mut last = 0.0;
    while got < n {
        match to.recv_timeout(0, Duration::from_millis(500)) {
            Some(rx) => {
                assert_eq!(rx.frame, f);
                got += 1;
                last = t0.elapsed().as_secs_f64();
            }
            None => break,
        }
    }
    (got, last)
}

fn bucket(average_kib: u64, burst_kib: u64) -> Option<TokenBucket> {
    Some(TokenBucket {
        average_kib,
        peak_kib: None,
        burst_kib: Some(burst_kib),
    })
}

fn set_policy(sw: &Switch, line: &str) {
    let r = execute_line(sw, line);
    assert!(r.ok, "{line}: {r:?}");
}

#[test]
fn rates_shape_both_directions_and_set_policy_replaces_them_live() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Switch::new(SwitchConfig::default());
    // Outbound 64 KiB/s with a 16 KiB bucket on a, nothing on b.
    let lim = PortPolicy {
        outbound: bucket(64, 16),
        ..PortPolicy::default()
    };
    let (mut a, _l1) = add(&sw, dir.path(), "a", lim);
    let (mut b, _l2) = add(&sw, dir.path(), "b", PortPolicy::default());
    // b is learned first so a's frames are unicast.
    b.send(0, &plain(), &frame([0xff; 6], mac(2), 60, 0));
    a.recv(0);

    // Outbound: 100 KiB leave a's ring at 64 KiB/s after the 16 KiB burst: ~1.3 s, no loss.
    let (got, secs) = burst(&mut a, &mut b, 100, 1024);
    assert_eq!(got, 100, "shaped, not dropped");
    let want = (100.0 - 16.0) / 64.0;
    assert!(
        (secs - want).abs() < want * 0.15,
        "{secs:.2} s, want {want:.2}"
    );
    assert_eq!(drops(&sw, "a", DropReason::RateLimited), 0);

    // Live: the limit removed (set-policy over the control protocol): at once.
    set_policy(
        &sw,
        Request::SetPolicy {
            name: "a".into(),
            policy: PortPolicy::default(),
        }
        .to_line()
        .trim(),
    );
    let (got, secs) = burst(&mut a, &mut b, 100, 1024);
    assert_eq!(got, 100);
    assert!(secs < 0.5, "{secs:.2} s without a limit");

    // Live: inbound 64 KiB/s, 8 KiB bucket on b: held in b's queue and released at the rate.
    set_policy(
        &sw,
        r#"{"cmd":"set-policy","name":"b","policy":{"inbound":{"average_kib":64,"burst_kib":8}}}"#,
    );
    let (got, secs) = burst(&mut a, &mut b, 64, 1024);
    assert_eq!(got, 64, "held, not dropped");
    let want = (64.0 - 8.0) / 64.0;
    assert!(
        (secs - want).abs() < want * 0.15,
        "{secs:.2} s, want {want:.2}"
    );
    assert_eq!(drops(&sw, "b", DropReason::RateLimited), 0);

    // More than the queue holds (64 KiB) at once: the rest is dropped and counted on b.
    std::thread::sleep(Duration::from_millis(200));
    let f = frame(mac(2), mac(1), 1024 - 14, 1);
    for round in 0..2 {
        for _ in 0..150 {
            a.send(0, &plain(), &f);
        }
        a.wait_tx_done(0);
        let _ = round;
    }
    let dropped = drops(&sw, "b", DropReason::RateLimited);
    assert!((150..=240).contains(&dropped), "dropped {dropped} of 300");
    let mut got = 0;
    while b.recv_timeout(0, Duration::from_millis(500)).is_some() {
        got += 1;
    }
    assert_eq!(got as u64 + dropped, 300);

    // Refused, nothing changed: a nonsense policy, an unknown port, a zero rate.
    for (line, want) in [
        (
            r#"{"cmd":"set-policy","name":"b","policy":{"vlan":{"tags":[5000]}}}"#,
            "VLAN id 5000 is out of range",
        ),
        (
            r#"{"cmd":"set-policy","name":"zz","policy":{}}"#,
            "no port named 'zz'",
        ),
        (
            r#"{"cmd":"set-policy","name":"b","policy":{"inbound":{"average_kib":0}}}"#,
            "inbound average rate 0",
        ),
        (
            r#"{"cmd":"set-policy","name":"b","policy":{"filter":{"mac":"52:54:00:12:34:02","parts":["no-mac-spoofing"]}}}"#,
            "does not change a port's filter",
        ),
    ] {
        let r = execute_line(&sw, line);
        assert!(!r.ok);
        assert!(r.error.as_deref().unwrap().contains(want), "{r:?}");
    }
    let (got, secs) = burst(&mut a, &mut b, 40, 1024);
    assert_eq!(got, 40);
    assert!(secs > 0.4, "b's limit still holds: {secs:.2} s");
}
