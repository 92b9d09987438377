//! A minimal virtio-net *driver* plus vhost-user *frontend* living in the test process:
//! it plays QEMU and the guest kernel against the switch. Guest memory is a memfd shared
//! with the switch; rings and buffers are laid out by hand.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtnet_vhost_net::vnet_hdr::VnetHdr;
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};
use vmm_sys_util::eventfd::EventFd;

pub const F_CSUM: u64 = 1 << 0;
pub const F_GUEST_CSUM: u64 = 1 << 1;
pub const F_GUEST_TSO4: u64 = 1 << 7;
pub const F_GUEST_TSO6: u64 = 1 << 8;
pub const F_HOST_TSO4: u64 = 1 << 11;
pub const F_HOST_TSO6: u64 = 1 << 12;
pub const F_MRG_RXBUF: u64 = 1 << 15;
pub const F_MQ: u64 = 1 << 22;
pub const F_INDIRECT: u64 = 1 << 28;
pub const F_EVENT_IDX: u64 = 1 << 29;
pub const F_PROTOCOL: u64 = 1 << 30;
pub const F_VERSION_1: u64 = 1 << 32;

/// What a Linux guest typically negotiates (less MQ).
pub const LINUX_LIKE: u64 = F_VERSION_1
    | F_PROTOCOL
    | F_EVENT_IDX
    | F_INDIRECT
    | F_MRG_RXBUF
    | F_CSUM
    | F_GUEST_CSUM
    | F_HOST_TSO4
    | F_HOST_TSO6
    | F_GUEST_TSO4
    | F_GUEST_TSO6;

pub const QSIZE: u16 = 256;
pub const MEM_SIZE: usize = 128 << 20;
const RING_AREA: u64 = 0x10000; // rings of queue i at RING_AREA * (i + 1)
const TX_BUF: u64 = 66 * 1024;
const TX_BASE: u64 = 0x400_0000; // queue pair k: TX_BASE + k * QSIZE * TX_BUF
pub const DESC_F_NEXT: u16 = 1;
pub const DESC_F_WRITE: u16 = 2;
pub const DESC_F_INDIRECT: u16 = 4;

pub fn memfd(size: usize) -> File {
    // SAFETY: memfd_create with a static name; the fd is owned by the File at once.
    let fd = unsafe { libc::memfd_create(c"vsw-test-guest".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create failed");
    // SAFETY: fd was just created and is owned by nobody else.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(size as u64).unwrap();
    f
}

pub fn mac(last: u8) -> [u8; 6] {
    [0x52, 0x54, 0x00, 0x12, 0x34, last]
}

/// An Ethernet frame: dst, src, ethertype 0x88b5 (local experimental), then `payload_len`
/// bytes of a pattern seeded by `seed`.
pub fn frame(dst: [u8; 6], src: [u8; 6], payload_len: usize, seed: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload_len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..payload_len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    f
}

pub struct DriverQueue {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub kick: EventFd,
    pub call: EventFd,
    pub avail_idx: u16,
    pub last_used: u16,
    pub buf_len: u32,
    pub buf_base: u64,
}

/// A received frame.
#[derive(Debug)]
pub struct Rx {
    pub hdr: VnetHdr,
    pub num_buffers: u16,
    pub frame: Vec<u8>,
}

pub struct TestGuest {
    pub mem: GuestMemoryMmap<()>,
    pub file: File,
    pub frontend: Frontend,
    pub queues: Vec<DriverQueue>,
    pub features: u64,
    pub qps: usize,
    pub hdr_len: usize,
    pub rx_buf_len: u32,
}

pub fn listen(dir: &Path, name: &str) -> (UnixListener, PathBuf) {
    let p = dir.join(format!("{name}.sock"));
    (UnixListener::bind(&p).unwrap(), p)
}

/// Accepts the switch's connection (client mode), with a deadline.
pub fn accept(l: &UnixListener) -> std::os::unix::net::UnixStream {
    l.set_nonblocking(true).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return s;
            }
            Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("the switch did not connect within 10 s: {e}"),
        }
    }
}

impl TestGuest {
    /// New guest memory (a fresh memfd) and a negotiated device.
    pub fn new(
        stream: std::os::unix::net::UnixStream,
        features: u64,
        qps: usize,
        rx_buf_len: u32,
    ) -> TestGuest {
        let file = memfd(MEM_SIZE);
        let region =
            MmapRegion::from_file(FileOffset::new(file.try_clone().unwrap(), 0), MEM_SIZE).unwrap();
        let mem =
            GuestMemoryMmap::from_regions(vec![
                GuestRegionMmap::new(region, GuestAddress(0)).unwrap()
            ])
            .unwrap();
        let mut g = TestGuest {
            mem,
            file,
            frontend: Frontend::from_stream(stream, (qps * 2) as u64),
            queues: Vec::new(),
            features,
            qps,
            hdr_len: 12,
            rx_buf_len,
        };
        g.setup(0);
        g
    }

    /// Reattaches the same guest (memory, rings, indices) to a new connection, the way
    /// QEMU does after the back end restarts: vring base = the used index in the ring.
    pub fn reconnect(&mut self, stream: std::os::unix::net::UnixStream) {
        self.frontend = Frontend::from_stream(stream, (self.qps * 2) as u64);
        let bases: Vec<u16> = (0..self.queues.len())
            .map(|i| {
                self.mem
                    .read_obj::<u16>(GuestAddress(self.queues[i].used + 2))
                    .unwrap()
            })
            .collect();
        self.negotiate();
        for (i, base) in bases.into_iter().enumerate() {
            self.start_queue(i, base);
        }
    }

    fn negotiate(&mut self) {
        let fe = &mut self.frontend;
        fe.set_owner().unwrap();
        let offered = fe.get_features().unwrap();
        assert_eq!(
            offered & self.features,
            self.features,
            "switch does not offer {:#x}",
            self.features & !offered
        );
        let pf = fe.get_protocol_features().unwrap();
        let want = VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS;
        assert!(pf.contains(want), "protocol features {pf:?}");
        fe.set_protocol_features(want).unwrap();
        assert!(fe.get_queue_num().unwrap() >= (self.qps * 2) as u64);
        assert!(fe.get_max_mem_slots().unwrap() >= 32);
        fe.set_features(self.features).unwrap();
        let region = VhostUserMemoryRegionInfo {
            guest_phys_addr: 0,
            memory_size: MEM_SIZE as u64,
            userspace_addr: 0x7f00_0000_0000,
            mmap_offset: 0,
            mmap_handle: self.file.as_raw_fd(),
        };
        fe.set_mem_table(&[region]).unwrap();
    }

    fn setup(&mut self, _base: u16) {
        self.hdr_len = if self.features & (F_VERSION_1 | F_MRG_RXBUF) != 0 {
            12
        } else {
            10
        };
        self.negotiate();
        for i in 0..self.qps * 2 {
            let ring = RING_AREA * (i as u64 + 1);
            let q = DriverQueue {
                desc: ring,
                avail: ring + 16 * QSIZE as u64,
                used: ring + 0x8000,
                kick: EventFd::new(0).unwrap(),
                call: EventFd::new(0).unwrap(),
                avail_idx: 0,
                last_used: 0,
                buf_len: if i % 2 == 0 {
                    self.rx_buf_len
                } else {
                    TX_BUF as u32
                },
                buf_base: if i % 2 == 0 {
                    0x100_0000 + (i as u64 / 2) * 0x100_0000
                } else {
                    TX_BASE
                },
            };
            // Zero the rings.
            self.mem
                .write_slice(&vec![0u8; RING_AREA as usize], GuestAddress(ring))
                .unwrap();
            self.queues.push(q);
            self.start_queue(i, 0);
        }
    }

    fn start_queue(&mut self, i: usize, base: u16) {
        let q = &self.queues[i];
        let fe = &mut self.frontend;
        fe.set_vring_num(i, QSIZE).unwrap();
        fe.set_vring_addr(
            i,
            &VringConfigData {
                queue_max_size: QSIZE,
                queue_size: QSIZE,
                flags: 0,
                desc_table_addr: 0x7f00_0000_0000 + q.desc,
                used_ring_addr: 0x7f00_0000_0000 + q.used,
                avail_ring_addr: 0x7f00_0000_0000 + q.avail,
                log_addr: None,
            },
        )
        .unwrap();
        fe.set_vring_base(i, base).unwrap();
        fe.set_vring_call(i, &q.call).unwrap();
        fe.set_vring_kick(i, &q.kick).unwrap();
        fe.set_vring_enable(i, true).unwrap();
    }

    pub fn write_desc(&self, q: usize, idx: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = self.queues[q].desc + 16 * idx as u64;
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..16].copy_from_slice(&next.to_le_bytes());
        self.mem.write_slice(&b, GuestAddress(d)).unwrap();
    }

    /// Makes chain `head` available on queue `q` and kicks.
    pub fn publish(&mut self, q: usize, head: u16) {
        let dq = &mut self.queues[q];
        let slot = dq.avail + 4 + 2 * (dq.avail_idx % QSIZE) as u64;
        self.mem.write_obj(head, GuestAddress(slot)).unwrap();
        dq.avail_idx = dq.avail_idx.wrapping_add(1);
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.mem
            .write_obj(dq.avail_idx, GuestAddress(dq.avail + 2))
            .unwrap();
        dq.kick.write(1).unwrap();
    }

    /// Posts `n` receive buffers on queue pair `qp` (descriptor i → fixed buffer i).
    pub fn post_rx(&mut self, qp: usize, n: u16) {
        let q = qp * 2;
        for _ in 0..n {
            let idx = self.queues[q].avail_idx % QSIZE;
            let (base, len) = (self.queues[q].buf_base, self.queues[q].buf_len);
            self.write_desc(q, idx, base + idx as u64 * len as u64, len, DESC_F_WRITE, 0);
            self.publish(q, idx);
        }
    }

    /// Transmits one frame (header + frame in one descriptor) on queue pair `qp`.
    pub fn send(&mut self, qp: usize, hdr: &VnetHdr, frame: &[u8]) {
        let q = qp * 2 + 1;
        let idx = self.queues[q].avail_idx % QSIZE;
        let addr = self.queues[q].buf_base + (qp as u64 * QSIZE as u64 + idx as u64) * TX_BUF;
        let mut h = [0u8; 12];
        hdr.write(&mut h[..self.hdr_len], 0);
        self.mem
            .write_slice(&h[..self.hdr_len], GuestAddress(addr))
            .unwrap();
        self.mem
            .write_slice(frame, GuestAddress(addr + self.hdr_len as u64))
            .unwrap();
        self.write_desc(q, idx, addr, (self.hdr_len + frame.len()) as u32, 0, 0);
        self.publish(q, idx);
    }

    /// Address of a scratch area for hand-made chains and indirect tables.
    pub fn scratch(&self) -> u64 {
        0x10_0000
    }

    pub fn used_idx(&self, q: usize) -> u16 {
        self.mem
            .read_obj::<u16>(GuestAddress(self.queues[q].used + 2))
            .unwrap()
    }

    /// Waits until the switch has consumed everything posted on transmit queue pair `qp`.
    pub fn wait_tx_done(&self, qp: usize) {
        let q = qp * 2 + 1;
        let end = Instant::now() + Duration::from_secs(5);
        while self.used_idx(q) != self.queues[q].avail_idx {
            assert!(
                Instant::now() < end,
                "switch did not consume the transmit queue"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn used_elem(&self, q: usize, n: u16) -> (u32, u32) {
        let at = self.queues[q].used + 4 + 8 * (n % QSIZE) as u64;
        let id: u32 = self.mem.read_obj(GuestAddress(at)).unwrap();
        let len: u32 = self.mem.read_obj(GuestAddress(at + 4)).unwrap();
        (id, len)
    }

    /// Receives one frame on queue pair `qp`, waiting up to `wait`.
    pub fn recv_timeout(&mut self, qp: usize, wait: Duration) -> Option<Rx> {
        let q = qp * 2;
        let end = Instant::now() + wait;
        while self.used_idx(q) == self.queues[q].last_used {
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let (id, len) = self.used_elem(q, self.queues[q].last_used);
        let (base, blen) = (self.queues[q].buf_base, self.queues[q].buf_len as u64);
        let mut data = vec![0u8; len as usize];
        self.mem
            .read_slice(&mut data, GuestAddress(base + id as u64 * blen))
            .unwrap();
        self.queues[q].last_used = self.queues[q].last_used.wrapping_add(1);
        let hl = self.hdr_len;
        assert!(
            data.len() >= hl,
            "used length {} shorter than the header",
            data.len()
        );
        let hdr = VnetHdr::parse(&data);
        let nb = if hl == 12 {
            u16::from_le_bytes([data[10], data[11]])
        } else {
            1
        };
        let mut frame = data[hl..].to_vec();
        for _ in 1..nb {
            let end = Instant::now() + Duration::from_secs(2);
            while self.used_idx(q) == self.queues[q].last_used {
                assert!(Instant::now() < end, "missing merged buffer");
                std::thread::sleep(Duration::from_micros(100));
            }
            let (id, len) = self.used_elem(q, self.queues[q].last_used);
            let mut more = vec![0u8; len as usize];
            self.mem
                .read_slice(&mut more, GuestAddress(base + id as u64 * blen))
                .unwrap();
            frame.extend_from_slice(&more);
            self.queues[q].last_used = self.queues[q].last_used.wrapping_add(1);
        }
        self.post_rx(qp, nb);
        Some(Rx {
            hdr,
            num_buffers: nb,
            frame,
        })
    }

    pub fn recv(&mut self, qp: usize) -> Rx {
        self.recv_timeout(qp, Duration::from_secs(5))
            .expect("no frame within 5 s")
    }

    /// Asserts nothing arrives on queue pair `qp` for a short while.
    pub fn expect_nothing(&mut self, qp: usize) {
        if let Some(rx) = self.recv_timeout(qp, Duration::from_millis(150)) {
            panic!("unexpected frame of {} bytes", rx.frame.len());
        }
    }
}

/// Waits until `f` holds (polling), or panics with `what`.
pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}
