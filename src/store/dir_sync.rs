//! Grouped directory syncs for the fs store. A new name (a rename or link into place) is
//! durable only once its directory is synced, and one sync covers every name made in the
//! directory before it began. Puts whose names were made while a sync of their directory ran
//! wait for it to end and share the next one, rather than each syncing in turn: under
//! concurrent publishes the blob directory was synced once per publish.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Directories tracked at most; past that the map starts again (the state only saves syncs,
/// it never skips one a name needs).
const TRACKED: usize = 1024;

#[derive(Default)]
pub struct DirSyncs(Mutex<HashMap<PathBuf, Arc<DirSync>>>);

#[derive(Default)]
struct DirSync {
    /// Names made in the directory so far (each takes a ticket once it is made).
    named: AtomicU64,
    /// The tickets covered by the last sync that ended; held while a sync runs.
    synced: Mutex<u64>,
    /// Syncs run so far.
    performed: AtomicU64,
}

impl DirSyncs {
    /// Make durable the name just made in `dir`: sync the directory, unless a sync that began
    /// after the name was made has ended by the time it is our turn.
    pub fn sync(&self, dir: &Path) -> std::io::Result<()> {
        let state = self.state_of(dir);
        let ticket = state.named.fetch_add(1, Ordering::SeqCst) + 1;
        let mut synced = state.synced.lock().unwrap_or_else(PoisonError::into_inner);
        if *synced >= ticket {
            return Ok(());
        }
        // Every ticket up to here was taken after its name was made, so before this sync.
        let covers = state.named.load(Ordering::SeqCst);
        std::fs::File::open(dir)?.sync_all()?;
        state.performed.fetch_add(1, Ordering::Relaxed);
        *synced = covers;
        Ok(())
    }

    fn state_of(&self, dir: &Path) -> Arc<DirSync> {
        let mut dirs: MutexGuard<'_, _> = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if dirs.len() >= TRACKED && !dirs.contains_key(dir) {
            dirs.clear();
        }
        dirs.entry(dir.to_path_buf()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names made while a sync of their directory runs are covered by one more sync, not one
    /// each; a name made after a sync began is never taken as covered by it.
    #[test]
    fn names_made_during_a_sync_share_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let syncs = Arc::new(DirSyncs::default());
        let state = syncs.state_of(dir.path());
        // A sync in progress: its lock is held, and it covers the names made so far (none).
        let running = state.synced.lock().unwrap();
        let waiting: Vec<_> = (0..4)
            .map(|_| {
                let (syncs, dir) = (syncs.clone(), dir.path().to_path_buf());
                std::thread::spawn(move || syncs.sync(&dir).unwrap())
            })
            .collect();
        while state.named.load(Ordering::SeqCst) < 4 {
            std::thread::yield_now();
        }
        drop(running);
        for w in waiting {
            w.join().unwrap();
        }
        // The first to get the lock synced for all four; the other three found it done.
        assert_eq!(*state.synced.lock().unwrap(), 4);
        assert_eq!(state.performed.load(Ordering::Relaxed), 1);
        // A name made now is not covered by that sync.
        syncs.sync(dir.path()).unwrap();
        assert_eq!(*state.synced.lock().unwrap(), 5);
        assert_eq!(state.performed.load(Ordering::Relaxed), 2);
    }
}
