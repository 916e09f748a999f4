//! A DynamoDB package list read while the purge forgets packages: the list reads index rows,
//! then the page's items (by key, or the project's range of them), and a package forgotten in between used to leave its row out of
//! the page, so `per_page=1` answered `[]` with packages still pending destruction (the soak
//! took that for "the purge is done" and counted the rest of the queue's blobs as a leak).
//! The page read is held at a fault proxy while the package is forgotten, so the race is hit
//! every time.

use crate::support::dynamo::DynamoEmulator;
use crate::support::faults::{Fault, FaultProxy, Plan, Service, dynamo};
use crate::support::s3::S3Emulator;
use crate::support::{TestApp, sdk_config};
use depot::Limits;
use depot::admin::{Admin, TokenSpec};
use depot::config::AwsPatience;
use depot::domain::{Role, Scope, Timestamp};
use depot::store::dynamo::DynamoMetaStore;
use depot::store::s3::S3BlobStore;
use depot::store::{BlobStore, MetaStore};
use std::sync::Arc;
use std::time::Duration;

/// A held request is dropped after this; the SDK gives up on it (and asks again) sooner.
const HOLD: Duration = Duration::from_secs(4);

#[tokio::test]
async fn a_package_forgotten_while_its_page_is_read_does_not_empty_the_page() {
    let emulator = S3Emulator::start().await;
    let bucket = emulator.bucket("depot-lists").await;
    let shared = DynamoEmulator::shared();
    let (direct, table) = shared.fresh_table().await;
    let proxy = FaultProxy::start(Service::DynamoDb, &shared.endpoint, HOLD).await;
    let sdk = sdk_config();
    let patience = AwsPatience {
        dynamodb_attempt_timeout: Duration::from_millis(1500),
        ..AwsPatience::default()
    };
    let meta: Arc<dyn MetaStore> = Arc::new(DynamoMetaStore::new(
        DynamoMetaStore::client_from(&sdk, Some(&proxy.endpoint), &patience),
        &table,
    ));
    let blobs: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(
        S3BlobStore::client_from(&sdk, Some(&emulator.endpoint), &patience),
        &bucket,
    ));
    let direct: Arc<dyn MetaStore> = Arc::new(DynamoMetaStore::new(direct, table));
    let limits = Limits::at_most(depot::config::DEFAULT_MAX_FILE_SIZE);
    let app = TestApp::on_aws(emulator, bucket, meta.clone(), blobs, limits);
    let admin = Admin::new(direct.clone());
    admin.create_group("g").await.unwrap();
    let project = admin.create_project("g/p", false).await.unwrap().id;
    admin.create_user("boss").await.unwrap();
    admin
        .add_member("boss", "g", Role::Maintainer)
        .await
        .unwrap();
    let spec = TokenSpec::Personal {
        user: "boss".into(),
        scopes: vec![Scope::Api],
        expires_at: None,
    };
    let token = admin.create_token(spec).await.unwrap().secret;
    let auth = [("PRIVATE-TOKEN", token.as_str())];
    let mut packages = Vec::new();
    for name in ["first", "second", "third"] {
        let uri = format!("/api/v4/projects/{project}/packages/generic/{name}/1.0/a.bin");
        assert_eq!(app.put(&uri, &auth, b"bytes").await.status.as_u16(), 201);
        let (package, _) = app.newest(project, name, "1.0", "a.bin").await.unwrap();
        meta.delete_package(&package, Timestamp::now(), &crate::support::ev())
            .await
            .unwrap();
        packages.push(package);
    }
    // The oldest deleted package is the first row; its page read is held while it is forgotten.
    proxy.arm(Plan {
        // The page's packages are read as the project's range of deleted packages (a Query).
        matcher: dynamo("Query", "\"DELETED#\""),
        skip: 0,
        times: 1,
        fault: Fault::Timeout,
    });
    let list = format!("/api/v4/projects/{project}/packages?status=pending_destruction&per_page=1");
    let forget = async {
        while proxy.injected() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        direct.forget_package(&packages[0]).await.unwrap();
    };
    let (answer, ()) = tokio::join!(app.get(&list, &auth), forget);
    assert_eq!(proxy.disarm().1, 1, "the page read was held once");
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&answer.body).unwrap();
    let ids: Vec<i64> = listed.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        vec![packages[1].id],
        "the next pending package fills the page"
    );
    assert_eq!(answer.headers["x-total"], "2");
}
