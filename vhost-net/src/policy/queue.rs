//! A port's inbound queue: frames for the port over its `inbound` rate wait here (owned
//! copies, tagged as they will leave) until the bucket lets them go, as in tc's TBF. Bounded:
//! a frame that does not fit is dropped (`rate_limited`), which is what tells TCP to slow down.
//! A TCP GSO frame that does not fit whole is queued as its MSS-sized segments, as many as fit
//! (as TBF segments a GSO packet larger than its burst), so a full queue drops the tail of a
//! burst, which TCP recovers from with a fast retransmit, instead of 45 segments at once,
//! which costs it a timeout.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::bucket::Shaper;
use super::vlan::{self, Vid};
use crate::frame::{Frame, HEADROOM};
use crate::gso::segment_tcp;
use crate::vnet_hdr::{GSO_TCPV4, GSO_TCPV6};

/// The queue holds what leaves in this long at the average rate...
const QUEUE_SECS: f64 = 0.2;
/// ...but at least this many bytes.
const MIN_QUEUE_BYTES: usize = 64 * 1024;
/// Spare buffers kept for reuse.
const POOL: usize = 64;

/// What happened to a frame offered to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// It may be delivered now (its tokens are taken).
    Now,
    /// It waits in the queue (as segments, for a GSO frame), but for this many frames (or
    /// segments) that did not fit and are dropped.
    Held {
        /// Frames or segments dropped.
        dropped: u32,
    },
}

/// The inbound bucket and the frames waiting for it.
pub struct InboundQueue {
    shaper: Shaper,
    frames: VecDeque<Frame>,
    bytes: usize,
    limit: usize,
    pool: Vec<Frame>,
    seg: Option<Box<Frame>>,
}

impl InboundQueue {
    /// An empty queue in front of `shaper`.
    pub fn new(shaper: Shaper) -> Self {
        let limit = ((shaper.rate() * QUEUE_SECS) as usize).max(MIN_QUEUE_BYTES);
        InboundQueue {
            shaper,
            frames: VecDeque::new(),
            bytes: 0,
            limit,
            pool: Vec::new(),
            seg: None,
        }
    }

    /// How many frames wait.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame waits.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Offers frame `f` (to leave tagged with `vid` if given); frames leave in order.
    pub fn offer(&mut self, f: &Frame, vid: Option<Vid>, now: Instant) -> Offer {
        if self.frames.is_empty() && self.shaper.admit(f.len, now) {
            return Offer::Now;
        }
        let mut dropped = 0;
        if self.push(f, vid) {
            return Offer::Held { dropped };
        }
        if matches!(f.hdr.gso_kind(), GSO_TCPV4 | GSO_TCPV6) {
            let mut seg = self.seg.take().unwrap_or_else(|| Box::new(Frame::full()));
            let res = segment_tcp(f, &mut seg, true, |s| {
                if !self.push(s, vid) {
                    dropped += 1;
                }
            });
            self.seg = Some(seg);
            if res.is_err() {
                dropped += 1;
            }
        } else {
            dropped += 1;
        }
        Offer::Held { dropped }
    }

    /// Queues a copy of `f` if it fits.
    fn push(&mut self, f: &Frame, vid: Option<Vid>) -> bool {
        if self.bytes + f.len > self.limit {
            return false;
        }
        let mut c = self.pool.pop().unwrap_or_default();
        if c.data.len() < HEADROOM + f.len + 4 {
            c.grow();
        }
        c.data[HEADROOM..HEADROOM + f.len].copy_from_slice(f.bytes());
        c.len = f.len;
        c.hdr = f.hdr;
        if let Some(v) = vid {
            vlan::push(&mut c, v);
        }
        self.bytes += c.len;
        self.frames.push_back(c);
        true
    }

    /// Moves the frames that may leave at `now` (in order) to `out`; returns when the next
    /// one may, if any waits.
    pub fn release(&mut self, out: &mut Vec<Frame>, now: Instant) -> Option<Instant> {
        while let Some(f) = self.frames.front() {
            if !self.shaper.admit(f.len, now) {
                return Some(
                    self.shaper
                        .ready_at(f.len)
                        .max(now + Duration::from_micros(50)),
                );
            }
            let f = self.frames.pop_front()?;
            self.bytes -= f.len;
            out.push(f);
        }
        None
    }

    /// Takes back delivered frames' buffers.
    pub fn recycle(&mut self, done: &mut Vec<Frame>) {
        while let Some(f) = done.pop() {
            if self.pool.len() < POOL {
                self.pool.push(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_vswitch_control::TokenBucket;

    const HELD: Offer = Offer::Held { dropped: 0 };

    fn frame(len: usize, seed: u8) -> Frame {
        let mut f = Frame {
            len,
            ..Frame::default()
        };
        f.data[HEADROOM..HEADROOM + len].fill(seed);
        f
    }

    #[test]
    fn frames_wait_in_order_leave_at_the_rate_and_overflow_is_refused() {
        let t0 = Instant::now();
        let tb = TokenBucket {
            average_kib: 100,
            peak_kib: None,
            burst_kib: Some(2),
        };
        let mut q = InboundQueue::new(Shaper::new(&tb, t0));
        assert_eq!(q.offer(&frame(1024, 1), None, t0), Offer::Now);
        assert_eq!(q.offer(&frame(1024, 2), None, t0), Offer::Now);
        assert_eq!(q.offer(&frame(1024, 3), None, t0), HELD);
        // Tokens came back, but frames keep their order: this one waits behind 3.
        let t1 = t0 + Duration::from_millis(50);
        assert_eq!(q.offer(&frame(100, 4), Some(7), t1), HELD);
        let mut out = Vec::new();
        assert_eq!(q.release(&mut out, t1), None);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].bytes()[0], 3);
        assert_eq!(vlan::tag_of(&out[1]), Some(7), "tagged as it will leave");
        q.recycle(&mut out);
        // Fill the queue: 64 KiB, then refused.
        let mut n = 0;
        while q.offer(&frame(1024, 5), None, t1) == HELD {
            n += 1;
        }
        assert_eq!(n, 64, "64 KiB held, then refused");
        // At 100 KiB/s the next KiB leaves about 10 ms after the last.
        let next = q.release(&mut out, t1).unwrap();
        assert!(next > t1 && next < t1 + Duration::from_millis(20));
    }

    #[test]
    fn a_tcp_gso_frame_that_does_not_fit_whole_waits_as_the_segments_that_fit() {
        let t0 = Instant::now();
        let tb = TokenBucket {
            average_kib: 100,
            peak_kib: None,
            burst_kib: Some(1),
        };
        let mut q = InboundQueue::new(Shaper::new(&tb, t0));
        assert_eq!(q.offer(&frame(1024, 1), None, t0), Offer::Now);
        // Two IPv4/TCP GSO frames of 60000 bytes of payload in 1000-byte segments.
        let mut f = Frame::full();
        f.len = 14 + 20 + 20 + 60000;
        let b = &mut f.data[HEADROOM..];
        b[12..14].copy_from_slice(&[0x08, 0x00]);
        b[14] = 0x45;
        b[14 + 9] = 6;
        b[14 + 32] = 0x50;
        f.hdr = crate::vnet_hdr::VnetHdr {
            flags: crate::vnet_hdr::F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1000,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut dropped = 0;
        for _ in 0..2 {
            let Offer::Held { dropped: d } = q.offer(&f, None, t0) else {
                panic!("not held");
            };
            dropped += d;
        }
        // The first fits whole (60054 of 65536 bytes); of the second, 5 segments fit.
        assert_eq!(q.frames.len(), 6);
        assert_eq!(dropped, 55);
        assert_eq!(q.frames[0].len, 60054);
        assert_eq!(q.frames[0].hdr.gso_kind(), GSO_TCPV4);
        assert!(q
            .frames
            .iter()
            .skip(1)
            .all(|s| s.len == 1054 && s.hdr.gso_kind() == 0));
    }
}
