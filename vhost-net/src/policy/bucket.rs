//! Token buckets (libvirt `<bandwidth>` `average`, `peak`, `burst`, in KiB/s and KiB): a
//! frame passes when the buckets hold tokens for it, else it is dropped, as tc's policer
//! and TBF do (TCP backs off on the drops and settles at the rate).
//!
//! A frame may take a bucket into debt (a 64 KiB GSO frame passes a smaller bucket when it
//! is full, and the debt is paid before anything else passes): the long-run rate is exact
//! and a frame larger than the burst is never stuck.

use std::time::{Duration, Instant};

use virtnet_vswitch_control::TokenBucket;

/// How long a burst lasts at the average rate when libvirt's `burst` is not given.
const DEFAULT_BURST_SECS: f64 = 0.1;
/// Smallest default burst (130 ms at 1 Mbit/s: a late wake-up of the switch loses no tokens).
const MIN_DEFAULT_BURST: f64 = 16384.0;
/// The peak bucket holds one full-size frame (TBF's `mtu`): bursts leave at the peak rate.
const PEAK_DEPTH: f64 = 1514.0;

#[derive(Debug, Clone)]
struct Bucket {
    /// Bytes per second.
    rate: f64,
    /// Largest number of tokens (bytes).
    depth: f64,
    /// Tokens now (negative: debt).
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, depth: f64, now: Instant) -> Self {
        Bucket {
            rate,
            depth,
            tokens: depth,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.depth);
    }

    fn ready(&self, len: f64) -> bool {
        self.tokens >= len.min(self.depth)
    }

    /// When (after the last refill) the bucket will be [`Bucket::ready`] for `len`.
    fn ready_at(&self, len: f64) -> Instant {
        let missing = len.min(self.depth) - self.tokens;
        if missing <= 0.0 {
            return self.last;
        }
        self.last + Duration::from_secs_f64(missing / self.rate)
    }
}

/// One direction's limit: the average bucket and, with `peak`, a one-frame bucket at the
/// peak rate.
#[derive(Debug, Clone)]
pub struct Shaper {
    avg: Bucket,
    peak: Option<Bucket>,
}

impl Shaper {
    /// Buckets for `tb`, full at `now`.
    pub fn new(tb: &TokenBucket, now: Instant) -> Self {
        let rate = tb.average_kib as f64 * 1024.0;
        let depth = match tb.burst_kib {
            Some(b) => (b as f64 * 1024.0).max(1.0),
            None => (rate * DEFAULT_BURST_SECS).max(MIN_DEFAULT_BURST),
        };
        Shaper {
            avg: Bucket::new(rate, depth, now),
            peak: tb
                .peak_kib
                .map(|p| Bucket::new(p as f64 * 1024.0, PEAK_DEPTH, now)),
        }
    }

    /// Bytes that may leave at `now` (positive), or when something may leave again.
    pub fn budget(&mut self, now: Instant) -> Result<u64, Instant> {
        self.avg.refill(now);
        let mut t = self.avg.tokens;
        let mut at = self.avg.ready_at(1.0);
        if let Some(p) = &mut self.peak {
            p.refill(now);
            t = t.min(p.tokens);
            at = at.max(p.ready_at(1.0));
        }
        if t >= 1.0 {
            Ok(t as u64)
        } else {
            Err(at)
        }
    }

    /// Takes the tokens of a frame of `len` bytes that left (the buckets may go into debt).
    pub fn charge(&mut self, len: usize) {
        self.avg.tokens -= len as f64;
        if let Some(p) = &mut self.peak {
            p.tokens -= len as f64;
        }
    }

    /// When a frame of `len` bytes may leave (after the last refill).
    pub fn ready_at(&self, len: usize) -> Instant {
        let len = len as f64;
        let at = self.avg.ready_at(len);
        match &self.peak {
            Some(p) => at.max(p.ready_at(len)),
            None => at,
        }
    }

    /// The average rate, bytes per second.
    pub fn rate(&self) -> f64 {
        self.avg.rate
    }

    /// Whether a frame of `len` bytes may leave at `now` (its tokens are taken if so).
    pub fn admit(&mut self, len: usize, now: Instant) -> bool {
        let len = len as f64;
        self.avg.refill(now);
        if let Some(p) = &mut self.peak {
            p.refill(now);
            if !p.ready(len) {
                return false;
            }
        }
        if !self.avg.ready(len) {
            return false;
        }
        self.avg.tokens -= len;
        if let Some(p) = &mut self.peak {
            p.tokens -= len;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tb(average_kib: u64, peak_kib: Option<u64>, burst_kib: Option<u64>) -> TokenBucket {
        TokenBucket {
            average_kib,
            peak_kib,
            burst_kib,
        }
    }

    /// Offers `len`-byte frames every `every` for `secs` seconds of simulated time;
    /// returns the bytes per second that passed.
    fn offer(s: &mut Shaper, t0: Instant, len: usize, every: Duration, secs: u64) -> f64 {
        let mut passed = 0usize;
        let mut t = t0;
        while t < t0 + Duration::from_secs(secs) {
            if s.admit(len, t) {
                passed += len;
            }
            t += every;
        }
        passed as f64 / secs as f64
    }

    #[test]
    fn the_long_run_rate_is_the_average_whatever_is_offered() {
        for (kib, len) in [
            (128u64, 1514usize),
            (1280, 1514),
            (12800, 65536),
            (128, 65536),
        ] {
            let t0 = Instant::now();
            let mut s = Shaper::new(&tb(kib, None, None), t0);
            // Offered at 100x the rate (a frame waits at most 1% of its refill time).
            let every = Duration::from_secs_f64(len as f64 / (kib as f64 * 1024.0 * 100.0));
            let got = offer(&mut s, t0, len, every, 20);
            let want = kib as f64 * 1024.0;
            assert!(
                (got - want).abs() / want < 0.05,
                "{kib} KiB/s with {len}-byte frames: {got:.0} B/s"
            );
        }
    }

    #[test]
    fn under_the_rate_everything_passes() {
        let t0 = Instant::now();
        let mut s = Shaper::new(&tb(1000, None, Some(10)), t0);
        let every = Duration::from_millis(2); // 1000 B / 2 ms = 500 KB/s < 1000 KiB/s
        for k in 0..5000u32 {
            assert!(s.admit(1000, t0 + every * k), "frame {k}");
        }
    }

    #[test]
    fn burst_is_the_bucket_depth_and_a_frame_bigger_than_it_passes_on_debt() {
        let t0 = Instant::now();
        let mut s = Shaper::new(&tb(100, None, Some(10)), t0);
        // A full 10 KiB bucket lets ten 1 KiB frames through at once, not eleven.
        let n = (0..20).filter(|_| s.admit(1024, t0)).count();
        assert_eq!(n, 10);
        // 64 KiB at once through a 10 KiB bucket: passes when full, then 640 ms of debt.
        let t1 = t0 + Duration::from_secs(1);
        assert!(s.admit(65536, t1));
        assert!(!s.admit(64, t1 + Duration::from_millis(500)));
        assert!(s.admit(64, t1 + Duration::from_millis(700)));
    }

    #[test]
    fn budget_says_how_much_may_leave_or_when() {
        let t0 = Instant::now();
        let mut s = Shaper::new(&tb(100, None, Some(10)), t0);
        assert_eq!(s.budget(t0), Ok(10240));
        s.charge(20480); // one big frame: 10 KiB of debt
        let at = s.budget(t0).unwrap_err();
        let wait = at - t0;
        assert!(
            wait > Duration::from_millis(99) && wait < Duration::from_millis(102),
            "{wait:?}"
        );
        assert!(s.budget(at + Duration::from_millis(1)).is_ok());
        assert!(s.ready_at(1024) > at);
    }

    #[test]
    fn peak_is_the_rate_a_burst_drains_at() {
        let t0 = Instant::now();
        // Average 100 KiB/s with a 100 KiB burst, but no faster than 1000 KiB/s.
        let mut s = Shaper::new(&tb(100, Some(1000), Some(100)), t0);
        let every = Duration::from_micros(100); // offered: 1000 B / 100 us = 10 MB/s
        let got = offer(&mut s, t0, 1000, every, 1) as usize;
        // Over the first 100 ms, the burst leaves at about the peak: ~100 KiB, not more.
        let mut s = Shaper::new(&tb(100, Some(1000), Some(100)), t0);
        let mut first = 0;
        for k in 0..1000u32 {
            if s.admit(1000, t0 + every * k) {
                first += 1000;
            }
        }
        let peak_100ms = 1000.0 * 1024.0 * 0.1;
        assert!(
            (first as f64) < peak_100ms * 1.1 && (first as f64) > peak_100ms * 0.85,
            "{first} bytes in the first 100 ms"
        );
        // Over a second: the burst plus the average.
        assert!(got < 100 * 1024 * 2 + 2000, "{got}");
    }
}
