//! A guest that breaks the rules: short and oversized frames, descriptors pointing
//! outside its memory, looping and overlong chains, wrong-direction descriptors. Each
//! bad frame is dropped and counted on the offending port, and the switch keeps serving.

mod common;

use common::*;
use virtnet_vhost_net::vnet_hdr::{VnetHdr, GSO_TCPV4};
use virtnet_vhost_net::{DropReason, PortConfig, Switch, SwitchConfig};

struct Setup {
    sw: Switch,
    bad: TestGuest,
    good: TestGuest,
    _dir: tempfile::TempDir,
    _l: Vec<std::os::unix::net::UnixListener>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let sw = Switch::new(SwitchConfig::default());
    let mut ls = Vec::new();
    let mut guests = Vec::new();
    for name in ["bad", "good"] {
        let (l, p) = listen(dir.path(), name);
        sw.add_port(PortConfig::new(name, &p)).unwrap();
        let mut g = TestGuest::new(accept(&l), LINUX_LIKE, 1, 2048);
        g.post_rx(0, 64);
        ls.push(l);
        guests.push(g);
    }
    wait_for("both ports ready", || {
        sw.list_ports().iter().all(|p| p.ready_queues == 1)
    });
    let good = guests.pop().unwrap();
    let bad = guests.pop().unwrap();
    Setup {
        sw,
        bad,
        good,
        _dir: dir,
        _l: ls,
    }
}

/// Writes descriptors `(index, addr, len, flags, next)` and publishes `head` on the
/// bad guest's transmit queue.
fn publish_chain(g: &mut TestGuest, descs: &[(u16, u64, u32, u16, u16)], head: u16) {
    for &(i, addr, len, flags, next) in descs {
        g.write_desc(1, i, addr, len, flags, next);
    }
    g.publish(1, head);
    g.wait_tx_done(0);
}

fn head(g: &TestGuest) -> u16 {
    g.queues[1].avail_idx % QSIZE
}

/// The good port still exchanges traffic with the bad one's neighbours.
fn still_serves(s: &mut Setup, seed: u8) {
    let f = frame([0xff; 6], mac(2), 80, seed);
    s.good.send(0, &VnetHdr::default(), &f);
    assert_eq!(s.bad.recv(0).frame, f, "the switch still forwards");
    let back = frame(mac(2), mac(1), 80, seed);
    s.bad.send(0, &VnetHdr::default(), &back);
    assert_eq!(s.good.recv(0).frame, back);
}

fn drops(s: &Setup, port: &str, r: DropReason) -> u64 {
    s.sw.port_counters(port).unwrap().drop_count(r)
}

#[test]
fn every_kind_of_bad_frame_is_dropped_and_counted() {
    let mut s = setup();
    let scratch = s.bad.scratch();
    let mem_end = MEM_SIZE as u64;

    // Short: header plus 5 bytes.
    s.bad.send(0, &VnetHdr::default(), &[1, 2, 3, 4, 5]);
    s.bad.wait_tx_done(0);
    assert_eq!(drops(&s, "bad", DropReason::ShortFrame), 1);

    // Oversized without GSO: above MTU 1500 (+ tagged Ethernet header).
    s.bad
        .send(0, &VnetHdr::default(), &frame(mac(2), mac(1), 1600, 0));
    s.bad.wait_tx_done(0);
    // Oversized even for GSO: one descriptor of 12 + 70000 bytes (never read).
    let h = head(&s.bad);
    publish_chain(&mut s.bad, &[(h, 0x400_0000, 12 + 70_000, 0, 0)], h);
    assert_eq!(drops(&s, "bad", DropReason::OversizedFrame), 2);

    // Buffer outside guest memory, and one straddling its end.
    let h = head(&s.bad);
    publish_chain(&mut s.bad, &[(h, mem_end + 0x1000, 100, 0, 0)], h);
    let h = head(&s.bad);
    publish_chain(&mut s.bad, &[(h, mem_end - 50, 100, 0, 0)], h);
    // Indirect table outside guest memory.
    let h = head(&s.bad);
    publish_chain(
        &mut s.bad,
        &[(h, u64::MAX - 0xfff, 64, DESC_F_INDIRECT, 0)],
        h,
    );
    assert_eq!(drops(&s, "bad", DropReason::BadAddress), 3);
    still_serves(&mut s, 1);

    // A loop: h → 250 → 251 → 250 ...
    let h = head(&s.bad);
    publish_chain(
        &mut s.bad,
        &[
            (h, scratch, 12, DESC_F_NEXT, 250),
            (250, scratch, 30, DESC_F_NEXT, 251),
            (251, scratch, 30, DESC_F_NEXT, 250),
        ],
        h,
    );
    // A self-loop of one descriptor.
    let h = head(&s.bad);
    publish_chain(&mut s.bad, &[(h, scratch, 60, DESC_F_NEXT, h)], h);
    assert_eq!(drops(&s, "bad", DropReason::DescriptorLoop), 2);

    // Longer than the queue: an indirect table of 300 chained descriptors (queue: 256).
    let table = scratch + 0x1000;
    for i in 0..300u16 {
        let flags = if i < 299 { DESC_F_NEXT } else { 0 };
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&(scratch).to_le_bytes());
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..16].copy_from_slice(&(i + 1).to_le_bytes());
        use vm_memory::Bytes;
        s.bad
            .mem
            .write_slice(&b, vm_memory::GuestAddress(table + 16 * i as u64))
            .unwrap();
    }
    let h = head(&s.bad);
    publish_chain(&mut s.bad, &[(h, table, 300 * 16, DESC_F_INDIRECT, 0)], h);
    assert_eq!(drops(&s, "bad", DropReason::ChainTooLong), 1);

    // Malformed: next index beyond the queue; a device-writable buffer on transmit;
    // an indirect table whose length is not a multiple of 16.
    let h = head(&s.bad);
    publish_chain(&mut s.bad, &[(h, scratch, 60, DESC_F_NEXT, 4000)], h);
    let h = head(&s.bad);
    publish_chain(&mut s.bad, &[(h, scratch, 60, DESC_F_WRITE, 0)], h);
    let h = head(&s.bad);
    publish_chain(&mut s.bad, &[(h, table, 20, DESC_F_INDIRECT, 0)], h);
    assert_eq!(drops(&s, "bad", DropReason::BadDescriptor), 3);

    // Inconsistent header: checksum offset past the end of the frame.
    let hdr = VnetHdr {
        flags: 1,
        csum_start: 60,
        csum_offset: 100,
        ..Default::default()
    };
    s.bad.send(0, &hdr, &frame(mac(2), mac(1), 50, 0));
    // GSO without a segment size.
    let hdr = VnetHdr {
        gso_type: GSO_TCPV4,
        ..Default::default()
    };
    s.bad.send(0, &hdr, &frame(mac(2), mac(1), 50, 0));
    s.bad.wait_tx_done(0);
    assert_eq!(drops(&s, "bad", DropReason::BadHeader), 2);

    still_serves(&mut s, 2);
    let c = s.sw.port_counters("bad").unwrap();
    assert_eq!(c.total_drops(), 14, "{c:?}");
    assert_eq!(c.rx_packets, 2, "only the good frames were forwarded");
    assert_eq!(s.sw.port_counters("good").unwrap().total_drops(), 0);
}

#[test]
fn bad_receive_buffers_are_counted_on_that_port() {
    let dir = tempfile::tempdir().unwrap();
    let sw = Switch::new(SwitchConfig::default());
    let (lg, pg) = listen(dir.path(), "good");
    let (lb, pb) = listen(dir.path(), "bad");
    sw.add_port(PortConfig::new("good", &pg)).unwrap();
    sw.add_port(PortConfig::new("bad", &pb)).unwrap();
    let mut good = TestGuest::new(accept(&lg), LINUX_LIKE, 1, 2048);
    let mut bad = TestGuest::new(accept(&lb), LINUX_LIKE, 1, 2048);
    good.post_rx(0, 8);
    // The only receive buffer of "bad" lies outside its memory.
    bad.write_desc(0, 0, MEM_SIZE as u64 * 4, 2048, DESC_F_WRITE, 0);
    bad.publish(0, 0);
    wait_for("both ports ready", || {
        sw.list_ports().iter().all(|p| p.ready_queues == 1)
    });
    let drops = |r| sw.port_counters("bad").unwrap().drop_count(r);
    let bc = frame([0xff; 6], mac(1), 60, 0);
    good.send(0, &VnetHdr::default(), &bc);
    good.wait_tx_done(0);
    wait_for("bad receive buffer counted", || {
        drops(DropReason::BadAddress) == 1
    });
    // Its ring is now empty: the next frame finds no buffer.
    good.send(0, &VnetHdr::default(), &bc);
    good.wait_tx_done(0);
    wait_for("rx_no_buffer", || drops(DropReason::RxNoBuffer) == 1);
    // A device-readable (not writable) receive buffer is malformed.
    bad.write_desc(0, 1, 0x100_0000, 2048, 0, 0);
    bad.publish(0, 1);
    good.send(0, &VnetHdr::default(), &bc);
    good.wait_tx_done(0);
    wait_for("bad_descriptor", || drops(DropReason::BadDescriptor) == 1);
    // The used ring returned both bad buffers with length 0.
    assert_eq!(bad.used_idx(0), 2);
    // Once it posts proper buffers it receives again.
    bad.post_rx(0, 4);
    bad.queues[0].last_used = 2;
    good.send(0, &VnetHdr::default(), &bc);
    assert_eq!(bad.recv(0).frame, bc);
    assert_eq!(sw.port_counters("good").unwrap().total_drops(), 0);
}
