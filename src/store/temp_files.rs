//! Files of uploads still being received: created 0600 in `tmp/` under a name that carries the
//! process (`<pid>.<random>.part`), tracked while a request owns them, and swept once nothing
//! does: at start-up and from the purge loop. A file is an orphan when its process is gone, or
//! when it is this process's and no live request holds it; a crash never leaves them for good.

use super::private;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Files named before temp names carried their process are orphans once this old.
const UNOWNED_TEMP_AGE: Duration = Duration::from_secs(3600);

/// The temp files of one store, and which of them live requests hold.
#[derive(Clone)]
pub struct TempFiles {
    dir: PathBuf,
    live: Arc<Mutex<HashSet<PathBuf>>>,
}

/// A temp file a request holds: deleted when dropped unless [`TempFile::keep`] was called
/// (it was renamed into place), and no longer live either way.
pub struct TempFile {
    path: PathBuf,
    armed: bool,
    live: Arc<Mutex<HashSet<PathBuf>>>,
}

impl TempFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file was moved into place: leave it be.
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.path);
    }
}

impl TempFiles {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            live: Arc::default(),
        }
    }

    /// A fresh temp file, open for writing. Registered as live before it exists, so a
    /// concurrent sweep never takes it for an orphan.
    pub fn create(&self) -> std::io::Result<(TempFile, std::fs::File)> {
        let name = format!(
            "{}.{}.part",
            std::process::id(),
            hex::encode(rand::random::<[u8; 12]>())
        );
        let temp = TempFile {
            path: self.dir.join(name),
            armed: true,
            live: self.live.clone(),
        };
        self.lock().insert(temp.path.clone());
        let file = private::file_options()
            .write(true)
            .create_new(true)
            .open(&temp.path)?;
        Ok((temp, file))
    }

    /// Remove every orphaned temp file; how many.
    pub fn sweep(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if self.is_orphan(&path) && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    fn is_orphan(&self, path: &Path) -> bool {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let pid = name.split('.').next().and_then(|p| p.parse::<u32>().ok());
        match pid.filter(|_| name.ends_with(".part") && name.matches('.').count() == 2) {
            Some(pid) if pid == std::process::id() => !self.lock().contains(path),
            Some(pid) if Path::new("/proc/self").exists() => {
                !Path::new("/proc").join(pid.to_string()).exists()
            }
            _ => older_than(path, UNOWNED_TEMP_AGE),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|a| a > age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_orphans_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let temps = TempFiles::new(dir.path().to_path_buf());
        let (held, _file) = temps.create().unwrap();
        // Left by a request of this process that is gone, and by a process that is gone.
        let ours = dir.path().join(format!("{}.0a0b.part", std::process::id()));
        let dead = dir.path().join("4294967295.0c0d.part");
        // Of a process that still runs (pid 1), and an old-style name still young.
        let running = dir.path().join("1.0e0f.part");
        let young = dir.path().join("0123abcd.part");
        for path in [&ours, &dead, &running, &young] {
            std::fs::write(path, b"x").unwrap();
        }
        assert_eq!(temps.sweep(), 2);
        assert!(held.path().exists() && running.exists() && young.exists());
        assert!(!ours.exists() && !dead.exists());
        // Dropped without being kept: gone, and no longer live.
        let path = held.path().to_path_buf();
        drop(held);
        assert!(!path.exists());
        let (kept, _file) = temps.create().unwrap();
        let kept_path = kept.path().to_path_buf();
        kept.keep();
        // Kept means moved into place by its owner; if it is still here, it is an orphan.
        assert!(kept_path.exists());
        assert_eq!(temps.sweep(), 1);
    }
}
