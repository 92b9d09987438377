//! The switch against vhost-user frontends in the test process: learning, flooding,
//! broadcast, mergeable RX, whole TSO frames, offload fallbacks, multi-queue, ports
//! added and removed at run time, reconnect after a switch restart, and the control socket.

mod common;

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use common::*;
use virtnet_vhost_net::control::{ControlClient, ControlServer, Request};
use virtnet_vhost_net::vnet_hdr::{checksum, VnetHdr, F_NEEDS_CSUM, GSO_TCPV4};
use virtnet_vhost_net::{DropReason, PortConfig, SocketMode, Switch, SwitchConfig};

fn switch() -> Switch {
    Switch::new(SwitchConfig::default())
}

fn wait_ready(sw: &Switch, name: &str, qps: u16) {
    wait_for(&format!("port {name} ready"), || {
        sw.list_ports()
            .iter()
            .any(|p| p.name == name && p.ready_queues >= qps)
    });
}

fn add_guest(
    sw: &Switch,
    dir: &Path,
    name: &str,
    features: u64,
    qps: u16,
    rx_len: u32,
) -> (TestGuest, UnixListener) {
    let (l, path) = listen(dir, name);
    let mut cfg = PortConfig::new(name, &path);
    cfg.queues = qps;
    sw.add_port(cfg).unwrap();
    let mut g = TestGuest::new(accept(&l), features, qps as usize, rx_len);
    for qp in 0..qps as usize {
        g.post_rx(qp, 128);
    }
    wait_ready(sw, name, qps);
    (g, l)
}

fn plain() -> VnetHdr {
    VnetHdr::default()
}

#[test]
fn learning_flooding_broadcast_and_no_hairpin() {
    let dir = tempfile::tempdir().unwrap();
    let sw = switch();
    let (mut a, _la) = add_guest(&sw, dir.path(), "a", LINUX_LIKE, 1, 2048);
    let (mut b, _lb) = add_guest(&sw, dir.path(), "b", LINUX_LIKE, 1, 2048);
    let (mut c, _lc) = add_guest(&sw, dir.path(), "c", LINUX_LIKE, 1, 2048);

    // Unknown unicast from a to b: flooded to b and c.
    let f1 = frame(mac(2), mac(1), 100, 1);
    a.send(0, &plain(), &f1);
    assert_eq!(b.recv(0).frame, f1);
    assert_eq!(c.recv(0).frame, f1);
    a.expect_nothing(0);

    // b answers a: a is learned, so only a gets it.
    let f2 = frame(mac(1), mac(2), 60, 2);
    b.send(0, &plain(), &f2);
    assert_eq!(a.recv(0).frame, f2);
    c.expect_nothing(0);

    // Now b is known too: a → b is unicast.
    let f3 = frame(mac(2), mac(1), 1400, 3);
    a.send(0, &plain(), &f3);
    assert_eq!(b.recv(0).frame, f3);
    c.expect_nothing(0);

    // Broadcast from c reaches a and b, not c.
    let f4 = frame([0xff; 6], mac(3), 46, 4);
    c.send(0, &plain(), &f4);
    assert_eq!(a.recv(0).frame, f4);
    assert_eq!(b.recv(0).frame, f4);
    c.expect_nothing(0);

    // No hairpin: a frame for an address learned on the sender's own port goes nowhere.
    let f5 = frame(mac(1), mac(9), 60, 5);
    a.send(0, &plain(), &f5);
    a.wait_tx_done(0);
    a.expect_nothing(0);
    b.expect_nothing(0);
    c.expect_nothing(0);

    let macs = sw.mac_table();
    let port_of = |m: &str| macs.iter().find(|e| e.mac == m).map(|e| e.port.clone());
    assert_eq!(port_of("52:54:00:12:34:01").as_deref(), Some("a"));
    assert_eq!(port_of("52:54:00:12:34:02").as_deref(), Some("b"));
    assert_eq!(port_of("52:54:00:12:34:03").as_deref(), Some("c"));

    let ports = sw.list_ports();
    let pa = ports.iter().find(|p| p.name == "a").unwrap();
    assert_eq!(pa.counters.rx_packets, 3);
    assert_eq!(
        pa.counters.rx_bytes,
        (f1.len() + f3.len() + f5.len()) as u64
    );
    assert_eq!(pa.counters.tx_packets, 2);
    assert_eq!(pa.counters.total_drops(), 0);
    assert!(pa.connected);
}

#[test]
fn tso_frame_crosses_whole_in_mergeable_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let sw = switch();
    let (mut a, _la) = add_guest(&sw, dir.path(), "a", LINUX_LIKE, 1, 2048);
    let (mut b, _lb) = add_guest(&sw, dir.path(), "b", LINUX_LIKE, 1, 4096);
    // An IPv4/TCP frame of 64 KiB - 1 with a partial checksum and TSO metadata.
    let total = 14 + 65535;
    let mut f = frame(mac(2), mac(1), total - 14, 9);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 14 + 20 + 20,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
    };
    a.send(0, &hdr, &f);
    let rx = b.recv(0);
    assert_eq!(rx.frame.len(), f.len(), "the TSO frame arrives whole");
    assert_eq!(rx.frame, f);
    assert_eq!(rx.hdr, hdr, "virtio-net header preserved");
    assert_eq!(rx.num_buffers as usize, (12 + f.len()).div_ceil(4096));
    assert!(rx.num_buffers > 1);
}

#[test]
fn offloads_fall_back_for_a_guest_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let sw = switch();
    let (mut a, _la) = add_guest(&sw, dir.path(), "a", LINUX_LIKE, 1, 2048);
    // A legacy-ish guest: no GUEST_CSUM, no GUEST_TSO, no MRG_RXBUF, 10-byte header.
    let old = F_PROTOCOL | F_CSUM | F_HOST_TSO4;
    let (mut b, _lb) = add_guest(&sw, dir.path(), "b", old, 1, 2048);
    assert_eq!(b.hdr_len, 10);

    // a learns b's address first.
    b.send(0, &plain(), &frame(mac(1), mac(2), 50, 0));
    a.recv(0);

    // Partial checksum: completed by the switch for b.
    let mut f = frame(mac(2), mac(1), 200, 7);
    f[20..22].copy_from_slice(&[0xab, 0xcd]); // pseudo-header sum
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        csum_start: 14,
        csum_offset: 6,
        ..Default::default()
    };
    a.send(0, &hdr, &f);
    let rx = b.recv(0);
    assert_eq!(
        rx.hdr.flags, 0,
        "no NEEDS_CSUM towards a guest without GUEST_CSUM"
    );
    assert_eq!(checksum(0xabcd, &rx.frame[14..]), 0, "checksum completed");
    assert_eq!(rx.frame[..20], f[..20]);

    // A TCP/IPv4 TSO frame: b cannot take it whole, so the switch segments it.
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 13) as u8).collect();
    let big = tcp4_frame(mac(2), mac(1), 1000, &payload);
    let gso = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        gso_size: 1448,
        hdr_len: 54,
        csum_start: 34,
        csum_offset: 16,
    };
    a.send(0, &gso, &big);
    let mut got = Vec::new();
    let mut seq = 1000u32;
    for i in 0..payload.len().div_ceil(1448) {
        let rx = b.recv(0);
        let f = &rx.frame;
        assert_eq!(rx.hdr.gso_type, 0, "segments are plain frames");
        assert!(
            f.len() <= 14 + 1500,
            "segment {i} fits the MTU: {}",
            f.len()
        );
        assert_eq!(
            checksum(0, &f[14..34]),
            0,
            "IPv4 header checksum of segment {i}"
        );
        let tcp_len = f.len() - 34;
        let mut pseudo = f[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        pseudo.extend_from_slice(&f[34..]);
        assert_eq!(checksum(0, &pseudo), 0, "TCP checksum of segment {i}");
        assert_eq!(u32::from_be_bytes([f[38], f[39], f[40], f[41]]), seq);
        let last = (i + 1) * 1448 >= payload.len();
        assert_eq!(f[47] & 0x08 != 0, last, "PSH only on the last segment");
        seq += (f.len() - 54) as u32;
        got.extend_from_slice(&f[54..]);
    }
    assert_eq!(got, payload, "the payload arrives complete, in order");
    b.expect_nothing(0);

    // UDP fragmentation offload cannot be segmented here: dropped and counted on b.
    let ufo = VnetHdr {
        gso_type: 3,
        gso_size: 1448,
        ..Default::default()
    };
    a.send(0, &ufo, &frame(mac(2), mac(1), 3000, 1));
    a.wait_tx_done(0);
    b.expect_nothing(0);
    let cb = sw.port_counters("b").unwrap();
    assert_eq!(cb.drop_count(DropReason::OffloadUnsupported), 1);
    assert_eq!(cb.total_drops(), 1, "{cb:?}");
}

/// An Ethernet/IPv4/TCP frame with a partial TCP checksum (pseudo-header sum), as a
/// guest with TSO sends it.
fn tcp4_frame(dst: [u8; 6], src: [u8; 6], seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (40 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x50]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn multiqueue_keeps_the_queue_pair() {
    let dir = tempfile::tempdir().unwrap();
    let sw = switch();
    let (mut a, _la) = add_guest(&sw, dir.path(), "a", LINUX_LIKE | F_MQ, 2, 2048);
    let (mut b, _lb) = add_guest(&sw, dir.path(), "b", LINUX_LIKE | F_MQ, 2, 2048);
    let f0 = frame(mac(2), mac(1), 80, 1);
    let f1 = frame(mac(2), mac(1), 90, 2);
    a.send(0, &plain(), &f0);
    assert_eq!(b.recv(0).frame, f0);
    a.send(1, &plain(), &f1);
    assert_eq!(b.recv(1).frame, f1, "queue pair 1 → queue pair 1");
    b.expect_nothing(0);
    b.send(1, &plain(), &frame(mac(1), mac(2), 70, 3));
    assert_eq!(a.recv(1).frame.len(), 84);
    let p = sw.list_ports();
    assert_eq!(p[0].queues, 2);
    assert_eq!(p[0].ready_queues, 2);
}

#[test]
fn ports_come_and_go_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let sw = switch();
    let (mut a, _la) = add_guest(&sw, dir.path(), "a", LINUX_LIKE, 1, 2048);
    let (mut b, _lb) = add_guest(&sw, dir.path(), "b", LINUX_LIKE, 1, 2048);
    b.send(0, &plain(), &frame(mac(1), mac(2), 50, 0));
    a.recv(0);

    // A third port joins (server mode this time: the frontend connects).
    let path = dir.path().join("c.sock");
    let mut cfg = PortConfig::new("c", &path);
    cfg.mode = SocketMode::Server;
    sw.add_port(cfg.clone()).unwrap();
    assert!(path.exists(), "server-mode socket created by add-port");
    let err = sw.add_port(cfg).unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
    let s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let mut c = TestGuest::new(s, LINUX_LIKE, 1, 2048);
    c.post_rx(0, 64);
    wait_ready(&sw, "c", 1);
    let bc = frame([0xff; 6], mac(3), 60, 1);
    c.send(0, &plain(), &bc);
    assert_eq!(a.recv(0).frame, bc);
    assert_eq!(b.recv(0).frame, bc);

    // b leaves: its address is forgotten, floods reach only a and c.
    sw.del_port("b").unwrap();
    assert!(sw.mac_table().iter().all(|e| e.port != "b"));
    let to_b = frame(mac(2), mac(1), 60, 2);
    a.send(0, &plain(), &to_b);
    assert_eq!(c.recv(0).frame, to_b, "unknown again: flooded");
    b.expect_nothing(0);
    assert!(sw
        .del_port("b")
        .unwrap_err()
        .to_string()
        .contains("no port named"));

    sw.del_port("c").unwrap();
    assert!(!path.exists(), "server-mode socket removed by del-port");
    assert_eq!(sw.list_ports().len(), 1);
}

#[test]
fn traffic_resumes_after_the_switch_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (la, pa) = listen(dir.path(), "a");
    let (lb, pb) = listen(dir.path(), "b");
    let start = || {
        let sw = switch();
        sw.add_port(PortConfig::new("a", &pa)).unwrap();
        sw.add_port(PortConfig::new("b", &pb)).unwrap();
        sw
    };
    let sw = start();
    let mut a = TestGuest::new(accept(&la), LINUX_LIKE, 1, 2048);
    let mut b = TestGuest::new(accept(&lb), LINUX_LIKE, 1, 2048);
    a.post_rx(0, 64);
    b.post_rx(0, 64);
    wait_ready(&sw, "a", 1);
    wait_ready(&sw, "b", 1);
    for i in 0..5 {
        let f = frame(mac(2), mac(1), 100 + i, i as u8);
        a.send(0, &plain(), &f);
        assert_eq!(b.recv(0).frame, f);
    }

    // The switch goes away (all its threads and connections), the guests stay.
    drop(sw);
    let sw = start();
    a.reconnect(accept(&la));
    b.reconnect(accept(&lb));
    b.post_rx(0, 4); // a kick on the receive queue, as a running guest would do
    a.post_rx(0, 4);
    wait_ready(&sw, "a", 1);
    wait_ready(&sw, "b", 1);
    for i in 0..5 {
        let f = frame(mac(2), mac(1), 200 + i, i as u8);
        a.send(0, &plain(), &f);
        assert_eq!(b.recv(0).frame, f, "traffic resumes after reconnect");
    }
    let f = frame(mac(1), mac(2), 64, 0);
    b.send(0, &plain(), &f);
    assert_eq!(a.recv(0).frame, f);
    assert_eq!(sw.port_counters("a").unwrap().connections, 1);
}

#[test]
fn frontend_restart_is_followed_by_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let sw = switch();
    let (mut a, la) = add_guest(&sw, dir.path(), "a", LINUX_LIKE, 1, 2048);
    let (b, lb) = add_guest(&sw, dir.path(), "b", LINUX_LIKE, 1, 2048);
    // QEMU behind b restarts: a new process, new memory, same socket.
    drop(b);
    let mut b = TestGuest::new(accept(&lb), LINUX_LIKE, 1, 2048);
    b.post_rx(0, 32);
    wait_for("second connection of b", || {
        sw.port_counters("b").unwrap().connections == 2
    });
    wait_ready(&sw, "b", 1);
    let f = frame(mac(2), mac(1), 100, 1);
    a.send(0, &plain(), &f);
    assert_eq!(b.recv(0).frame, f);
    drop(la);
}

#[test]
fn control_socket_drives_the_switch() {
    let dir = tempfile::tempdir().unwrap();
    let sw = std::sync::Arc::new(switch());
    let ctl = dir.path().join("control.sock");
    let server = ControlServer::start(sw.clone(), &ctl).unwrap();
    let mut client = ControlClient::connect(&ctl).unwrap();

    let (la, pa) = listen(dir.path(), "a");
    let req: Request = serde_json::from_str(&format!(
        r#"{{"cmd":"add-port","name":"a","socket":"{}","mode":"client","queues":1}}"#,
        pa.display()
    ))
    .unwrap();
    let r = client.request(&req).unwrap();
    assert!(r.ok, "{r:?}");
    let mut a = TestGuest::new(accept(&la), LINUX_LIKE, 1, 2048);
    a.post_rx(0, 8);
    a.send(0, &plain(), &frame([0xff; 6], mac(1), 50, 0));
    a.wait_tx_done(0);

    let r = client.request(&Request::ListPorts).unwrap();
    let ports = r.ports.unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].name, "a");
    assert!(ports[0].connected);
    assert_eq!(ports[0].counters.rx_packets, 1);
    let r = client.request(&Request::MacTable).unwrap();
    assert_eq!(r.macs.unwrap()[0].mac, "52:54:00:12:34:01");

    let r = client
        .request(&Request::DelPort { name: "zz".into() })
        .unwrap();
    assert!(!r.ok);
    assert!(r.error.unwrap().contains("no port named 'zz'"));
    let bad = virtnet_vhost_net::control::execute_line(&sw, "{\"cmd\":\"frobnicate\"}");
    assert!(!bad.ok && bad.error.unwrap().contains("one JSON object per line"));
    let r = client
        .request(&Request::DelPort { name: "a".into() })
        .unwrap();
    assert!(r.ok);
    server.stop();
    assert!(!ctl.exists());
    let _ = Duration::from_secs(0);
}

#[test]
fn memory_regions_added_and_removed_at_run_time() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    use vhost::vhost_user::message::VhostUserHeaderFlag;
    use vhost::vhost_user::VhostUserFrontend;
    use vhost::VhostUserMemoryRegionInfo;

    let dir = tempfile::tempdir().unwrap();
    let sw = switch();
    let (mut a, _la) = add_guest(&sw, dir.path(), "a", LINUX_LIKE, 1, 2048);
    let (lb, pb) = listen(dir.path(), "b");
    sw.add_port(PortConfig::new("b", &pb)).unwrap();
    let mut b = TestGuest::new(accept(&lb), LINUX_LIKE, 1, 2048);

    // Hot-added guest memory (ADD_MEM_REG), and a receive buffer that lives in it.
    let extra = memfd(1 << 20);
    let region = VhostUserMemoryRegionInfo {
        guest_phys_addr: 0x1000_0000,
        memory_size: 1 << 20,
        userspace_addr: 0x7f10_0000_0000,
        mmap_offset: 0,
        mmap_handle: extra.as_raw_fd(),
    };
    // Ask for an ack, as QEMU does: without one the request is fire-and-forget, and the
    // frames below could overtake the memory update.
    b.frontend.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
    b.frontend.add_mem_region(&region).unwrap();
    b.write_desc(0, 0, 0x1000_0000 + 0x800, 2048, DESC_F_WRITE, 0);
    b.publish(0, 0);
    wait_ready(&sw, "b", 1);
    let f = frame([0xff; 6], mac(1), 100, 5);
    a.send(0, &plain(), &f);
    wait_for("delivery into the new region", || b.used_idx(0) == 1);
    let mut got = vec![0u8; 12 + f.len()];
    extra.read_exact_at(&mut got, 0x800).unwrap();
    assert_eq!(
        &got[12..],
        &f[..],
        "frame written into the hot-added region"
    );

    // The region goes away (REM_MEM_REG): a buffer there is now outside guest memory.
    b.frontend.remove_mem_region(&region).unwrap();
    b.frontend.set_hdr_flags(VhostUserHeaderFlag::empty());
    b.write_desc(0, 1, 0x1000_0000 + 0x800, 2048, DESC_F_WRITE, 0);
    b.publish(0, 1);
    a.send(0, &plain(), &f);
    wait_for("bad_address on b", || {
        sw.port_counters("b")
            .unwrap()
            .drop_count(DropReason::BadAddress)
            == 1
    });
    assert_eq!(b.used_idx(0), 2, "the bad buffer is returned empty");
}
