//! Fault injection on the AWS stores: DynamoDB Local and the S3 emulator behind loopback fault
//! proxies (`support::faults`), the SDK clients configured with small timeouts. Each step of a
//! publish, a delete, a purge and an upload-session commit meets each fault (throttling, a
//! 500, a timeout, a connection dropped before or after the request reached the service), once
//! (the SDK's retry must cure it) and on every attempt (the client must get a 503 with
//! `Retry-After`). Afterwards the store must be whole: the file downloads with its bytes, or it
//! is absent; every blob is referenced by a live record once the purge has run; every record's
//! blob exists; and the client's retry succeeds.

use crate::support::dynamo::DynamoEmulator;
use crate::support::faults::{Fault, FaultProxy, Plan, Service};
use crate::support::s3::S3Emulator;
use crate::support::{Answer, TestApp, sdk_config, sha256_hex};
use depot::Limits;
use depot::admin::Admin;
use depot::config::AwsPatience;
use depot::domain::{PackageQuery, Role, Scope};
use depot::store::dynamo::DynamoMetaStore;
use depot::store::s3::S3BlobStore;
use depot::store::{BlobStore, MetaStore, is_inline_key, staging_key};
use futures::StreamExt;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use steps::{FAULTS, Flow, Step, steps};

mod steps;

/// The SDK's patience in these tests: retries follow almost at once; attempts give up after
/// a fraction of a second in the timeout cases (longer in the others, so that a slow moment
/// of the emulators is not taken for a fault).
fn patience(fault: Fault) -> AwsPatience {
    let attempt = match fault {
        Fault::Timeout => Duration::from_millis(1000),
        _ => Duration::from_secs(5),
    };
    AwsPatience {
        connect_timeout: Duration::from_secs(2),
        dynamodb_attempt_timeout: attempt,
        s3_attempt_timeout: attempt,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
    }
}

/// How long a "timeout" holds a request: past the attempt timeout of the timeout cases.
const HOLD: Duration = Duration::from_millis(1500);

/// Cases run at once (the machine is small and the timeouts are short).
const CONCURRENCY: usize = 3;

/// A registry whose SDK clients go through a fault proxy each, on fresh stores: group `grp`
/// refusing duplicates (so a publish that landed cannot be published again by a retry) unless
/// the flow is a publish with duplicates allowed (which takes no transaction), project
/// `grp/app`, a developer's and a maintainer's token.
struct Rig {
    app: TestApp,
    dynamo: FaultProxy,
    s3: FaultProxy,
    project: i64,
    developer: String,
    maintainer: String,
    /// The bytes of the file the flow publishes.
    data: &'static [u8],
}

impl Rig {
    async fn new(patience: &AwsPatience, refuse_duplicates: bool, data: &'static [u8]) -> Self {
        let emulator = S3Emulator::start().await;
        let bucket = emulator.bucket("depot-faults").await;
        let s3 = FaultProxy::start(Service::S3, &emulator.endpoint, HOLD).await;
        let shared = DynamoEmulator::shared();
        let (direct, table) = shared.fresh_table().await;
        let dynamo = FaultProxy::start(Service::DynamoDb, &shared.endpoint, HOLD).await;
        let sdk = sdk_config();
        let meta: Arc<dyn MetaStore> = Arc::new(DynamoMetaStore::new(
            DynamoMetaStore::client_from(&sdk, Some(&dynamo.endpoint), patience),
            &table,
        ));
        let blobs: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(
            S3BlobStore::client_from(&sdk, Some(&s3.endpoint), patience),
            &bucket,
        ));
        let limits = Limits::at_most(depot::config::DEFAULT_MAX_FILE_SIZE);
        let app = TestApp::on_aws(emulator, bucket, meta, blobs, limits);
        // Provisioning goes straight to DynamoDB Local, past the proxy.
        let admin = Admin::new(Arc::new(DynamoMetaStore::new(direct, table)));
        admin.create_group("grp").await.unwrap();
        if refuse_duplicates {
            admin.set_settings("grp", Some(false), None).await.unwrap();
        }
        let project = admin.create_project("grp/app", false).await.unwrap().id;
        let mut tokens = Vec::new();
        for (user, role) in [("dev", Role::Developer), ("boss", Role::Maintainer)] {
            admin.create_user(user).await.unwrap();
            admin.add_member(user, "grp", role).await.unwrap();
            let spec = depot::admin::TokenSpec::Personal {
                user: user.into(),
                scopes: vec![Scope::Api],
                expires_at: None,
            };
            tokens.push(admin.create_token(spec).await.unwrap().secret);
        }
        let maintainer = tokens.pop().unwrap();
        let developer = tokens.pop().unwrap();
        Rig {
            app,
            dynamo,
            s3,
            project,
            developer,
            maintainer,
            data,
        }
    }

    fn url(&self, rest: &str) -> String {
        format!(
            "/api/v4/projects/{}/packages/generic/pkg/1.0/{rest}",
            self.project
        )
    }

    async fn publish(&self) -> Answer {
        let token = [("PRIVATE-TOKEN", self.developer.as_str())];
        self.app.put(&self.url("file.bin"), &token, self.data).await
    }

    /// Another file of the same package (so that the next publish adds to it).
    async fn publish_other(&self) -> Answer {
        let token = [("PRIVATE-TOKEN", self.developer.as_str())];
        self.app
            .put(&self.url("other.bin"), &token, self.data)
            .await
    }

    async fn download(&self) -> Answer {
        let token = [("PRIVATE-TOKEN", self.developer.as_str())];
        self.app.get(&self.url("file.bin"), &token).await
    }

    /// The ids of the live package and its file, if there is one.
    async fn live_ids(&self) -> Option<(i64, i64)> {
        let (package, file) = self
            .app
            .newest(self.project, "pkg", "1.0", "file.bin")
            .await?;
        Some((package.id, file.id))
    }

    async fn delete(&self, path: &str) -> Answer {
        let token = [("PRIVATE-TOKEN", self.maintainer.as_str())];
        let url = format!("/api/v4/projects/{}/packages/{path}", self.project);
        self.app
            .send("DELETE", &url, &token, Vec::<u8>::new())
            .await
    }

    /// Open an upload session for the file and send its bytes; the session's id. `checked`:
    /// with a declared SHA-256, through the session's presigned PUT (S3 checks the bytes on
    /// arrival at their final key); else staged as that PUT would stage them.
    async fn staged_session(&self, checked: bool) -> String {
        let token = [
            ("PRIVATE-TOKEN", self.developer.as_str()),
            ("Content-Type", "application/json"),
        ];
        let mut declared = json!({"size": self.data.len()});
        if checked {
            declared["sha256"] = json!(sha256_hex(self.data));
        }
        let url = format!("{}/uploads", self.url("file.bin"));
        let opened = self
            .app
            .send("POST", &url, &token, declared.to_string())
            .await;
        assert_eq!(opened.status, 201, "{}", opened.text());
        let id = opened.json()["id"].as_str().unwrap().to_string();
        if checked {
            let upload = &opened.json()["upload"];
            let mut put = reqwest::Client::new()
                .put(upload["url"].as_str().unwrap())
                .body(self.data.to_vec());
            for (k, v) in upload["headers"].as_object().unwrap() {
                if !k.eq_ignore_ascii_case("content-length") {
                    put = put.header(k, v.as_str().unwrap());
                }
            }
            let sent = put.send().await.unwrap();
            assert_eq!(sent.status(), 200, "the checked PUT");
            return id;
        }
        let data = self.data;
        let body =
            futures::stream::once(async move { Ok(bytes::Bytes::from_static(data)) }).boxed();
        let blobs = self.app.registry.blobs();
        blobs
            .put(&staging_key(&id), body, &depot::store::Accept::any())
            .await
            .unwrap();
        id
    }

    async fn complete(&self, id: &str) -> Answer {
        let token = [("PRIVATE-TOKEN", self.developer.as_str())];
        let url = format!("{}/uploads/{id}/complete", self.url("file.bin"));
        self.app.send("POST", &url, &token, Vec::<u8>::new()).await
    }

    fn proxy(&self, service: Service) -> &FaultProxy {
        match service {
            Service::DynamoDb => &self.dynamo,
            Service::S3 => &self.s3,
        }
    }

    /// Blob keys of every live file of the project.
    async fn live_blobs(&self) -> HashSet<String> {
        let meta = self.app.meta();
        let project = meta.project_by_id(self.project).await.unwrap().unwrap();
        let query = PackageQuery::parse([("per_page", "100")], false).unwrap();
        let listed = meta.list_packages(&[project], &query).await.unwrap();
        let mut keys = HashSet::new();
        for package in listed.items {
            for file in meta.files_of(package.id).await.unwrap() {
                keys.insert(file.blob_key);
            }
        }
        keys
    }

    /// After the purge has run: every blob is a live file's, every live file's blob is there,
    /// nothing is left to purge, and no staged object outlives a committed session.
    async fn assert_whole(&self, case: &str) {
        let purged = self.app.registry.purge(100).await;
        assert!(purged.is_ok(), "{case}: purge: {purged:?}");
        let live = self.live_blobs().await;
        let blobs: HashSet<String> = self.app.blob_keys().await.into_iter().collect();
        // A small file's bytes are in its item, not the bucket.
        let live: HashSet<String> = live.into_iter().filter(|k| !is_inline_key(k)).collect();
        assert_eq!(
            blobs, live,
            "{case}: blobs in the bucket vs blobs of live files"
        );
        let (packages, files) = self.app.meta().doomed(100).await.unwrap();
        assert!(
            packages.is_empty() && files.is_empty(),
            "{case}: left to purge: {packages:?} {files:?}"
        );
    }

    /// The file downloads whole, or is absent; which.
    async fn file_state(&self, case: &str) -> FileState {
        let got = self.download().await;
        match got.status.as_u16() {
            200 => {
                assert_eq!(got.body, self.data, "{case}: the bytes");
                assert_eq!(
                    got.header("x-checksum-sha256"),
                    Some(sha256_hex(self.data).as_str()),
                    "{case}"
                );
                // Reachable by id too (the Packages API's routes), with its file listed.
                let (package, file) = self.live_ids().await.unwrap();
                let url = format!("/api/v4/projects/{}/packages/{package}", self.project);
                let token = [("PRIVATE-TOKEN", self.developer.as_str())];
                let by_id = self.app.get(&format!("{url}/package_files"), &token).await;
                assert_eq!(by_id.status, 200, "{case}: the package by id");
                let ids: Vec<i64> = by_id
                    .json()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["id"].as_i64().unwrap())
                    .collect();
                assert!(ids.contains(&file), "{case}: its files {ids:?}");
                FileState::Present
            }
            404 => FileState::Absent,
            other => panic!("{case}: download answered {other}: {}", got.text()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileState {
    Present,
    Absent,
}

/// What one case saw, for the matrix.
struct Outcome {
    step: &'static str,
    fault: Fault,
    persistent: bool,
    /// The client's answer (the purge's result for purge steps).
    answer: String,
    /// Requests of the step that reached the proxy (the first, the SDK's retries, and later
    /// ones of the same kind in the flow).
    requests: usize,
    /// The client's retry, when the answer was a 503.
    retry: Option<String>,
    /// The file at the end: present (downloads whole) or absent.
    end: FileState,
    /// Staged objects left in the bucket at the end (the lifecycle rule's to remove).
    staged_left: usize,
}

/// What the faulted part of a flow answered: the answer, the requests of the step, and the
/// retry's answer.
struct Acted {
    answer: String,
    requests: usize,
    retry: Option<String>,
}

/// A client answer that is a 503 must say when to retry, in GitLab's shape.
fn check_unavailable(a: &Answer, case: &str) {
    a.expect(503, json!({"message": "503 Service Unavailable"}));
    assert_eq!(a.header("retry-after"), Some("2"), "{case}");
}

/// Run `act` with `plan` armed on the step's service; its result and the requests of the
/// step the proxy saw meanwhile (`plan` must have picked at least one).
async fn faulted<T>(
    rig: &Rig,
    step: &Step,
    plan: Plan,
    case: &str,
    act: impl std::future::Future<Output = T>,
) -> (T, usize) {
    let proxy = rig.proxy(step.service);
    proxy.arm(plan);
    let out = act.await;
    let (matched, injected) = proxy.disarm();
    assert!(injected > 0, "{case}: the step was never reached");
    (out, matched)
}

/// When `a` is a 503, check it and send the request again (nothing injected now): it must
/// answer `expected`. Otherwise `a` must be `expected`. The answer, and the retry's.
async fn answered(
    a: Answer,
    case: &str,
    again: impl std::future::Future<Output = Answer>,
    expected: u16,
) -> (String, Option<String>) {
    let status = a.status.as_u16().to_string();
    if a.status != 503 {
        assert_eq!(a.status, expected, "{case}: {}", a.text());
        return (status, None);
    }
    check_unavailable(&a, case);
    let retried = again.await;
    assert_eq!(
        retried.status,
        expected,
        "{case}: the retry: {}",
        retried.text()
    );
    (status, Some(retried.status.as_u16().to_string()))
}

/// The package (`None`) or its file (`Some`) path of the Packages API, for the live file.
async fn delete_path(rig: &Rig, file: bool) -> String {
    let (package, file_id) = rig.live_ids().await.unwrap();
    match file {
        false => format!("{package}"),
        true => format!("{package}/package_files/{file_id}"),
    }
}

/// The flow of `step`, its step meeting `plan`.
async fn act(rig: &Rig, step: &Step, plan: Plan, case: &str) -> Acted {
    let file_only = matches!(step.flow, Flow::DeleteFile | Flow::PurgeFile);
    let (answer, requests, retry) = match step.flow {
        Flow::Publish
        | Flow::PublishNew
        | Flow::PublishExisting
        | Flow::PublishNewSmall
        | Flow::PublishExistingSmall => {
            if step.flow.adds_to_existing() {
                assert_eq!(rig.publish_other().await.status, 201, "{case}");
            }
            let (a, n) = faulted(rig, step, plan, case, rig.publish()).await;
            let (answer, retry) = answered(a, case, rig.publish(), 201).await;
            (answer, n, retry)
        }
        Flow::DeletePackage | Flow::DeleteFile => {
            assert_eq!(rig.publish().await.status, 201, "{case}");
            let path = delete_path(rig, file_only).await;
            let (a, n) = faulted(rig, step, plan, case, rig.delete(&path)).await;
            let (answer, retry) = answered(a, case, rig.delete(&path), 204).await;
            (answer, n, retry)
        }
        Flow::PurgePackage | Flow::PurgeFile => {
            assert_eq!(rig.publish().await.status, 201, "{case}");
            let path = delete_path(rig, file_only).await;
            assert_eq!(rig.delete(&path).await.status, 204, "{case}");
            let purge = rig.app.registry.purge(100);
            let (result, n) = faulted(rig, step, plan, case, purge).await;
            let answer = match result {
                Ok(p) => format!("ok, {} blob", p.blobs),
                Err(e) => {
                    let (status, _) = depot::api::error::gitlab_answer(&e);
                    assert_eq!(status, 503, "{case}: a transient failure: {e}");
                    "failed (503): the next pass".into()
                }
            };
            (answer, n, None)
        }
        Flow::Commit | Flow::CommitChecked => {
            let id = rig.staged_session(step.flow == Flow::CommitChecked).await;
            let (a, n) = faulted(rig, step, plan, case, rig.complete(&id)).await;
            let (answer, retry) = answered(a, case, rig.complete(&id), 200).await;
            // Committed, and saying so again (idempotent).
            let again = rig.complete(&id).await;
            assert_eq!(again.json()["state"], "committed", "{case}");
            (answer, n, retry)
        }
    };
    Acted {
        answer,
        requests,
        retry,
    }
}

async fn run_case(step: Step, fault: Fault, persistent: bool) -> Outcome {
    let step = &step;
    let how = if persistent { "every attempt" } else { "once" };
    let case = format!("{} × {fault} ({how})", step.name);
    let patience = patience(fault);
    let rig = Rig::new(&patience, !step.flow.allows_duplicates(), step.flow.data()).await;
    let plan = Plan {
        matcher: step.matcher.clone(),
        skip: 0,
        times: if persistent {
            patience.max_attempts as usize
        } else {
            1
        },
        fault,
    };
    let acted = act(&rig, step, plan, &case).await;
    rig.assert_whole(&case).await;
    let end = rig.file_state(&case).await;
    let expected = match step.flow {
        flow if flow.is_publish() || flow.commits() => FileState::Present,
        _ => FileState::Absent,
    };
    assert_eq!(end, expected, "{case}: the file at the end");
    let staged_left = rig
        .app
        .object_keys()
        .await
        .iter()
        .filter(|k| k.starts_with("uploads/"))
        .count();
    Outcome {
        step: step.name,
        fault,
        persistent,
        answer: acted.answer,
        requests: acted.requests,
        retry: acted.retry,
        end,
        staged_left,
    }
}

/// Every step × every fault, once and on every attempt; prints the fault matrix (run with
/// `--nocapture`). `FAULT_STEPS=claim` runs only the steps whose name holds `claim`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_step_survives_every_fault() {
    let started = Instant::now();
    let only = std::env::var("FAULT_STEPS").unwrap_or_default();
    let steps: Vec<Step> = steps()
        .into_iter()
        .filter(|s| s.name.contains(&only))
        .collect();
    let cases: Vec<(&Step, Fault, bool)> = steps
        .iter()
        .flat_map(|s| {
            FAULTS
                .iter()
                .flat_map(move |f| [(s, *f, false), (s, *f, true)])
        })
        .collect();
    // Each case in a task of its own, so that one failing case does not hide the others.
    let results: Vec<Result<Outcome, String>> = futures::stream::iter(cases)
        .map(|(step, fault, persistent)| {
            let case = format!("{} × {fault} (every attempt: {persistent})", step.name);
            let task = tokio::spawn(run_case(step.clone(), fault, persistent));
            async move {
                task.await.map_err(|e| {
                    let panic = e.into_panic();
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    format!("{case}: {why}")
                })
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        results.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let outcomes: Vec<Outcome> = results.into_iter().map(Result::unwrap).collect();
    println!(
        "| step | fault | once: answer (requests) | every attempt: answer (requests) → retry | at the end |"
    );
    println!("|---|---|---|---|---|");
    for pair in outcomes.chunks(2) {
        let [once, always] = pair else { unreachable!() };
        assert!(!once.persistent && always.persistent);
        let retry = always.retry.as_ref().map(|r| format!(" → {r}"));
        let end = match always.end {
            FileState::Present => "file downloads whole",
            FileState::Absent => "file absent, blob purged",
        };
        let staged = match always.staged_left {
            0 => String::new(),
            n => format!("; {n} staged key (sealed, empty) left to the lifecycle rule"),
        };
        println!(
            "| {} | {} | {} ({}) | {} ({}){} | {end}{staged} |",
            once.step,
            once.fault,
            once.answer,
            once.requests,
            always.answer,
            always.requests,
            retry.unwrap_or_default(),
        );
    }
    println!(
        "{} cases in {:.1} s",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
}
