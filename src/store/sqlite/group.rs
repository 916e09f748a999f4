//! Group commit for publishes: a publish queues its rows and asks for the connection; whoever
//! gets it writes every publish queued by then in one transaction, a savepoint each, and one
//! commit (one WAL fsync under `synchronous=FULL`) makes them all durable. Alone, a publish is
//! its own group. Under load, the publishes that arrive while one commit syncs share the next:
//! one fsync per publish held every publish in turn behind the disk (`make bench`: 4 KiB PUTs
//! at 64 clients ran no faster than at 8). Each publish is still answered only after the
//! commit that holds it, so a 201 stays durable; one that fails rolls back its own savepoint
//! and leaves the others be.

use super::packages::publish_rows;
use super::{SqliteMetaStore, db_err};
use crate::domain::{NewFile, Package, PackageFile};
use crate::store::{StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Published = StoreResult<(Package, PackageFile)>;

/// A queued publish and where its outcome goes.
type Job = (NewFile, oneshot::Sender<Published>);

/// Publishes waiting for a commit, with where each one's outcome goes.
#[derive(Default, Clone)]
pub(super) struct Queue {
    waiting: Arc<Mutex<Vec<Job>>>,
    /// Groups committed so far.
    groups: Arc<AtomicU64>,
}

impl Queue {
    /// How many groups have been written (committed or not) so far.
    #[cfg(test)]
    fn groups(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    fn push(&self, f: NewFile) -> oneshot::Receiver<Published> {
        let (tell, told) = oneshot::channel();
        self.lock().push((f, tell));
        told
    }

    /// Every publish waiting, now one group.
    fn take(&self) -> Vec<Job> {
        let group = std::mem::take(&mut *self.lock());
        if !group.is_empty() {
            self.groups.fetch_add(1, Ordering::Relaxed);
        }
        group
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SqliteMetaStore {
    /// Publish `f` with whatever other publishes are queued when the connection is ours.
    pub(super) async fn publish_grouped(&self, f: NewFile) -> Published {
        let told = self.publishes.push(f);
        let queue = self.publishes.clone();
        // Our own publish may be written by a group another caller ran meanwhile; then the
        // queue is empty (or holds later ones) and this call writes those.
        self.call(move |c| {
            let group = queue.take();
            if !group.is_empty() {
                commit_group(c, group);
            }
            Ok(())
        })
        .await?;
        told.await.map_err(StoreError::backend)?
    }
}

/// Write `group` in one transaction and tell each publish its outcome once it is durable (or
/// failed).
fn commit_group(c: &mut Connection, group: Vec<Job>) {
    let mut tx = match c.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            for (_, tell) in group {
                let _ = tell.send(Err(db_err(same_error(&e))));
            }
            return;
        }
    };
    let mut outcomes = Vec::with_capacity(group.len());
    for (f, tell) in group {
        let outcome = match tx.savepoint() {
            Ok(sp) => match publish_rows(&sp, f) {
                Ok(published) => sp.commit().map_err(db_err).map(|()| published),
                // Dropped uncommitted, the savepoint rolls back this publish alone.
                Err(e) => Err(e),
            },
            Err(e) => Err(db_err(e)),
        };
        outcomes.push((outcome, tell));
    }
    let committed = tx.commit();
    for (outcome, tell) in outcomes {
        let outcome = match (&committed, outcome) {
            (Ok(()), outcome) | (Err(_), outcome @ Err(_)) => outcome,
            (Err(e), Ok(_)) => Err(db_err(same_error(e))),
        };
        // A caller that went away has nothing to be told.
        let _ = tell.send(outcome);
    }
}

/// `e` again, for each publish of a group whose commit failed (rusqlite's errors are not
/// `Clone`; SQLite's own carry all that decides how the failure is reported).
fn same_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::ToSqlConversionFailure(other.to_string().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FileName, PackageName, PackageVersion, Timestamp};
    use crate::store::PackageStore;

    fn new_file(project_id: i64, file: &str, refuse_duplicate: bool) -> NewFile {
        NewFile {
            project_id,
            name: PackageName::parse("app").unwrap(),
            version: PackageVersion::parse("1.0").unwrap(),
            status: None,
            file_name: FileName::from_stored(file.into()),
            size: 1,
            sha256: "00".repeat(32),
            blob_key: format!("blobs/{file}"),
            content: None,
            refuse_duplicate,
            now: Timestamp::now(),
            commits: None,
        }
    }

    /// Publishes queued while the connection is busy are committed together, and one refused
    /// among them (a duplicate of another in the same group) fails alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_waiting_together_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteMetaStore::open(&dir.path().join("meta.db")).unwrap());
        let admin = crate::admin::Admin::new(store.clone());
        admin.create_group("g").await.unwrap();
        let project = admin.create_project("g/p", false).await.unwrap().id;
        // Hold the connection, as a commit syncing the WAL does, while publishes arrive.
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (locked, is_locked) = std::sync::mpsc::channel::<()>();
        let conn = store.conn.clone();
        let holder = std::thread::spawn(move || {
            let _held = conn.lock().unwrap();
            locked.send(()).unwrap();
            released.recv().unwrap();
        });
        is_locked.recv().unwrap();
        let files: [&'static str; 5] = ["a", "b", "c", "a", "d"];
        let publishes: Vec<_> = files
            .into_iter()
            .map(|f| {
                let store = store.clone();
                tokio::spawn(async move { store.publish(new_file(project, f, true)).await })
            })
            .collect();
        while store.publishes.lock().len() < files.len() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        release.send(()).unwrap();
        holder.join().unwrap();
        let mut outcomes = Vec::new();
        for p in publishes {
            outcomes.push(p.await.unwrap());
        }
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(StoreError::AlreadyExists { .. })))
            .count();
        assert_eq!(refused, 1, "the second a.bin is a duplicate: {outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 4);
        // Every publish asked for the connection, but the first to get it wrote them all.
        assert_eq!(store.publishes.groups(), 1);
        let files = store
            .files_of(outcomes[0].as_ref().unwrap().0.id)
            .await
            .unwrap();
        assert_eq!(files.len(), 4);
    }
}
