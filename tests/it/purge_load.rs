//! The purge under load: while requests keep the embedded store busy, one purge pass still
//! forgets a full batch of deleted packages promptly. It asked the store once or twice per file
//! and waited its turn behind every request each time, so under `make soak`'s load (about a
//! hundred package deletes a second) it fell ever further behind until the disk was full.

use crate::support::{Backend, TestApp};
use depot::domain::{FileName, NewFile, PackageName, PackageVersion, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PACKAGES: usize = 100;
const FILES: usize = 8;
/// Requests keeping the store busy meanwhile.
const BUSY: usize = 64;

fn new_file(project_id: i64, package: usize, file: usize) -> NewFile {
    NewFile {
        project_id,
        name: PackageName::parse(&format!("p{package}")).unwrap(),
        version: PackageVersion::parse("1.0").unwrap(),
        status: None,
        file_name: FileName::parse(None, &format!("f{file}")).unwrap(),
        size: 3,
        sha256: "ab".repeat(32),
        blob_key: depot::store::new_blob_key(),
        refuse_duplicate: false,
        now: Timestamp::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purge_pass_keeps_up_while_requests_keep_the_store_busy() {
    let app = TestApp::start(Backend::Local).await;
    let meta = app.meta().clone();
    app.group("g").await;
    let project = app.project("g/a", false).await;
    let mut last = None;
    for p in 0..PACKAGES {
        for f in 0..FILES {
            last = Some(meta.publish(new_file(project, p, f)).await.unwrap().0);
        }
        meta.delete_package(last.as_ref().unwrap(), Timestamp::now())
            .await
            .unwrap();
    }
    // Writes, each waiting its turn for the one connection, as publishes and deletes do.
    let stop = Arc::new(AtomicBool::new(false));
    let kept = meta
        .publish(new_file(project, PACKAGES, 0))
        .await
        .unwrap()
        .0;
    let busy: Vec<_> = (0..BUSY)
        .map(|_| {
            let (meta, stop, kept) = (meta.clone(), stop.clone(), kept.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    meta.mark_downloaded(&kept, Timestamp::now()).await.unwrap();
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let purged = app.registry.purge(PACKAGES).await.unwrap();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in busy {
        task.await.unwrap();
    }
    assert_eq!(
        (purged.packages, purged.files),
        (PACKAGES, PACKAGES * FILES)
    );
    // Asked per file it took several seconds here; asked per pass, a few tens of milliseconds.
    assert!(
        took < Duration::from_millis(1500),
        "one purge pass of {PACKAGES} packages took {took:?}"
    );
}
