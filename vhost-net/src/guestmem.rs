//! Bounds-checked guest memory access for the forwarding hot path.
//!
//! vm-memory's `Bytes` accessors look the region up, build a volatile slice and walk a
//! region iterator on every call: fine for control paths, a large share of the cost of
//! a 64-byte frame (about ten guest accesses per frame). A [`GuestView`] resolves the
//! regions of one memory snapshot once per batch into (guest start, length, host
//! pointer) triples; each access then checks that the whole range `[addr, addr + len)`
//! lies inside one region and copies directly. Anything else (a range that straddles
//! two regions, a memory map with more regions than the view caches, a misaligned
//! atomic) goes to vm-memory's own checked accessor, so the answer is always the same
//! as vm-memory's: a guest can never make the switch touch memory outside its map.
//!
//! # Guest memory may change under our feet
//!
//! The guest (another process, or a vCPU) can write its memory while the switch reads
//! it. The rules here are vm-memory's own (`VolatileSlice`'s `copy_slice`, which every
//! `Bytes::read_slice`/`read_obj` of vm-memory 0.18 ends in):
//!
//! - No Rust reference (`&[u8]`, `&T`, `&mut`) into guest memory is ever made: a reference
//!   promises the compiler that the bytes do not change while it lives, which the guest
//!   can break at any time (undefined behaviour). Only raw pointers are used, and only
//!   inside this module (plus `&AtomicU16` for ring indices, which is a type made for
//!   memory that changes concurrently).
//! - Every value the switch *interprets* (descriptors, ring entries, anything up to
//!   [`VOLATILE_MAX`] bytes) is copied with volatile loads/stores at the widest
//!   alignment both ends share (`copy_volatile`): each guest byte is read exactly once
//!   into a local, which is then checked and used. The compiler cannot re-read guest
//!   memory after the check (no double fetch), nor merge, split or elide the access.
//! - Bulk copies (frame data, more than [`VOLATILE_MAX`] bytes) go with
//!   `ptr::copy_nonoverlapping` into or out of the switch's own buffers, exactly as
//!   vm-memory copies anything longer than a word. A memcpy touches each destination
//!   byte once and the switch looks only at its own copy afterwards (the virtio-net
//!   header is parsed from the copy, not from the guest), so a concurrent guest write
//!   can at worst give the switch a torn frame — bytes the guest could have sent anyway.
//!   Any bit pattern is a valid `u8`, so no invalid value can arise.

use std::cell::Cell;
use std::sync::atomic::{AtomicU16, Ordering};

use vm_memory::{
    ByteValued, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryRegion, MemoryRegionAddress,
};

use crate::rx::Mem;

/// Regions cached per view; guests with more fall back to vm-memory for the rest.
const MAX_REGIONS: usize = 8;

/// Objects up to this size are copied from and to guest memory with volatile accesses;
/// longer copies are bulk data (see the module documentation).
pub const VOLATILE_MAX: usize = 16;

/// The largest power of two (at most 8) that divides `addr`.
#[inline]
fn alignment(addr: usize) -> usize {
    (addr & addr.wrapping_neg()).clamp(1, 8)
}

/// Copies `len` bytes from `src` to `dst` with volatile loads and stores, each as wide as
/// the common alignment of both pointers allows (as vm-memory's `copy_slice_volatile`).
///
/// # Safety
/// `src` must be valid for `len` bytes of reads, `dst` for `len` bytes of writes, and the
/// ranges must not overlap.
#[inline(always)]
unsafe fn copy_volatile(mut dst: *mut u8, mut src: *const u8, len: usize) {
    use std::ptr::{read_volatile as rv, write_volatile as wv};
    let align = alignment(src as usize).min(alignment(dst as usize));
    let mut left = len;
    for width in [8usize, 4, 2, 1] {
        if width > align {
            continue;
        }
        while left >= width {
            // SAFETY: both pointers are aligned to `width` (it divides `align`, and every
            // step so far advanced them by a multiple of `width`), and `width <= left`
            // bytes remain valid at each (caller's contract).
            unsafe {
                match width {
                    8 => wv(dst as *mut u64, rv(src as *const u64)),
                    4 => wv(dst as *mut u32, rv(src as *const u32)),
                    2 => wv(dst as *mut u16, rv(src as *const u16)),
                    _ => wv(dst, rv(src)),
                }
                src = src.add(width);
                dst = dst.add(width);
            }
            left -= width;
        }
    }
}

/// Copies `len` bytes between guest memory and the switch's own buffer: volatile for
/// small objects, memcpy for bulk data (module documentation).
///
/// # Safety
/// As [`copy_volatile`].
#[inline(always)]
unsafe fn copy_guest(dst: *mut u8, src: *const u8, len: usize) {
    if len <= VOLATILE_MAX {
        // SAFETY: the caller's contract.
        unsafe { copy_volatile(dst, src, len) }
    } else {
        // SAFETY: the caller's contract; see the module documentation on why a plain
        // copy is sound for bulk data.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, len) }
    }
}

#[derive(Clone, Copy)]
struct HostRegion {
    start: u64,
    len: u64,
    host: *mut u8,
}

/// A snapshot of a guest's memory map, valid while the borrowed `Mem` is (the mapping
/// of a region lives as long as the `GuestMemoryMmap` that owns it).
pub struct GuestView<'a> {
    mem: &'a Mem,
    regions: [HostRegion; MAX_REGIONS],
    n: usize,
    /// The region of the last hit: a batch's buffers mostly share one.
    last: Cell<usize>,
}

impl<'a> GuestView<'a> {
    /// Resolves the regions of `mem`.
    pub fn new(mem: &'a Mem) -> Self {
        let mut v = GuestView {
            mem,
            regions: [HostRegion {
                start: 0,
                len: 0,
                host: std::ptr::null_mut(),
            }; MAX_REGIONS],
            n: 0,
            last: Cell::new(0),
        };
        for r in mem.iter() {
            if v.n == MAX_REGIONS {
                break;
            }
            if let Ok(host) = r.get_host_address(MemoryRegionAddress(0)) {
                v.regions[v.n] = HostRegion {
                    start: r.start_addr().0,
                    len: r.len(),
                    host,
                };
                v.n += 1;
            }
        }
        v
    }

    /// The memory map this view was made from.
    pub fn mem(&self) -> &'a Mem {
        self.mem
    }

    /// Host address of `[addr, addr + len)` when the whole range lies in one cached region.
    #[inline]
    fn host(&self, addr: GuestAddress, len: usize) -> Option<*mut u8> {
        let len = len as u64;
        // `off < r.len` also rejects addresses below the region (the subtraction wraps
        // to a huge offset), and `len <= r.len - off` cannot overflow.
        let hit = |r: &HostRegion| {
            let off = addr.0.wrapping_sub(r.start);
            (off < r.len && len <= r.len - off).then(|| {
                // SAFETY: off < r.len, so the result stays inside the region's mapping.
                unsafe { r.host.add(off as usize) }
            })
        };
        let last = self.last.get();
        if let Some(p) = self.regions[..self.n].get(last).and_then(hit) {
            return Some(p);
        }
        for (i, r) in self.regions[..self.n].iter().enumerate() {
            if let Some(p) = hit(r) {
                self.last.set(i);
                return Some(p);
            }
        }
        None
    }

    /// Host address of guest byte `addr`, for prefetch hints.
    #[inline]
    pub fn host_address(&self, addr: GuestAddress) -> Option<*const u8> {
        self.host(addr, 1).map(|p| p as *const u8)
    }

    /// Copies `dst.len()` bytes from guest address `addr`.
    #[inline]
    pub fn read_slice(&self, dst: &mut [u8], addr: GuestAddress) -> bool {
        match self.host(addr, dst.len()) {
            Some(p) => {
                // SAFETY: the range is inside a live mapping (checked by `host`); the
                // destination is our own buffer, distinct from guest memory.
                unsafe { copy_guest(dst.as_mut_ptr(), p, dst.len()) };
                true
            }
            None => self.mem.read_slice(dst, addr).is_ok(),
        }
    }

    /// Copies `src` to guest address `addr`.
    #[inline]
    pub fn write_slice(&self, src: &[u8], addr: GuestAddress) -> bool {
        match self.host(addr, src.len()) {
            Some(p) => {
                // SAFETY: as in `read_slice`, in the other direction.
                unsafe { copy_guest(p, src.as_ptr(), src.len()) };
                true
            }
            None => self.mem.write_slice(src, addr).is_ok(),
        }
    }

    /// Reads a `T` (any byte pattern is a valid `T`) from guest address `addr`, each
    /// guest byte exactly once (volatile for objects up to [`VOLATILE_MAX`] bytes).
    #[inline]
    pub fn read_obj<T: ByteValued>(&self, addr: GuestAddress) -> Option<T> {
        let size = std::mem::size_of::<T>();
        match self.host(addr, size) {
            Some(p) => {
                let mut val = T::zeroed();
                // SAFETY: in bounds (checked); the destination is a local `T`, and any
                // bytes make a valid `T` (`ByteValued`).
                unsafe { copy_guest(val.as_mut_slice().as_mut_ptr(), p, size) };
                Some(val)
            }
            None => self.mem.read_obj(addr).ok(),
        }
    }

    /// Writes `val` to guest address `addr`.
    #[inline]
    pub fn write_obj<T: ByteValued>(&self, val: T, addr: GuestAddress) -> bool {
        match self.host(addr, std::mem::size_of::<T>()) {
            Some(p) => {
                // SAFETY: in bounds (checked); the source is the local `val`.
                unsafe { copy_guest(p, val.as_slice().as_ptr(), std::mem::size_of::<T>()) };
                true
            }
            None => self.mem.write_obj(val, addr).is_ok(),
        }
    }

    /// Atomically loads the little-endian-stored `u16` at `addr` (raw, not converted).
    #[inline]
    pub fn load_u16(&self, addr: GuestAddress, order: Ordering) -> Option<u16> {
        match self.host(addr, 2) {
            Some(p) if (p as usize) % 2 == 0 => {
                // SAFETY: in bounds and aligned (checked); guest memory is shared, so it
                // is accessed atomically.
                Some(unsafe { AtomicU16::from_ptr(p as *mut u16) }.load(order))
            }
            _ => self.mem.load::<u16>(addr, order).ok(),
        }
    }

    /// Atomically stores the `u16` `val` (raw, already little endian) at `addr`.
    #[inline]
    pub fn store_u16(&self, val: u16, addr: GuestAddress, order: Ordering) -> bool {
        match self.host(addr, 2) {
            Some(p) if (p as usize) % 2 == 0 => {
                // SAFETY: as in `load_u16`.
                unsafe { AtomicU16::from_ptr(p as *mut u16) }.store(val, order);
                true
            }
            _ => self.mem.store(val, addr, order).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_bounds_and_falls_back_across_regions() {
        // Two adjacent regions: [0x1000, 0x2000) and [0x2000, 0x3000).
        let mem = Mem::from_ranges(&[
            (GuestAddress(0x1000), 0x1000),
            (GuestAddress(0x2000), 0x1000),
        ])
        .unwrap();
        let v = GuestView::new(&mem);
        assert!(
            v.write_slice(&[1, 2, 3, 4], GuestAddress(0x1ffe)),
            "straddles: slow path"
        );
        let mut b = [0u8; 4];
        assert!(v.read_slice(&mut b, GuestAddress(0x1ffe)));
        assert_eq!(b, [1, 2, 3, 4]);
        assert!(
            !v.read_slice(&mut b, GuestAddress(0x2ffe)),
            "runs past the end"
        );
        assert!(
            !v.read_slice(&mut b, GuestAddress(0xfff)),
            "starts before memory"
        );
        assert!(!v.write_slice(&[0; 2], GuestAddress(u64::MAX)), "wraps");
        assert_eq!(v.read_obj::<u32>(GuestAddress(0x2ffd)), None);
        assert!(v.write_obj(0x1122_3344u32, GuestAddress(0x2001)));
        assert_eq!(v.read_obj::<u32>(GuestAddress(0x2001)), Some(0x1122_3344));
        assert!(v.store_u16(7, GuestAddress(0x1002), Ordering::Release));
        assert_eq!(v.load_u16(GuestAddress(0x1002), Ordering::Acquire), Some(7));
        assert_eq!(
            v.load_u16(GuestAddress(0x1003), Ordering::Acquire),
            None,
            "misaligned"
        );
        assert_eq!(v.load_u16(GuestAddress(0x3000), Ordering::Acquire), None);
        assert!(v.host_address(GuestAddress(0x2fff)).is_some());
        assert!(v.host_address(GuestAddress(0x3000)).is_none());
    }
}
