//! What the soak counts and prints: operations by kind and outcome, faults injected and
//! survived, invariants checked and broken.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::api::Answer;

/// How an operation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Done (2xx).
    Ok,
    /// Accepted, finishing later (202: a detach waiting for the guest).
    Pending,
    /// Refused as a user error (4xx): the error kind and message.
    Refused(String, String),
    /// A fault (5xx, or no answer): what happened.
    Failed(String),
}

impl Outcome {
    /// The outcome of a request.
    pub fn of(r: Result<Answer, String>) -> Outcome {
        match r {
            Err(e) => Outcome::Failed(e),
            Ok(a) if a.status == 202 => Outcome::Pending,
            Ok(a) if a.ok() => Outcome::Ok,
            Ok(a) if (400..500).contains(&a.status) => {
                Outcome::Refused(a.kind().to_string(), a.message())
            }
            Ok(a) => Outcome::Failed(format!("HTTP {} {}: {}", a.status, a.kind(), a.message())),
        }
    }

    /// One word.
    pub fn word(&self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Pending => "pending".into(),
            Outcome::Refused(k, m) => format!("refused ({k}): {m}"),
            Outcome::Failed(m) => format!("FAILED: {m}"),
        }
    }
}

/// Counts per operation kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpCount {
    /// 2xx.
    pub ok: u64,
    /// 202.
    pub pending: u64,
    /// 4xx.
    pub refused: u64,
    /// 5xx or no answer.
    pub failed: u64,
}

/// A broken invariant, counted once per distinct key.
#[derive(Debug, Clone)]
pub struct Broken {
    /// Steps at which it was seen.
    pub times: u64,
    /// The first step.
    pub first_step: u64,
    /// What the check saw the first time, and the steps before it.
    pub detail: String,
}

/// Everything counted.
#[derive(Debug, Default)]
pub struct Stats {
    /// Steps done.
    pub steps: u64,
    /// Per operation kind.
    pub ops: BTreeMap<&'static str, OpCount>,
    /// Refusals by error kind.
    pub refusal_kinds: BTreeMap<String, u64>,
    /// Unexpected errors (failed operations): step, operation, message.
    pub failures: Vec<String>,
    /// Faults: kind → (injected, survived).
    pub faults: BTreeMap<&'static str, (u64, u64)>,
    /// Invariant checks run (each check of each step counts once).
    pub checks: u64,
    /// Broken invariants by key.
    pub broken: BTreeMap<String, Broken>,
    /// Registry probes done.
    pub probes: u64,
}

impl Stats {
    /// Counts an operation's outcome.
    pub fn op(&mut self, kind: &'static str, step: u64, what: &str, o: &Outcome) {
        let c = self.ops.entry(kind).or_default();
        match o {
            Outcome::Ok => c.ok += 1,
            Outcome::Pending => c.pending += 1,
            Outcome::Refused(k, _) => {
                c.refused += 1;
                *self
                    .refusal_kinds
                    .entry(format!("{kind}: {k}"))
                    .or_default() += 1;
            }
            Outcome::Failed(m) => {
                c.failed += 1;
                self.failures.push(format!("step {step}: {what}: {m}"));
            }
        }
    }

    /// Records a broken invariant; true when it is new.
    pub fn broke(&mut self, step: u64, key: &str, detail: &str) -> bool {
        match self.broken.get_mut(key) {
            Some(b) => {
                b.times += 1;
                false
            }
            None => {
                self.broken.insert(
                    key.to_string(),
                    Broken {
                        times: 1,
                        first_step: step,
                        detail: detail.to_string(),
                    },
                );
                true
            }
        }
    }

    /// Operations done.
    pub fn total(&self) -> OpCount {
        self.ops.values().fold(OpCount::default(), |a, c| OpCount {
            ok: a.ok + c.ok,
            pending: a.pending + c.pending,
            refused: a.refused + c.refused,
            failed: a.failed + c.failed,
        })
    }

    /// One progress line.
    pub fn progress(&self, elapsed: u64) -> String {
        let t = self.total();
        let faults: u64 = self.faults.values().map(|f| f.0).sum();
        format!(
            "[soak] {:>3}m{:02}s step {}: ops ok {} pending {} refused {} failed {}; faults {}; checks {}; broken {}",
            elapsed / 60,
            elapsed % 60,
            self.steps,
            t.ok,
            t.pending,
            t.refused,
            t.failed,
            faults,
            self.checks,
            self.broken.len()
        )
    }

    /// The final summary.
    pub fn summary(&self, seed: u64, elapsed: u64) -> String {
        let mut s = String::new();
        let t = self.total();
        let _ = writeln!(
            s,
            "==== soak summary (seed {seed}, {}m{:02}s, {} steps) ====",
            elapsed / 60,
            elapsed % 60,
            self.steps
        );
        let _ = writeln!(
            s,
            "operations: {} (ok {}, pending {}, refused {}, failed {})",
            t.ok + t.pending + t.refused + t.failed,
            t.ok,
            t.pending,
            t.refused,
            t.failed
        );
        for (k, c) in &self.ops {
            let _ = writeln!(
                s,
                "  {k:<16} ok {:>5}  pending {:>4}  refused {:>4}  failed {:>3}",
                c.ok, c.pending, c.refused, c.failed
            );
        }
        if !self.refusal_kinds.is_empty() {
            let _ = writeln!(s, "refusals by kind:");
            for (k, n) in &self.refusal_kinds {
                let _ = writeln!(s, "  {k}: {n}");
            }
        }
        let inj: u64 = self.faults.values().map(|f| f.0).sum();
        let surv: u64 = self.faults.values().map(|f| f.1).sum();
        let _ = writeln!(s, "faults injected: {inj}, survived: {surv}");
        for (k, (i, v)) in &self.faults {
            let _ = writeln!(s, "  {k:<16} injected {i:>4}  survived {v:>4}");
        }
        let _ = writeln!(
            s,
            "invariant checks: {}, registry probes: {}",
            self.checks, self.probes
        );
        if !self.failures.is_empty() {
            let _ = writeln!(s, "unexpected errors ({}):", self.failures.len());
            for f in self.failures.iter().take(40) {
                let _ = writeln!(s, "  {f}");
            }
            if self.failures.len() > 40 {
                let _ = writeln!(
                    s,
                    "  ... and {} more (see the step log)",
                    self.failures.len() - 40
                );
            }
        }
        let _ = writeln!(s, "invariants broken: {}", self.broken.len());
        for (k, b) in &self.broken {
            let _ = writeln!(
                s,
                "  BROKEN {k} (first at step {}, seen {} times)",
                b.first_step, b.times
            );
            for l in b.detail.lines() {
                let _ = writeln!(s, "      {l}");
            }
        }
        s
    }
}
