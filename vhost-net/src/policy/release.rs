//! The releaser: one thread per switch that delivers the frames held in ports' inbound
//! queues ([`super::queue`]) when their buckets allow, sleeping until the next one may leave
//! (or a frame is held on an empty queue).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::core::SwitchCore;
use crate::rx::RxScratch;

/// Longest sleep (a safety net: a wake-up is never needed for correctness beyond this).
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// The releaser thread of one switch.
#[derive(Default)]
pub struct Releaser {
    woken: Mutex<bool>,
    cond: Condvar,
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Releaser {
    /// Starts the thread for `core` (which owns this releaser, hence the weak reference).
    pub fn start(&self, core: Weak<SwitchCore>) {
        let h = std::thread::Builder::new()
            .name("vsw-release".into())
            .spawn(move || run(core));
        match h {
            Ok(h) => *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(h),
            Err(e) => log::error!("cannot start the inbound rate releaser: {e}"),
        }
    }

    /// A frame was held on an empty queue: look at the queues now.
    pub fn wake(&self) {
        let mut w = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        *w = true;
        self.cond.notify_one();
    }

    /// Stops and joins the thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake();
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }

    fn sleep(&self, until: Option<Instant>) {
        let d = until
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        let mut w = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        if !*w && !d.is_zero() {
            w = self
                .cond
                .wait_timeout(w, d)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        *w = false;
    }
}

fn run(core: Weak<SwitchCore>) {
    let mut out = Vec::new();
    let mut idx: Vec<usize> = Vec::new();
    let mut sc = RxScratch::default();
    // The switch stops this thread (and joins it) before it goes away.
    while let Some(core) = core.upgrade() {
        if core.releaser.stop.load(Ordering::Acquire) {
            return;
        }
        let mut next: Option<Instant> = None;
        for port in core.ports().iter() {
            let rt = port.runtime();
            let Some(q) = &rt.inbound else {
                continue;
            };
            let wake = q
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(&mut out, Instant::now());
            if !out.is_empty() {
                idx.clear();
                idx.extend(0..out.len());
                port.deliver(&mut out, &idx, 0, &mut sc);
                q.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .recycle(&mut out);
            }
            if let Some(w) = wake {
                next = Some(next.map_or(w, |n: Instant| n.min(w)));
            }
        }
        core.releaser.sleep(next);
    }
}
