//! Package and file ids on DynamoDB come from leased slots, not a counter write per id: two
//! processes publishing at once on one table never give the same id, their ids follow time,
//! and each process claims its slot once (`request_costs` counts that), not once per id.

use crate::support::dynamo::DynamoEmulator;
use depot::admin::Admin;
use depot::domain::{FileName, NewFile, PackageName, PackageVersion, Timestamp};
use depot::store::PackageStore;
use depot::store::dynamo::DynamoMetaStore;
use std::collections::HashSet;
use std::sync::Arc;

const PER_PROCESS: usize = 100;

fn new_file(project_id: i64, process: usize, i: usize) -> NewFile {
    NewFile {
        event: crate::support::draft(),
        project_id,
        name: PackageName::parse(&format!("p{}", i % 7)).unwrap(),
        version: PackageVersion::parse("1.0").unwrap(),
        status: None,
        file_name: FileName::parse(None, &format!("f{process}-{i}")).unwrap(),
        size: 1,
        sha256: "00".repeat(32),
        blob_key: depot::store::new_blob_key(),
        content: None,
        refuse_duplicate: false,
        now: Timestamp::now(),
        commits: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_never_give_the_same_id() {
    let (client, table) = DynamoEmulator::shared().fresh_table().await;
    let admin = Admin::new(Arc::new(DynamoMetaStore::new(client.clone(), &table)));
    admin.create_group("g").await.unwrap();
    let project = admin.create_project("g/p", false).await.unwrap().id;
    let stores = [0, 1].map(|_| Arc::new(DynamoMetaStore::new(client.clone(), &table)));
    let publishing = stores.iter().enumerate().map(|(process, store)| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..PER_PROCESS {
                let (package, file) = store.publish(new_file(project, process, i)).await.unwrap();
                ids.push((package.id, file.id));
            }
            ids
        })
    });
    let mut files = Vec::new();
    let mut packages = HashSet::new();
    for ids in futures::future::join_all(publishing).await {
        let ids = ids.unwrap();
        // One process's file ids follow each other in time.
        assert!(ids.windows(2).all(|w| w[0].1 < w[1].1));
        packages.extend(ids.iter().map(|(p, _)| *p));
        files.extend(ids.into_iter().map(|(_, f)| f));
    }
    let unique: HashSet<i64> = files.iter().copied().collect();
    assert_eq!(unique.len(), 2 * PER_PROCESS, "file ids given twice");
    // 7 package names, whichever process created each.
    assert_eq!(packages.len(), 7);
    assert!(files.iter().all(|&id| id > 1 << 40 && id < 1 << 53));
    // Groups and projects still count from 1.
    assert_eq!(project, 1);
}
