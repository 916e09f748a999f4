//! The soak's numbers: requests by kind (latencies, statuses, transport errors), which answers
//! each kind may give, and the Markdown summary of one store pair's run with its verdict.

use std::collections::BTreeMap;
use std::fmt::Write;

/// What a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Publish,
    Download,
    List,
    Files,
    DeleteFile,
    DeletePackage,
    /// The end check's requests (lists, downloads, deletes).
    Verify,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Publish => "publish (PUT generic file)",
            Kind::Download => "download (GET generic file)",
            Kind::List => "list packages (a page)",
            Kind::Files => "list a package's files",
            Kind::DeleteFile => "delete a package file",
            Kind::DeletePackage => "delete a package",
            Kind::Verify => "end check (list, GET, DELETE)",
        }
    }

    /// The statuses this kind may answer under the soak's load; anything else fails it.
    /// A publish asks for its record (`select=package_file`), which GitLab answers with 200
    /// rather than the plain 201. A 404 is right for a download of a deleted file and for a
    /// delete racing another.
    fn allowed(self, status: u16) -> bool {
        match self {
            Kind::Publish => status == 200,
            Kind::Download | Kind::Files => matches!(status, 200 | 404),
            Kind::List => status == 200,
            Kind::DeleteFile | Kind::DeletePackage => matches!(status, 204 | 404),
            Kind::Verify => matches!(status, 200 | 204 | 404),
        }
    }
}

#[derive(Default, Clone)]
pub struct KindStats {
    pub micros: Vec<u32>,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: u64,
}

/// Requests by kind; each worker keeps its own and they are merged at the end.
#[derive(Default, Clone)]
pub struct Stats {
    pub kinds: BTreeMap<Kind, KindStats>,
    /// The first few transport errors, as reqwest said them.
    pub error_samples: Vec<String>,
}

impl Stats {
    pub fn record(&mut self, kind: Kind, micros: u32, status: Result<u16, String>) {
        let k = self.kinds.entry(kind).or_default();
        k.micros.push(micros);
        match status {
            Ok(status) => *k.statuses.entry(status).or_default() += 1,
            Err(e) => {
                k.errors += 1;
                if self.error_samples.len() < 5 {
                    self.error_samples.push(format!("{kind:?}: {e}"));
                }
            }
        }
    }

    pub fn merge(&mut self, other: Stats) {
        for (kind, theirs) in other.kinds {
            let k = self.kinds.entry(kind).or_default();
            k.micros.extend(theirs.micros);
            for (status, n) in theirs.statuses {
                *k.statuses.entry(status).or_default() += n;
            }
            k.errors += theirs.errors;
        }
        let room = 5usize.saturating_sub(self.error_samples.len());
        self.error_samples
            .extend(other.error_samples.into_iter().take(room));
    }

    fn count(&self, load_only: bool) -> u64 {
        self.kinds
            .iter()
            .filter(|(k, _)| !load_only || **k != Kind::Verify)
            .map(|(_, s)| s.micros.len() as u64)
            .sum()
    }

    fn server_errors(&self) -> u64 {
        let statuses = self.kinds.values().flat_map(|s| &s.statuses);
        statuses.filter(|(s, _)| **s >= 500).map(|(_, n)| n).sum()
    }

    /// Every answer a kind may not give, and every transport error, as failures.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (kind, s) in &self.kinds {
            for (status, n) in &s.statuses {
                if !kind.allowed(*status) {
                    out.push(format!("{n} × {status} to {}", kind.describe()));
                }
            }
            if s.errors > 0 {
                out.push(format!(
                    "{} transport errors on {}",
                    s.errors,
                    kind.describe()
                ));
            }
        }
        out.extend(self.error_samples.iter().map(|e| format!("  e.g. {e}")));
        out
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Server memory (VmRSS, MiB): after the warm-up, the largest seen after it, at the end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub start: f64,
    pub peak: f64,
    pub end: f64,
}

impl Memory {
    /// Memory counts as flat when the end is within start + max(64 MiB, start), i.e. the larger
    /// of +64 MiB and twice the start (`main` explains the bound).
    pub fn bound(&self) -> f64 {
        self.start + self.start.max(64.0)
    }
}

/// What the end check found.
#[derive(Debug, Default, Clone)]
pub struct EndCheck {
    /// Files downloaded and hashed (each coordinate's newest, then each older one in turn).
    pub files_verified: u64,
    pub bytes_verified: u64,
    pub coordinates: u64,
    /// Coordinates with no file left that answered 404.
    pub gone_coordinates: u64,
    /// Deleted packages that answered 404.
    pub gone_packages: u64,
    /// Files listed at the end whose publish overlapped their package's delete.
    pub either_kept: u64,
    pub either_gone: u64,
    /// Packages deleted at the very end, before the check that ids are never given twice.
    pub deleted_at_end: u64,
}

/// One store pair's run.
pub struct Run {
    pub pair: &'static str,
    pub seconds: f64,
    pub workers: usize,
    pub stats: Stats,
    pub memory: Memory,
    pub end: EndCheck,
    /// Lost, corrupted, unexpected: from the model while running and from the end check.
    pub violations: Vec<String>,
    /// Warnings and errors the server logged.
    pub logged: Vec<String>,
    pub failures: Vec<String>,
}

impl Run {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Markdown: the verdict, the table by kind, the end check and memory.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let verdict = if self.passed() { "pass" } else { "FAIL" };
        let load = self.stats.count(true);
        let _ = writeln!(out, "### {}: {verdict}\n", self.pair);
        let _ = writeln!(
            out,
            "{:.0} s at concurrency {}: {load} requests ({:.0} req/s), {} answered 5xx.\n",
            self.seconds,
            self.workers,
            load as f64 / self.seconds,
            self.stats.server_errors()
        );
        out.push_str("| op | requests | req/s | p50 ms | p99 ms | statuses |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for (kind, s) in &self.stats.kinds {
            let mut sorted = s.micros.clone();
            sorted.sort_unstable();
            let mut statuses: Vec<String> = s
                .statuses
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            if s.errors > 0 {
                statuses.push(format!("errors: {}", s.errors));
            }
            let rate = if *kind == Kind::Verify {
                "-".to_string()
            } else {
                format!("{:.1}", sorted.len() as f64 / self.seconds)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {rate} | {:.1} | {:.1} | {} |",
                kind.describe(),
                sorted.len(),
                percentile(&sorted, 0.5),
                percentile(&sorted, 0.99),
                statuses.join(", ")
            );
        }
        self.end_lines(&mut out);
        out
    }

    fn end_lines(&self, out: &mut String) {
        let e = &self.end;
        let m = &self.memory;
        let _ = writeln!(
            out,
            "\nEnd check: {} files downloaded and SHA-256-verified ({:.0} MiB) at {} coordinates \
             (the newest, then each older duplicate once the newer one was deleted); {} \
             coordinates with nothing left and {} deleted packages answered 404; {} files \
             published while their package was deleted were kept, {} went with it. Then \
             {} packages deleted, the purge awaited, and a fresh publish checked to get new \
             ids. {} lost, corrupted or unexpected.",
            e.files_verified,
            e.bytes_verified as f64 / (1 << 20) as f64,
            e.coordinates,
            e.gone_coordinates,
            e.gone_packages,
            e.either_kept,
            e.either_gone,
            e.deleted_at_end,
            self.violations.len()
        );
        let _ = writeln!(
            out,
            "\nServer RSS: {:.1} MiB after warm-up, {:.1} MiB peak, {:.1} MiB at the end \
             (bound {:.1} MiB). Server log: {} warnings or errors.",
            m.start,
            m.peak,
            m.end,
            m.bound(),
            self.logged.len()
        );
        if !self.failures.is_empty() {
            let _ = writeln!(out, "\nFailures:\n");
            for f in self.failures.iter().take(30) {
                let _ = writeln!(out, "- {f}");
            }
        }
    }
}
