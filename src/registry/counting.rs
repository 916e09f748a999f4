//! Download counts without a write per download: each process counts its downloads in memory
//! and writes them with the package's `last_downloaded_at`, the write a download made at most
//! once a minute per package already. Counts a process has not written yet are written by
//! the next download of the package that finds `last_downloaded_at` a minute old, or by
//! [`Registry::flush_downloads`] once they are a minute old (`depot serve` runs it every
//! [`FLUSH_EVERY`], and at shutdown); a process that dies loses what it had not written:
//! at most about a minute of its downloads of each package.

use super::{DOWNLOAD_MARK_RESOLUTION_MS, Registry};
use crate::domain::{Downloads, FileName, Package, PackageFile, Timestamp};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often `depot serve` writes counts that waited a minute.
pub const FLUSH_EVERY: Duration = Duration::from_secs(20);

/// Counts wait at most this long for the next download to carry them.
const HOLD: Duration = Duration::from_millis(DOWNLOAD_MARK_RESOLUTION_MS as u64);

/// One package's downloads counted and not yet written.
struct Pending {
    package: Package,
    since: Instant,
    package_count: u64,
    files: HashMap<i64, (FileName, u64)>,
}

impl Pending {
    fn downloads(&self) -> Downloads {
        Downloads {
            package: self.package_count,
            files: self
                .files
                .iter()
                .map(|(id, (name, n))| (*id, name.clone(), *n))
                .collect(),
        }
    }

    /// Count `other` in too (a write that failed gives its counts back).
    fn merge(&mut self, other: Pending) {
        self.package_count += other.package_count;
        self.since = self.since.min(other.since);
        for (id, (name, n)) in other.files {
            self.files.entry(id).or_insert((name, 0)).1 += n;
        }
    }
}

/// A process's downloads not yet written, by package id.
#[derive(Default)]
pub(super) struct Tally {
    pending: Mutex<HashMap<i64, Pending>>,
}

impl Tally {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, package: &Package, file: &PackageFile) {
        let mut pending = self.lock();
        let entry = pending.entry(package.id).or_insert_with(|| Pending {
            package: package.clone(),
            since: Instant::now(),
            package_count: 0,
            files: HashMap::new(),
        });
        entry.package_count += 1;
        entry
            .files
            .entry(file.id)
            .or_insert((file.file_name.clone(), 0))
            .1 += 1;
    }

    /// Take the counts of the packages `which` picks.
    fn take(&self, which: impl Fn(i64, &Pending) -> bool) -> Vec<Pending> {
        let mut pending = self.lock();
        let ids: Vec<i64> = pending
            .iter()
            .filter(|(id, p)| which(**id, p))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| pending.remove(&id))
            .collect()
    }

    fn give_back(&self, taken: Pending) {
        let mut pending = self.lock();
        match pending.get_mut(&taken.package.id) {
            Some(kept) => kept.merge(taken),
            None => {
                pending.insert(taken.package.id, taken);
            }
        }
    }
}

impl Registry {
    /// Count a download of `file`; write this package's counts if its `last_downloaded_at`
    /// is a minute old (as GitLab's download writes it), and any that waited a minute.
    pub(super) async fn count_download(&self, package: &Package, file: &PackageFile) {
        self.metrics.downloaded(file.size);
        self.tally.count(package, file);
        let now = Timestamp::now();
        let due = package
            .last_downloaded_at
            .is_none_or(|at| now.millis() - at.millis() >= DOWNLOAD_MARK_RESOLUTION_MS);
        let id = package.id;
        let taken = self
            .tally
            .take(|pid, p| (due && pid == id) || p.since.elapsed() >= HOLD);
        self.write_counts(taken).await;
    }

    /// Write the counts held a minute or more (`all`: every count held, as a process stops);
    /// how many packages' counts were written.
    pub async fn flush_downloads(&self, all: bool) -> usize {
        let taken = self.tally.take(|_, p| all || p.since.elapsed() >= HOLD);
        self.write_counts(taken).await
    }

    async fn write_counts(&self, taken: Vec<Pending>) -> usize {
        let mut written = 0;
        for pending in taken {
            let at = Timestamp::now();
            match self
                .meta
                .record_downloads(&pending.package, at, &pending.downloads())
                .await
            {
                Ok(()) => written += 1,
                Err(e) => {
                    // Kept for the next try: a download is not failed for its bookkeeping.
                    tracing::warn!(package_id = pending.package.id, error = %e, "download counts not written; kept for later");
                    self.tally.give_back(pending);
                }
            }
        }
        written
    }
}
