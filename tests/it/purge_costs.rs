//! What one purge pass costs the embedded store, in calls on its one connection. The purge
//! asked once or twice per file, and each call waited its turn behind every request, so under
//! `make soak`'s sustained deletes it fell ever further behind until the disk was full. A pass
//! now asks about the whole batch at once and forgets it at once: its cost does not grow with
//! the batch. It still keeps a blob another record names, and the last record of a shared blob
//! takes the blob with it.

use bytes::Bytes;
use depot::admin::Admin;
use depot::domain::{
    FileName, NewFile, Package, PackageFile, PackageName, PackageVersion, Timestamp,
};
use depot::store::fs::FsBlobStore;
use depot::store::sqlite::SqliteMetaStore;
use depot::store::{Accept, BlobStore, MetaStore, StoreError};
use depot::{Limits, Registry};
use futures::StreamExt;
use std::sync::Arc;

const PACKAGES: usize = 60;
const FILES: usize = 5;
const LOOSE: usize = 40;

struct World {
    _dir: tempfile::TempDir,
    sqlite: Arc<SqliteMetaStore>,
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    registry: Registry,
    project: i64,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(SqliteMetaStore::open(&dir.path().join("depot.db")).unwrap());
        let meta: Arc<dyn MetaStore> = sqlite.clone();
        let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        let registry = Registry::new(
            meta.clone(),
            blobs.clone(),
            Limits::at_most(depot::config::DEFAULT_MAX_FILE_SIZE),
        );
        let admin = Admin::new(meta.clone());
        admin.create_group("g").await.unwrap();
        let project = admin.create_project("g/a", false).await.unwrap().id;
        Self {
            _dir: dir,
            sqlite,
            meta,
            blobs,
            registry,
            project,
        }
    }

    /// Publish file `file` of package `package` with its bytes under `blob_key`.
    async fn publish(&self, package: &str, file: &str, blob_key: &str) -> (Package, PackageFile) {
        let body = futures::stream::iter([Ok(Bytes::from_static(b"abc"))]).boxed();
        // A blob several records name is put once.
        if self.blobs.head(blob_key).await.is_err() {
            self.blobs
                .put(blob_key, body, &Accept::any())
                .await
                .unwrap();
        }
        let new = NewFile {
            event: crate::support::draft(),
            project_id: self.project,
            name: PackageName::parse(package).unwrap(),
            version: PackageVersion::parse("1.0").unwrap(),
            status: None,
            file_name: FileName::parse(None, file).unwrap(),
            size: 3,
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
            blob_key: blob_key.into(),
            content: None,
            refuse_duplicate: false,
            commits: None,
            now: Timestamp::now(),
        };
        self.meta.publish(new).await.unwrap()
    }

    async fn blob_exists(&self, key: &str) -> bool {
        match self.blobs.head(key).await {
            Ok(_) => true,
            Err(StoreError::NotFound { .. }) => false,
            Err(e) => panic!("head {key}: {e}"),
        }
    }
}

#[tokio::test]
async fn a_purge_pass_costs_the_same_few_calls_whatever_its_size() {
    let world = World::new().await;
    let mut blob_keys = Vec::new();
    for p in 0..PACKAGES {
        let mut package = None;
        for f in 0..FILES {
            let key = depot::store::new_blob_key();
            package = Some(
                world
                    .publish(&format!("p{p}"), &format!("f{f}"), &key)
                    .await
                    .0,
            );
            blob_keys.push(key);
        }
        let package = package.unwrap();
        world
            .meta
            .delete_package(&package, Timestamp::now(), &crate::support::ev())
            .await
            .unwrap();
    }
    for f in 0..LOOSE {
        let key = depot::store::new_blob_key();
        let (package, file) = world.publish("loose", &format!("f{f}"), &key).await;
        world
            .meta
            .delete_file(&package, &file, Timestamp::now(), &crate::support::ev())
            .await
            .unwrap();
        blob_keys.push(key);
    }
    let kept = depot::store::new_blob_key();
    world.publish("loose", "kept", &kept).await;

    let before = world.sqlite.round_trips();
    let purged = world.registry.purge(PACKAGES + LOOSE).await.unwrap();
    let calls = world.sqlite.round_trips() - before;

    assert_eq!(
        (purged.packages, purged.files, purged.blobs),
        (PACKAGES, PACKAGES * FILES + LOOSE, PACKAGES * FILES + LOOSE)
    );
    // Which are doomed, their packages' files, which blobs other records name, their
    // packages' files again (a file landed since keeps its package for the next pass), forget
    // them. Asked per file, the old pass made 801 calls.
    assert_eq!(calls, 5, "calls on the connection for one purge pass");
    for key in &blob_keys {
        assert!(
            !world.blob_exists(key).await,
            "blob {key} outlived its record"
        );
    }
    assert!(world.blob_exists(&kept).await);
    assert_eq!(world.registry.purge(100).await.unwrap(), Default::default());
}

#[tokio::test]
async fn a_blob_goes_with_the_last_record_that_names_it() {
    let world = World::new().await;
    let (shared_with_live, shared_by_doomed) =
        (depot::store::new_blob_key(), depot::store::new_blob_key());
    // One doomed record and one live record name the first blob; three doomed records, in a
    // deleted package and loose, name the second.
    let (live, _) = world.publish("live", "a", &shared_with_live).await;
    let (doomed_package, doomed) = world.publish("doomed", "a", &shared_with_live).await;
    world
        .meta
        .delete_file(
            &doomed_package,
            &doomed,
            Timestamp::now(),
            &crate::support::ev(),
        )
        .await
        .unwrap();
    let (package, _) = world.publish("gone", "a", &shared_by_doomed).await;
    world.publish("gone", "b", &shared_by_doomed).await;
    let (doomed_package, loose) = world.publish("doomed", "b", &shared_by_doomed).await;
    world
        .meta
        .delete_file(
            &doomed_package,
            &loose,
            Timestamp::now(),
            &crate::support::ev(),
        )
        .await
        .unwrap();
    world
        .meta
        .delete_package(&package, Timestamp::now(), &crate::support::ev())
        .await
        .unwrap();

    let purged = world.registry.purge(10).await.unwrap();

    assert_eq!((purged.packages, purged.files, purged.blobs), (1, 4, 1));
    assert!(
        world.blob_exists(&shared_with_live).await,
        "a live record names it"
    );
    assert!(!world.blob_exists(&shared_by_doomed).await);
    let files = world.meta.files_of(live.id).await.unwrap();
    assert_eq!(files.len(), 1, "the live record stays");
}
