//! The one table the benchmark prints: a row per measurement with its figure, what SPEC §9
//! asks of it (when it asks anything), and whether the figure meets it. Rows are collected as
//! the phases run and printed at the end, as text or (`--json`) as one JSON document.

use serde::Serialize;

/// Whether a row meets its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Meets,
    Misses,
    /// A figure SPEC §9 sets no budget for (context, growth, the floor).
    Info,
    /// The phase could not run (e.g. no PostgreSQL); `figure` says why.
    Skipped,
    /// The phase failed; `figure` holds the error.
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `held`, `throughput`, `latency`, `verification`, `limit`.
    pub section: &'static str,
    pub name: String,
    /// The headline number, already formatted with its unit.
    pub figure: String,
    /// Secondary numbers (RSS, rates, ratios), formatted.
    pub detail: String,
    pub budget: String,
    pub verdict: Verdict,
    /// The headline number unformatted, for `--json` readers.
    pub value: Option<f64>,
}

impl Row {
    pub fn info(section: &'static str, name: impl Into<String>, figure: String) -> Self {
        Self {
            section,
            name: name.into(),
            figure,
            detail: String::new(),
            budget: String::new(),
            verdict: Verdict::Info,
            value: None,
        }
    }

    pub fn failed(section: &'static str, name: impl Into<String>, error: &anyhow::Error) -> Self {
        Self {
            verdict: Verdict::Error,
            ..Self::info(section, name, format!("{error:#}"))
        }
    }

    pub fn skipped(section: &'static str, name: impl Into<String>, why: String) -> Self {
        Self {
            verdict: Verdict::Skipped,
            ..Self::info(section, name, why)
        }
    }

    pub fn value(mut self, v: f64) -> Self {
        self.value = Some(v);
        self
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = d.into();
        self
    }

    /// Sets the budget text and judges `ok` against it.
    pub fn budget(mut self, text: impl Into<String>, ok: bool) -> Self {
        self.budget = text.into();
        self.verdict = if ok { Verdict::Meets } else { Verdict::Misses };
        self
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub machine: String,
    pub command: String,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn extend(&mut self, rows: impl IntoIterator<Item = Row>) {
        rows.into_iter().for_each(|r| self.push(r));
    }

    pub fn push(&mut self, row: Row) {
        eprintln!(
            "  {:<13} {:<44} {}  {}",
            row.section, row.name, row.figure, row.detail
        );
        self.rows.push(row);
    }

    pub fn any_error(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Error)
    }

    pub fn print_table(&self) {
        let widths = [
            "section".len(),
            self.col(|r| &r.name).max(4),
            self.col(|r| &r.figure).max(6),
            self.col(|r| &r.budget).max(14),
            7,
        ];
        println!("kyso-bench — {}", self.machine);
        println!("command: {}", self.command);
        println!();
        println!(
            "| {:<w0$} | {:<w1$} | {:<w2$} | {:<w3$} | {:<w4$} | detail",
            "section",
            "measurement",
            "figure",
            "SPEC §9 budget",
            "verdict",
            w0 = widths[0].max(12),
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
        println!(
            "|{}|{}|{}|{}|{}|--------",
            "-".repeat(widths[0].max(12) + 2),
            "-".repeat(widths[1] + 2),
            "-".repeat(widths[2] + 2),
            "-".repeat(widths[3] + 2),
            "-".repeat(widths[4] + 2),
        );
        for r in &self.rows {
            let verdict = match r.verdict {
                Verdict::Meets => "meets",
                Verdict::Misses => "MISSES",
                Verdict::Info => "-",
                Verdict::Skipped => "skipped",
                Verdict::Error => "ERROR",
            };
            println!(
                "| {:<w0$} | {:<w1$} | {:<w2$} | {:<w3$} | {:<w4$} | {}",
                r.section,
                r.name,
                r.figure,
                r.budget,
                verdict,
                r.detail,
                w0 = widths[0].max(12),
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4],
            );
        }
    }

    fn col(&self, f: impl Fn(&Row) -> &String) -> usize {
        self.rows
            .iter()
            .map(|r| f(r).chars().count())
            .max()
            .unwrap_or(0)
    }
}

/// `12345.6` → `12,346`.
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated_by_commas() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-1000.0), "-1,000");
    }
}
