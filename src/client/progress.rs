//! Bytes moved so far, on stderr: a bar on a terminal, plain lines (every part, or every 10%)
//! otherwise, so a CI log shows progress without a line per chunk.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(super) struct Progress {
    total: u64,
    done: AtomicU64,
    bar: Option<indicatif::ProgressBar>,
    last_tenth: AtomicU64,
}

impl Progress {
    pub(super) fn new(total: u64, what: &str) -> Arc<Self> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            bar
        });
        if bar.is_none() {
            eprintln!("depot: {what} {}", human(total));
        }
        Arc::new(Self {
            total,
            done: AtomicU64::new(0),
            bar,
            last_tenth: AtomicU64::new(0),
        })
    }

    pub(super) fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let tenth = (done * 10).checked_div(self.total).unwrap_or(10);
                if self.last_tenth.fetch_max(tenth, Ordering::Relaxed) < tenth {
                    eprintln!(
                        "depot: {} of {} ({}%)",
                        human(done),
                        human(self.total),
                        tenth * 10
                    );
                }
            }
        }
    }

    /// Takes back bytes of a request that failed (it is sent again).
    pub(super) fn sub(&self, n: u64) {
        self.done.fetch_sub(n, Ordering::Relaxed);
    }

    pub(super) fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("depot: {line}"),
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn sizes_read_like_a_person_would_write_them() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(200 << 20), "200.0 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
