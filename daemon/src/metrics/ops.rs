//! Latency histograms of the daemon's operations (start, attach, detach, update), recorded
//! where those operations run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::text::{Exposition, Kind};

/// Upper bounds of the buckets, in seconds (a TCG start takes about a second here; an attach
/// or detach waits for the guest up to its timeout).
pub const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// An operation whose latency is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// `start`.
    Start,
    /// `attach-device` / `attach-interface`.
    Attach,
    /// `detach-device` / `detach-interface`.
    Detach,
    /// `update-device`.
    Update,
}

impl Op {
    /// Every operation, in label order.
    pub const ALL: [Op; 4] = [Op::Start, Op::Attach, Op::Detach, Op::Update];

    fn label(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Attach => "attach",
            Op::Detach => "detach",
            Op::Update => "update",
        }
    }
}

/// One histogram: counts per bucket (not cumulative), sum and count.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// The latency histograms, per operation and outcome (`ok`, `error`).
#[derive(Debug, Default)]
pub struct OpLatencies {
    table: Mutex<BTreeMap<(Op, bool), Histogram>>,
}

impl OpLatencies {
    /// Records one run of `op` that took `took` and succeeded or not.
    pub fn observe(&self, op: Op, took: Duration, ok: bool) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.entry((op, ok)).or_default().observe(took.as_secs_f64());
    }

    /// Runs `fut` (one `op`) and records how long it took and whether it succeeded.
    pub async fn time<T, E>(
        &self,
        op: Op,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        // Boxed: the operations' futures are large (a start or hot-plug plan and its
        // executor); on the heap they do not add to every caller's stack, which overflowed
        // a 2 MiB tokio worker in debug builds once the timing wrapper nested them.
        let r = Box::pin(fut).await;
        self.observe(op, started.elapsed(), r.is_ok());
        r
    }

    /// Writes `virtnet_operation_duration_seconds` (every operation, outcome `ok` at least,
    /// so that a scraper sees the series before the first run).
    pub fn encode(&self, e: &mut Exposition) {
        const NAME: &str = "virtnet_operation_duration_seconds";
        let t = self.table.lock().unwrap_or_else(|p| p.into_inner()).clone();
        e.family(
            NAME,
            "How long virtnetd's operations took, by operation and outcome.",
            Kind::Histogram,
        );
        for op in Op::ALL {
            for ok in [true, false] {
                let h = match t.get(&(op, ok)) {
                    Some(h) => h.clone(),
                    None if ok => Histogram::default(),
                    None => continue,
                };
                let outcome = if ok { "ok" } else { "error" };
                let mut cumulative = 0;
                for (i, b) in BUCKETS.iter().enumerate() {
                    cumulative += h.buckets[i];
                    let le = format!("{b}");
                    e.sample(
                        &format!("{NAME}_bucket"),
                        &[("op", op.label()), ("outcome", outcome), ("le", &le)],
                        cumulative as f64,
                    );
                }
                let labels = [("op", op.label()), ("outcome", outcome)];
                e.sample(
                    &format!("{NAME}_bucket"),
                    &[labels[0], labels[1], ("le", "+Inf")],
                    h.count as f64,
                );
                e.sample(&format!("{NAME}_sum"), &labels, h.sum);
                e.sample(&format!("{NAME}_count"), &labels, h.count as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let l = OpLatencies::default();
        l.observe(Op::Start, Duration::from_millis(30), true);
        l.observe(Op::Start, Duration::from_millis(700), true);
        l.observe(Op::Attach, Duration::from_secs(500), false);
        let mut e = Exposition::default();
        l.encode(&mut e);
        let t = e.finish();
        let s = "virtnet_operation_duration_seconds";
        assert!(
            t.contains(&format!(
                "{s}_bucket{{op=\"start\",outcome=\"ok\",le=\"0.025\"}} 0\n"
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                "{s}_bucket{{op=\"start\",outcome=\"ok\",le=\"0.05\"}} 1\n"
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                "{s}_bucket{{op=\"start\",outcome=\"ok\",le=\"1\"}} 2\n"
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!("{s}_count{{op=\"start\",outcome=\"ok\"}} 2\n")),
            "{t}"
        );
        // Longer than the last bound: only in +Inf.
        assert!(
            t.contains(&format!(
                "{s}_bucket{{op=\"attach\",outcome=\"error\",le=\"120\"}} 0\n"
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                "{s}_bucket{{op=\"attach\",outcome=\"error\",le=\"+Inf\"}} 1\n"
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!("{s}_count{{op=\"update\",outcome=\"ok\"}} 0\n")),
            "{t}"
        );
        assert!(!t.contains("op=\"update\",outcome=\"error\""), "{t}");
    }
}
