//! `depot admin --store aws init`: the table (with the indexes and TTL the template declares)
//! and the bucket are made where they are missing, and found again without harm; the store
//! then serves `depot admin` as one made any other way.

use crate::cli::{EMULATOR_ENV, aws_flags};
use crate::support::dynamo::DynamoEmulator;
use crate::support::s3::S3Emulator;
use serde_json::{Value, json};
use std::process::Command;

const DEPOT: &str = env!("CARGO_BIN_EXE_depot");

fn admin(flags: &[String], args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(DEPOT)
        .arg("admin")
        .args(flags)
        .args(args)
        .envs(EMULATOR_ENV)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.success(),
        value,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_makes_the_aws_stores_where_they_are_missing() {
    let s3 = S3Emulator::start().await;
    let dynamo = DynamoEmulator::shared();
    let table = format!("init-{}", hex::encode(rand::random::<[u8; 6]>()));
    let bucket = format!("init-{}", hex::encode(rand::random::<[u8; 6]>()));
    let flags = aws_flags(&s3, &table, &bucket);
    // Nothing there yet: provisioning refuses, init makes both.
    let (ok, _, _) = admin(&flags, &["group", "create", "g"]);
    assert!(!ok, "no table yet");
    let (ok, made, err) = admin(&flags, &["init"]);
    assert!(ok, "{err}");
    let expected =
        json!({"table": table, "table_created": true, "bucket": bucket, "bucket_created": true});
    assert_eq!(made, expected);
    // The table is the template's: its indexes, and the sessions' TTL.
    let client = dynamo.client();
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let mut indexes: Vec<String> = described
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_string))
        .collect();
    indexes.sort();
    let mut declared: Vec<String> = depot::store::dynamo::INDEXES
        .iter()
        .map(|(name, ..)| name.to_string())
        .collect();
    declared.sort();
    assert_eq!(indexes, declared);
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(
        ttl.attribute_name(),
        Some(depot::store::dynamo::TTL_ATTRIBUTE)
    );
    assert!(
        s3.keys(&bucket).await.is_empty(),
        "the bucket is there, empty"
    );
    // Again: found, nothing made; and the store serves provisioning.
    let (ok, again, err) = admin(&flags, &["init"]);
    assert!(ok, "{err}");
    assert_eq!(again["table_created"], false);
    assert_eq!(again["bucket_created"], false);
    let (ok, group, err) = admin(&flags, &["group", "create", "g"]);
    assert!(ok, "{err}");
    assert_eq!(group["full_path"], "g");
}

/// On the local store, init makes the data directory and its database (private), and says so.
#[test]
fn init_makes_a_local_store_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let flags = vec!["--data-dir".to_string(), data.to_string_lossy().to_string()];
    let (ok, made, err) = admin(&flags, &["init"]);
    assert!(ok, "{err}");
    assert!(made["store"].as_str().unwrap().contains("data"), "{made}");
    assert!(depot::config::database_path(&data).exists());
    let (ok, _, err) = admin(&flags, &["init"]);
    assert!(ok, "{err}");
}

/// A table an older build filled (groups, projects, members, tokens and packages without their
/// mirror items): `init` writes the mirrors, so the lists of the people APIs and `latest` see
/// every record; again, it finds them all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_backfills_the_mirrors_an_older_build_did_not_write() {
    use depot::domain::{MembershipTarget, TokenOwner};
    use depot::store::IdentityStore;
    let s3 = S3Emulator::start().await;
    let bucket = s3.bucket("backfill").await;
    let (client, table) = DynamoEmulator::shared().fresh_table().await;
    let meta = std::sync::Arc::new(depot::store::dynamo::DynamoMetaStore::new(
        client.clone(),
        table.clone(),
    ));
    let admin_api = depot::admin::Admin::new(meta.clone());
    let (pid, _) = crate::support::provision_developer(&admin_api, "g", "p", "u").await;
    use depot::store::PackageStore;
    for version in ["1.0.0", "2.0.0"] {
        let file = crate::meta_conformance::new_file(pid, "tool", version, "f.bin", false);
        meta.publish(file).await.unwrap();
    }
    // What an older build stored: no DIR#, MEMBERS# or TOKENS# items, no rank entries.
    let scan = client.scan().table_name(&table).send().await.unwrap();
    let mut removed = 0;
    for item in scan.items() {
        let pk = item["PK"].as_s().unwrap();
        let sk = item["SK"].as_s().unwrap();
        let mirror = ["DIR#", "MEMBERS#", "TOKENS#"]
            .iter()
            .any(|p| pk.starts_with(p));
        if mirror || sk.starts_with("RANK#") {
            let key = [("PK", &item["PK"]), ("SK", &item["SK"])]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            client
                .delete_item()
                .table_name(&table)
                .set_key(Some(key))
                .send()
                .await
                .unwrap();
            removed += 1;
        }
    }
    assert_eq!(
        removed, 7,
        "group, project, user, member and token mirrors, two rank entries"
    );
    assert!(meta.projects().await.unwrap().is_empty());
    let tool = depot::domain::PackageName::parse("tool").unwrap();
    assert!(meta.versions_of(pid, &tool, None).await.unwrap().is_empty());
    let flags = aws_flags(&s3, &table, &bucket);
    let (ok, made, err) = admin(&flags, &["init"]);
    assert!(ok, "{err}");
    assert_eq!(made["mirrors_written"], 7);
    assert_eq!(meta.projects().await.unwrap()[0].id, pid);
    // `latest` sees the older build's versions again.
    assert_eq!(
        meta.versions_of(pid, &tool, Some(8)).await.unwrap().len(),
        2
    );
    assert_eq!(meta.groups().await.unwrap()[0].path, "g");
    let members = meta
        .members_of(&MembershipTarget::Group("g".into()))
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    let user = meta.user_by_name("u").await.unwrap().unwrap();
    assert_eq!(
        meta.tokens_of(&TokenOwner::User(user.id))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        made.get("stream_enabled").is_none(),
        "the table has its stream"
    );
    let (ok, again, err) = admin(&flags, &["init"]);
    assert!(ok, "{err}");
    assert_eq!(again["mirrors_written"], 7, "written again, harmlessly");
    assert_eq!(meta.users().await.unwrap().len(), 1);
}

/// A table an older build made has no stream: `init` turns it on (new and old images), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_turns_on_the_stream_of_an_older_table() {
    use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
    let s3 = S3Emulator::start().await;
    let bucket = s3.bucket("stream").await;
    let (client, table) = DynamoEmulator::shared().fresh_table().await;
    let off = StreamSpecification::builder()
        .stream_enabled(false)
        .build()
        .unwrap();
    client
        .update_table()
        .table_name(&table)
        .stream_specification(off)
        .send()
        .await
        .unwrap();
    let flags = aws_flags(&s3, &table, &bucket);
    let (ok, made, err) = admin(&flags, &["init"]);
    assert!(ok, "{err}");
    assert_eq!(made["stream_enabled"], true, "{made}");
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let spec = described.table().unwrap().stream_specification().unwrap();
    assert!(spec.stream_enabled());
    assert_eq!(
        spec.stream_view_type(),
        Some(&StreamViewType::NewAndOldImages)
    );
    let (ok, again, err) = admin(&flags, &["init"]);
    assert!(ok, "{err}");
    assert!(again.get("stream_enabled").is_none(), "{again}");
}
