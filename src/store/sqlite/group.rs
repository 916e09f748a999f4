//! Group commit for publishes: a publish queues its rows, and unless a committer is at work
//! already, becomes it: it asks for the connection, writes every publish queued by then in one
//! transaction, a savepoint each, and one commit (one WAL fsync under `synchronous=FULL`) makes
//! them all durable; then again while publishes wait. Alone, a publish is its own group. Under
//! load, the publishes that arrive while one commit syncs share the next: one fsync per
//! publish held every publish in turn behind the disk (`make bench`: 4 KiB PUTs at 64 clients
//! ran no faster than at 8). Only the committer takes the connection (one blocking step per
//! group, where each publish used to wake a thread of its own to find the queue empty).
//! Each publish is still answered only after the commit that holds it, so a 201 stays
//! durable; one that fails rolls back its own savepoint and leaves the others be.

use super::packages::publish_rows;
use super::{SqliteMetaStore, db_err};
use crate::domain::{NewFile, Package, PackageFile};
use crate::store::{StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// A committer is at work: it commits whatever is queued until the queue is empty.
    committing: Arc<AtomicBool>,
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

    /// Become the committer, unless there is one.
    fn lead(&self) -> bool {
        !self.committing.swap(true, Ordering::SeqCst)
    }

    /// Stop committing; true if a publish queued meanwhile made this the committer again
    /// (otherwise its own publisher, or another committer, writes it).
    fn step_down(&self) -> bool {
        self.committing.store(false, Ordering::SeqCst);
        !self.lock().is_empty() && self.lead()
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
        if self.publishes.lead() {
            // A task of its own: a committer dropped halfway (its caller gone) would leave
            // the queue to no one.
            let (conn, trips) = (self.conn.clone(), self.round_trips.clone());
            tokio::spawn(commit_queued(conn, trips, self.publishes.clone()));
        }
        told.await.map_err(StoreError::backend)?
    }
}

/// As the committer: commit groups, one connection hop each, until none is waiting. A group
/// whose hop failed is told so (its senders dropped); later ones are still written.
async fn commit_queued(conn: Arc<Mutex<Connection>>, round_trips: Arc<AtomicU64>, queue: Queue) {
    loop {
        round_trips.fetch_add(1, Ordering::Relaxed);
        let (conn, group_of) = (conn.clone(), queue.clone());
        let hop = blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let group = group_of.take();
            if !group.is_empty() {
                commit_group(&mut c, group);
            }
        })
        .await;
        if let Err(e) = hop {
            tracing::error!(error = %e, "a group of publishes could not be committed");
        }
        if queue.lock().is_empty() && !queue.step_down() {
            return;
        }
    }
}

/// Run `f`, which blocks (it waits for the connection and syncs the WAL), where it does not
/// hold up other tasks. On a multi-threaded runtime that is right here: tokio hands this
/// worker's other tasks to another thread for the while, which costs less than a hop to the
/// blocking pool and back (alternating A/B runs of 4 KiB PUTs: about +10 % at concurrency 1,
/// +20 % at 8 and +15 % at 64). A single-threaded runtime cannot do that: a blocking thread.
async fn blocking<F>(f: F) -> Result<(), tokio::task::JoinError>
where
    F: FnOnce() + Send + 'static,
{
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f);
            Ok(())
        }
        _ => tokio::task::spawn_blocking(f).await,
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
            event: crate::domain::EventDraft::system(Timestamp::now()),
        }
    }

    /// A store in a temporary directory (kept while the first value lives), with project
    /// `g/p`: its id.
    async fn store_with_project() -> (tempfile::TempDir, Arc<SqliteMetaStore>, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteMetaStore::open(&dir.path().join("meta.db")).unwrap());
        let admin = crate::admin::Admin::new(store.clone());
        admin.create_group("g").await.unwrap();
        let project = admin.create_project("g/p", false).await.unwrap().id;
        (dir, store, project)
    }

    /// Publishes queued while the connection is busy are committed together, and one refused
    /// among them (a duplicate of another in the same group) fails alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_waiting_together_commit_together_and_fail_alone() {
        let (_dir, store, project) = store_with_project().await;
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
        // One committer wrote them all, in one group.
        assert_eq!(store.publishes.groups(), 1);
        // Which of the two a.bin came first in the queue is the scheduler's choice.
        let package = outcomes.iter().flatten().next().unwrap().0.id;
        let files = store.files_of(package).await.unwrap();
        assert_eq!(files.len(), 4);
    }

    /// Publishes arriving while committers come and go are all written: none is left in the
    /// queue with no committer (it would hang).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_publish_is_left_without_a_committer() {
        let (_dir, store, project) = store_with_project().await;
        let publishes: Vec<_> = (0..300)
            .map(|i| {
                let store = store.clone();
                let f = new_file(project, &format!("f{i}"), false);
                tokio::spawn(async move {
                    if i % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                    store.publish(f).await
                })
            })
            .collect();
        let all = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            let mut package = None;
            for p in publishes {
                package = Some(p.await.unwrap().unwrap().0.id);
            }
            package.unwrap()
        })
        .await
        .expect("every publish is answered");
        assert_eq!(store.files_of(all).await.unwrap().len(), 300);
    }
}
