//! The Prometheus text exposition format, version 0.0.4: `# HELP` / `# TYPE` lines, then
//! samples `name{label="value",...} value`.
//!
//! Written here rather than taken from `prometheus-client`: every scrape builds its
//! families afresh from the daemon's state (VMs, taps, switch ports come and go), which
//! that crate's registry of long-lived metric objects does not fit, and the format needs
//! only this much code (escaping is the one subtle part, unit-tested below).

use std::fmt::Write;

/// The `Content-Type` of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Only goes up (name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// `_bucket{le=...}`, `_sum`, `_count`.
    Histogram,
}

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts family `name`: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A sample value: integers without a fraction, `+Inf`/`-Inf`/`NaN` spelled as the format
/// wants.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// A label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A `# HELP` text: `\` → `\\`, newline → `\n` (quotes stay).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("two\nlines"), r"two\nlines");
        assert_eq!(escape_label("plain vm-1 ü"), "plain vm-1 ü");
        let mut e = Exposition::default();
        e.family(
            "x_total",
            "Help with \\ and\nnewline \"quoted\"",
            Kind::Counter,
        );
        e.sample(
            "x_total",
            &[("domain", "we\"ird\\vm\n"), ("mac", "52:54:00:00:00:01")],
            3.0,
        );
        e.sample("x_total", &[], f64::INFINITY);
        assert_eq!(
            e.finish(),
            "# HELP x_total Help with \\\\ and\\nnewline \"quoted\"\n\
             # TYPE x_total counter\n\
             x_total{domain=\"we\\\"ird\\\\vm\\n\",mac=\"52:54:00:00:00:01\"} 3\n\
             x_total +Inf\n"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
    }
}
