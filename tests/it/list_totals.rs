//! A list page's file totals (the web UI's rows: how many live files each package holds and
//! their bytes) on both stores, following every way a file arrives or leaves. On DynamoDB the
//! package items keep them; a package made before they were kept has its files read instead,
//! and is never given a count started part way.

use crate::meta_conformance::{Subject, new_file, query, t, two_projects};
use crate::support::dynamo::DynamoEmulator;
use depot::domain::{Package, PackageStatus, Project};
use depot::store::dynamo::DynamoMetaStore;
use depot::store::{MetaStore, StoreError};
use std::collections::HashMap;

/// Publish a file of `size` bytes; the package.
async fn publish(
    m: &dyn MetaStore,
    project: &Project,
    (name, file, size): (&str, &str, u64),
    refuse: bool,
    status: Option<PackageStatus>,
) -> (Package, depot::domain::PackageFile) {
    let mut f = new_file(project.id, name, "1.0", file, refuse);
    f.size = size;
    f.status = status;
    m.publish(f).await.unwrap()
}

/// The totals a list page of `q` shows, by package name, checked against the files themselves.
async fn listed_totals(
    m: &dyn MetaStore,
    project: &Project,
    q: &str,
) -> HashMap<String, (u64, u64)> {
    let listed = m
        .list_with_totals(std::slice::from_ref(project), &query(q, false))
        .await
        .unwrap();
    let mut by_name = HashMap::new();
    for (package, totals) in listed.items {
        let files = m.files_of(package.id).await.unwrap();
        let truth = (files.len() as u64, files.iter().map(|f| f.size).sum());
        assert_eq!(
            totals,
            truth,
            "{} in a list of {q:?}",
            package.name.as_str()
        );
        by_name.insert(package.name.as_str().to_string(), totals);
    }
    by_name
}

async fn totals_follow_publishes_and_deletes(s: Subject) {
    let m = s.meta.as_ref();
    let (a, _) = two_projects(m).await;
    // A new package, a file of it, one under the duplicate rule (a transaction), a duplicate.
    publish(m, &a, ("p", "a.bin", 3), false, None).await;
    let (p, b) = publish(m, &a, ("p", "b.bin", 10), false, None).await;
    publish(m, &a, ("p", "c.bin", 100), true, None).await;
    publish(m, &a, ("p", "a.bin", 7), false, None).await;
    // A new package under the duplicate rule.
    publish(m, &a, ("q", "x.bin", 5), true, None).await;
    // A package hidden by its second file's publish.
    publish(m, &a, ("r", "y.bin", 1), false, None).await;
    publish(m, &a, ("r", "z.bin", 2), false, Some(PackageStatus::Hidden)).await;
    let listed = listed_totals(m, &a, "").await;
    assert_eq!(listed["p"], (4, 120));
    assert_eq!(listed["q"], (1, 5));
    assert!(!listed.contains_key("r"));
    assert_eq!(listed_totals(m, &a, "status=hidden").await["r"], (2, 3));
    // A deleted file leaves the totals, once.
    m.delete_file(&p, &b, t(5), &crate::support::ev())
        .await
        .unwrap();
    assert!(matches!(
        m.delete_file(&p, &b, t(6), &crate::support::ev()).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(listed_totals(m, &a, "order_by=name").await["p"], (3, 110));
    // A deleted package's list shows what it held.
    m.delete_package(&p, t(7), &crate::support::ev())
        .await
        .unwrap();
    let doomed = listed_totals(m, &a, "status=pending_destruction").await;
    assert!(doomed.contains_key("p"));
    // The name is free again: a new package starts from its own first file.
    publish(m, &a, ("p", "a.bin", 9), false, None).await;
    assert_eq!(listed_totals(m, &a, "").await["p"], (1, 9));
}

on_every_backend!(totals_follow_publishes_and_deletes);

/// Items that keep totals, by table key.
async fn counted_items(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<(String, String)> {
    let out = client
        .scan()
        .table_name(table)
        .filter_expression("attribute_exists(file_count) OR attribute_exists(file_bytes)")
        .send()
        .await
        .unwrap();
    let key = |item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, k: &str| {
        item[k].as_s().unwrap().clone()
    };
    out.items()
        .iter()
        .map(|i| (key(i, "PK"), key(i, "SK")))
        .collect()
}

/// A package written by a build that kept no totals: its list row reads its files, and neither
/// a publish nor a delete starts a count part way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_package_without_totals_is_counted_from_its_files() {
    let (client, table) = DynamoEmulator::shared().fresh_table().await;
    let meta = DynamoMetaStore::new(client.clone(), table.clone());
    let m: &dyn MetaStore = &meta;
    let (a, _) = two_projects(m).await;
    publish(m, &a, ("old", "a.bin", 3), false, None).await;
    let (old, b) = publish(m, &a, ("old", "b.bin", 4), false, None).await;
    // As the older build left it.
    for (pk, sk) in counted_items(&client, &table).await {
        client
            .update_item()
            .table_name(&table)
            .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(sk))
            .update_expression("REMOVE file_count, file_bytes")
            .send()
            .await
            .unwrap();
    }
    assert!(counted_items(&client, &table).await.is_empty());
    assert_eq!(listed_totals(m, &a, "").await["old"], (2, 7));
    publish(m, &a, ("old", "c.bin", 5), false, None).await;
    publish(m, &a, ("old", "d.bin", 6), true, None).await;
    m.delete_file(&old, &b, t(5), &crate::support::ev())
        .await
        .unwrap();
    assert_eq!(listed_totals(m, &a, "").await["old"], (3, 14));
    assert!(
        counted_items(&client, &table).await.is_empty(),
        "a count started part way"
    );
    // A new package keeps its totals.
    publish(m, &a, ("new", "a.bin", 8), false, None).await;
    assert_eq!(counted_items(&client, &table).await.len(), 1);
    assert_eq!(listed_totals(m, &a, "").await["new"], (1, 8));
}
