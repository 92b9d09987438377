//! A fake guest built from arbitrary input: memory regions with gaps, buffers ("blobs"),
//! descriptor tables (the queue's own and indirect ones) and a split virtqueue's rings,
//! placed where the input says — inside a region, straddling its end, in a gap or far
//! outside. Every placement goes through vm-memory's checked writes, so a layout that
//! does not fit just leaves those bytes as they were.

use arbitrary::Arbitrary;
use virtnet_vhost_net::fuzz_api::virtio_queue::{Queue, QueueT};
use virtnet_vhost_net::fuzz_api::vm_memory::{
    Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryRegion,
};
use virtnet_vhost_net::rx::Mem;

const PAGE: u64 = 4096;
/// Descriptor flags.
pub const F_NEXT: u16 = 1;
/// Device-writable.
pub const F_WRITE: u16 = 2;
/// Refers to an indirect table.
pub const F_INDIRECT: u16 = 4;

/// One guest memory region: `gap_pages % 4` pages after the previous one (or after 0),
/// `1 + pages % 24` pages long (up to 96 KiB, room for a 64 KiB frame).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct RegionSpec {
    gap_pages: u8,
    pages: u8,
}

/// A guest address, mostly somewhere interesting.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Addr {
    /// Region `r`, offset up to 64 bytes past its end.
    Region { r: u8, off: u32 },
    /// The start of descriptor table `t`.
    Table(u8),
    /// Inside blob `b`.
    Blob { b: u8, off: u16 },
    /// Anything.
    Raw(u64),
}

/// A descriptor's length.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Len {
    /// From the descriptor's address to the end of its blob (or a table's size), if
    /// the address is in one; else 64.
    Rest,
    /// Up to 64 KiB.
    Small(u16),
    /// Anything.
    Raw(u32),
}

/// One descriptor.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct DescSpec {
    addr: Addr,
    len: Len,
    /// NEXT, WRITE, INDIRECT (low three bits; the rest kept only when bit 7 is set).
    flags: u16,
    next: u16,
}

/// A buffer's contents: `data`, then `extra` more bytes of a pattern (so a 64 KiB frame
/// needs no 64 KiB of input).
#[derive(Arbitrary, Debug, Clone)]
pub struct BlobSpec {
    at: Addr,
    data: Vec<u8>,
    extra: u16,
}

/// A descriptor table at `at` (table 0 is the queue's own).
#[derive(Arbitrary, Debug, Clone)]
pub struct TableSpec {
    at: Addr,
    descs: Vec<DescSpec>,
}

/// A whole fake guest with one queue.
#[derive(Arbitrary, Debug, Clone)]
pub struct GuestSpec {
    regions: Vec<RegionSpec>,
    blobs: Vec<BlobSpec>,
    tables: Vec<TableSpec>,
    avail_at: Addr,
    used_at: Addr,
    /// Queue size `1 << (size_log2 % 9)` (1..=256).
    size_log2: u8,
    event_idx: bool,
    next_avail: u16,
    next_used: u16,
    /// Heads published in the avail ring (`h % size` unless bit 15 is set).
    heads: Vec<u16>,
    /// Added to the published avail index (a lying guest), when non-zero.
    idx_skew: u8,
    avail_flags: u16,
    used_event: u16,
}

/// A built guest: its memory, its queue, and where things were placed.
pub struct Guest {
    /// The memory map.
    pub mem: Mem,
    /// The queue, ready, with the spec's addresses and positions.
    pub queue: Queue,
    /// (start, len) of each region.
    pub regions: Vec<(u64, u64)>,
    /// (start, len) of the descriptor tables, the avail ring and the used ring.
    pub meta: Vec<(u64, u64)>,
}

struct Layout {
    regions: Vec<(u64, u64)>,
    blobs: Vec<(u64, u64)>,
    tables: Vec<(u64, u64)>,
}

impl Layout {
    fn resolve(&self, a: Addr) -> u64 {
        match a {
            Addr::Region { r, off } => {
                let (start, len) = self.regions[r as usize % self.regions.len()];
                start.wrapping_add(u64::from(off) % (len + 64))
            }
            Addr::Table(t) if !self.tables.is_empty() => {
                self.tables[t as usize % self.tables.len()].0
            }
            Addr::Blob { b, off } if !self.blobs.is_empty() => {
                let (start, len) = self.blobs[b as usize % self.blobs.len()];
                start.wrapping_add(u64::from(off) % (len + 1))
            }
            Addr::Table(_) | Addr::Blob { .. } => self.regions[0].0,
            Addr::Raw(a) => a,
        }
    }

    /// Bytes from `addr` to the end of the blob or table holding it.
    fn rest(&self, addr: u64) -> Option<u64> {
        self.blobs
            .iter()
            .chain(self.tables.iter())
            .find(|(s, l)| addr.wrapping_sub(*s) < *l)
            .map(|(s, l)| l - addr.wrapping_sub(*s))
    }
}

fn desc_bytes(layout: &Layout, d: &DescSpec, qsize: u16) -> [u8; 16] {
    let addr = layout.resolve(d.addr);
    let len = match d.len {
        Len::Rest => layout.rest(addr).unwrap_or(64).min(u64::from(u32::MAX)) as u32,
        Len::Small(n) => u32::from(n),
        Len::Raw(n) => n,
    };
    let flags = if d.flags & 0x80 != 0 {
        d.flags
    } else {
        d.flags & 7
    };
    let next = if d.next & 0x8000 != 0 {
        d.next
    } else {
        d.next % qsize.max(1)
    };
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&addr.to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&flags.to_le_bytes());
    b[14..16].copy_from_slice(&next.to_le_bytes());
    b
}

impl GuestSpec {
    /// The queue size this spec asks for.
    pub fn queue_size(&self) -> u16 {
        1 << (self.size_log2 % 9)
    }

    /// Builds the guest (None if the regions cannot be mapped).
    pub fn build(&self) -> Option<Guest> {
        let mut regions = Vec::new();
        let mut end = 0u64;
        for r in self.regions.iter().take(4) {
            let start = end + u64::from(r.gap_pages % 4) * PAGE;
            let len = (1 + u64::from(r.pages % 24)) * PAGE;
            regions.push((start, len));
            end = start + len;
        }
        if regions.is_empty() {
            regions.push((0, PAGE));
        }
        let ranges: Vec<_> = regions
            .iter()
            .map(|&(s, l)| (GuestAddress(s), l as usize))
            .collect();
        let mem = Mem::from_ranges(&ranges).ok()?;
        let size = self.queue_size();
        let mut layout = Layout {
            regions,
            blobs: Vec::new(),
            tables: Vec::new(),
        };
        // Blobs and tables are placed relative to regions (and to earlier blobs).
        let blobs: Vec<_> = self.blobs.iter().take(16).collect();
        for b in &blobs {
            let at = layout.resolve(b.at);
            layout
                .blobs
                .push((at, (b.data.len() + b.extra as usize) as u64));
        }
        let tables: Vec<_> = self.tables.iter().take(4).collect();
        for (i, t) in tables.iter().enumerate() {
            let mut at = layout.resolve(t.at);
            let n = if i == 0 {
                u64::from(size)
            } else {
                t.descs.len().max(1) as u64
            };
            if i == 0 {
                at &= !15; // the queue's table must be 16-byte aligned
            }
            layout.tables.push((at, n * 16));
        }
        for (b, &(at, len)) in blobs.iter().zip(layout.blobs.iter()) {
            let mut bytes = b.data.clone();
            let seed = bytes.last().copied().unwrap_or(0x5a);
            bytes.extend((0..b.extra).map(|i| seed.wrapping_add(i as u8)));
            debug_assert_eq!(bytes.len() as u64, len);
            let _ = mem.write_slice(&bytes, GuestAddress(at));
        }
        for (t, &(at, _)) in tables.iter().zip(layout.tables.iter()) {
            for (k, d) in t.descs.iter().take(256).enumerate() {
                let b = desc_bytes(&layout, d, size);
                let _ = mem.write_slice(&b, GuestAddress(at.wrapping_add(16 * k as u64)));
            }
        }
        let desc = layout.tables.first().map_or(layout.regions[0].0, |t| t.0);
        let avail = layout.resolve(self.avail_at) & !1;
        let used = layout.resolve(self.used_at) & !3;
        // The avail ring: flags, idx, ring[size], used_event.
        let heads: Vec<u16> = self.heads.iter().take(512).copied().collect();
        let mut idx = self.next_avail.wrapping_add(heads.len() as u16);
        if self.idx_skew != 0 {
            idx = idx.wrapping_add(u16::from(self.idx_skew));
        }
        let _ = mem.write_obj(self.avail_flags.to_le(), GuestAddress(avail));
        let _ = mem.write_obj(idx.to_le(), GuestAddress(avail.wrapping_add(2)));
        for (i, h) in heads.iter().enumerate() {
            let pos = self.next_avail.wrapping_add(i as u16) % size;
            let h = if h & 0x8000 != 0 { *h } else { h % size };
            let _ = mem.write_obj(
                h.to_le(),
                GuestAddress(avail.wrapping_add(4 + 2 * u64::from(pos))),
            );
        }
        let _ = mem.write_obj(
            self.used_event.to_le(),
            GuestAddress(avail.wrapping_add(4 + 2 * u64::from(size))),
        );
        let mut meta = layout.tables.clone();
        meta.push((avail, 6 + 2 * u64::from(size)));
        meta.push((used, 6 + 8 * u64::from(size)));
        let mut queue = Queue::new(1024).ok()?;
        queue.set_size(size);
        queue.set_desc_table_address(Some(desc as u32), Some((desc >> 32) as u32));
        queue.set_avail_ring_address(Some(avail as u32), Some((avail >> 32) as u32));
        queue.set_used_ring_address(Some(used as u32), Some((used >> 32) as u32));
        queue.set_next_avail(self.next_avail);
        queue.set_next_used(self.next_used);
        queue.set_event_idx(self.event_idx);
        queue.set_ready(true);
        Some(Guest {
            mem,
            queue,
            regions: layout.regions,
            meta,
        })
    }
}

impl Guest {
    /// A copy of every region's bytes.
    pub fn snapshot(&self) -> Vec<Vec<u8>> {
        self.mem
            .iter()
            .map(|r| {
                let mut v = vec![0u8; r.len() as usize];
                self.mem
                    .read_slice(&mut v, r.start_addr())
                    .expect("a region reads whole");
                v
            })
            .collect()
    }

    /// A second memory map with the same regions and contents.
    pub fn copy_mem(&self) -> Mem {
        let ranges: Vec<_> = self
            .regions
            .iter()
            .map(|&(s, l)| (GuestAddress(s), l as usize))
            .collect();
        let copy = Mem::from_ranges(&ranges).expect("the same ranges map again");
        for (&(s, _), bytes) in self.regions.iter().zip(self.snapshot()) {
            copy.write_slice(&bytes, GuestAddress(s))
                .expect("same layout");
        }
        copy
    }

    /// Guest addresses whose bytes differ from `before`.
    pub fn changed(&self, before: &[Vec<u8>]) -> Vec<u64> {
        let after = self.snapshot();
        let mut out = Vec::new();
        for ((&(start, _), a), b) in self.regions.iter().zip(after.iter()).zip(before.iter()) {
            // Compare 256-byte chunks first (memcmp), bytes only where a chunk differs.
            for (c, (ca, cb)) in a.chunks(256).zip(b.chunks(256)).enumerate() {
                if ca == cb {
                    continue;
                }
                for (i, (x, y)) in ca.iter().zip(cb.iter()).enumerate() {
                    if x != y {
                        out.push(start + (c * 256 + i) as u64);
                    }
                }
            }
        }
        out
    }

    /// Reads a little-endian u16 (None outside memory).
    pub fn u16_at(&self, addr: u64) -> Option<u16> {
        self.mem
            .read_obj::<u16>(GuestAddress(addr))
            .ok()
            .map(u16::from_le)
    }

    /// Whether `[addr, addr + len)` is all guest memory.
    pub fn readable(&self, addr: u64, len: u64) -> bool {
        addr.checked_add(len).is_some() && self.mem.check_range(GuestAddress(addr), len as usize)
    }
}
