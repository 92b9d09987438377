//! Polling threads for the transmit queues: each thread serves its share of the queues
//! of all ports in turn (one thread per core, not per port, so ports pinned to one core
//! do not fight over it). A thread polls while there is traffic and for
//! [`SwitchConfig::poll`](crate::SwitchConfig) after it stops, then turns guest kicks
//! back on and sleeps until the next kick.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::backend::{MemCache, NetBackend, Worker};
use crate::rx::Vring;

/// While idle, the clock is read once per this many empty rounds.
const IDLE_CLOCK_EVERY: u32 = 32;

/// One transmit queue to poll.
struct TxSource {
    backend: Arc<NetBackend>,
    qp: usize,
    vring: Vring,
}

struct Shared {
    /// Sources of each thread.
    sources: Vec<Mutex<Vec<Arc<TxSource>>>>,
    version: AtomicU64,
    kicked: Mutex<bool>,
    cond: Condvar,
    stop: AtomicBool,
    poll: Duration,
    next: AtomicU64,
}

/// The pool of polling threads of one switch.
pub struct Poller {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Poller {
    /// Starts `threads` polling threads (at least one).
    pub fn new(threads: usize, poll: Duration) -> Poller {
        let n = threads.max(1);
        let shared = Arc::new(Shared {
            sources: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
            version: AtomicU64::new(0),
            kicked: Mutex::new(false),
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
            poll,
            next: AtomicU64::new(0),
        });
        let handles = (0..n)
            .filter_map(|i| {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name(format!("vsw-poll-{i}"))
                    .spawn(move || run(s, i))
                    .ok()
            })
            .collect();
        Poller {
            shared,
            threads: Mutex::new(handles),
        }
    }

    /// Adds transmit queue pair `qp` of `backend` to the least recently chosen thread.
    pub(crate) fn add(&self, backend: Arc<NetBackend>, qp: usize, vring: Vring) {
        let n = self.shared.sources.len() as u64;
        let i = (self.shared.next.fetch_add(1, Ordering::Relaxed) % n) as usize;
        self.shared.sources[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(TxSource { backend, qp, vring }));
        self.shared.version.fetch_add(1, Ordering::Release);
        self.kick();
    }

    /// Wakes the sleeping threads (a guest kicked a transmit queue).
    pub fn kick(&self) {
        let mut k = self.shared.kicked.lock().unwrap_or_else(|e| e.into_inner());
        *k = true;
        self.shared.cond.notify_all();
    }

    /// Stops and joins the threads.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.kick();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(s: Arc<Shared>, me: usize) {
    let mut w = Worker::default();
    let mut list: Vec<Arc<TxSource>> = Vec::new();
    // This thread's memory snapshot of each source, dropped with the list.
    let mut caches: Vec<MemCache> = Vec::new();
    let mut seen = u64::MAX;
    let mut idle_since: Option<Instant> = None;
    // Empty rounds since the clock was last read (reading it costs more than a round).
    let mut idle_rounds = 0u32;
    // Whether guest kicks may be on for some source (new sources start with them on).
    let mut kicks_on = true;
    // Which sources the last round left alone because of their outbound rate.
    let mut throttled: Vec<bool> = Vec::new();
    while !s.stop.load(Ordering::Acquire) {
        let v = s.version.load(Ordering::Acquire);
        if v != seen {
            let mut src = s.sources[me].lock().unwrap_or_else(|e| e.into_inner());
            src.retain(|t| !t.backend.gone());
            list = src.clone();
            caches = list.iter().map(|_| MemCache::default()).collect();
            seen = v;
            kicks_on = true;
        }
        let mut work = false;
        let mut gone = false;
        throttled.clear();
        w.wake_at = None;
        for (t, mc) in list.iter().zip(caches.iter_mut()) {
            w.throttled = false;
            if t.backend.gone() {
                gone = true;
                *mc = MemCache::default();
            } else {
                work |= t.backend.tx_batch(t.qp, &t.vring, &mut w, mc);
            }
            throttled.push(w.throttled);
        }
        if gone {
            s.version.fetch_add(1, Ordering::Release);
        }
        if work {
            idle_since = None;
            idle_rounds = 0;
            if kicks_on {
                // Polling now: the guests need not kick (a kick costs them a syscall).
                kicks_on = false;
                for t in &list {
                    t.backend.set_tx_notification(&t.vring, false);
                }
            }
            continue;
        }
        idle_rounds = idle_rounds.wrapping_add(1);
        if idle_since.is_some() && idle_rounds % IDLE_CLOCK_EVERY != 0 {
            std::hint::spin_loop();
            continue;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() < s.poll {
            std::hint::spin_loop();
            continue;
        }
        // Going to sleep: ask for kicks, and look once more (a frame may have arrived
        // before the guest saw the request).
        // A queue held back by its outbound rate has frames waiting: it is read again when
        // its bucket allows (`wake_at`), not at once.
        let mut again = false;
        kicks_on = true;
        for (t, held) in list.iter().zip(&throttled) {
            let pending = t.backend.set_tx_notification(&t.vring, true);
            again |= pending && !held;
        }
        if again {
            continue;
        }
        let nap = w
            .wake_at
            .map_or(Duration::from_millis(100), |at| {
                at.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(100));
        let mut k = s.kicked.lock().unwrap_or_else(|e| e.into_inner());
        if !*k && !nap.is_zero() {
            k = s
                .cond
                .wait_timeout(k, nap)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        *k = false;
        drop(k);
        // Poll again (and keep kicks on until there is work).
        idle_since = Some(Instant::now() - s.poll);
    }
}
