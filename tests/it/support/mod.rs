//! Test harness shared by the integration tests: a registry on a fresh store, provisioning
//! helpers, and an in-process HTTP client that drives the router with `oneshot`. Beside it: the
//! store pairs and `on_every_backend!` (`backends`), the emulators (`dynamo`, `s3`), and what a
//! plain `cargo test` may lack (`prerequisites`).
#![allow(dead_code)]

#[macro_use]
pub mod backends;
pub mod captured;
pub mod dynamo;
pub mod faults;
pub mod oidc_issuer;
pub mod prerequisites;
pub mod receiver;
pub mod s3;
pub mod stream;

// The benches include this module and use neither.
#[allow(unused_imports)]
pub use stream::{draft, ev};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use depot::admin::{Admin, DeployTarget, TokenSpec};
use depot::domain::{Role, Scope, Timestamp};
use depot::store::dynamo::DynamoMetaStore;
use depot::store::s3::S3BlobStore;
use depot::store::{BlobStore, MetaStore};
use depot::{Limits, Registry, local_registry, router};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tempfile::TempDir;
use tower::ServiceExt;

pub use backends::Backend;

enum Stores {
    Local(TempDir),
    Aws {
        s3: s3::S3Emulator,
        bucket: String,
        /// The table, where the test made it itself (for counting small files' items).
        table: Option<(aws_sdk_dynamodb::Client, String)>,
    },
}

/// A registry on its own fresh store, with its router.
pub struct TestApp {
    stores: Stores,
    pub registry: Arc<Registry>,
    pub router: axum::Router,
    pub admin: Admin,
}

/// An answer: status, headers, body bytes.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as the wire type `T` that depot's clients read, checked to be exactly that:
    /// it parses, and writes back to the very same JSON (no field lost, none extra).
    #[track_caller]
    pub fn wire<T: serde::de::DeserializeOwned + serde::Serialize>(&self) -> T {
        let parsed: T = serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not a {} ({e}): {}",
                std::any::type_name::<T>(),
                self.text()
            )
        });
        assert_eq!(serde_json::to_value(&parsed).unwrap(), self.json());
        parsed
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Assert status and exact JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16, body: Value) {
        assert_eq!(self.status.as_u16(), status, "status; body {}", self.text());
        assert_eq!(self.json(), body);
    }
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::with_limits(
            backend,
            Limits::at_most(depot::config::DEFAULT_MAX_FILE_SIZE),
        )
        .await
    }

    pub async fn with_limits(backend: Backend, limits: Limits) -> Self {
        let (stores, registry) = match backend {
            Backend::Local => {
                let dir = tempfile::tempdir().unwrap();
                let registry = local_registry(dir.path(), limits).unwrap();
                (Stores::Local(dir), registry)
            }
            Backend::Aws => {
                let s3 = s3::S3Emulator::start().await;
                let bucket = s3.bucket("depot-test").await;
                let (client, table) = dynamo::DynamoEmulator::shared().fresh_table().await;
                let meta: Arc<dyn MetaStore> =
                    Arc::new(DynamoMetaStore::new(client.clone(), table.clone()));
                let blobs: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(s3.client(), &bucket));
                let table = Some((client, table));
                (
                    Stores::Aws { s3, bucket, table },
                    Registry::new(meta, blobs, limits),
                )
            }
        };
        let registry = Arc::new(registry);
        let router = router(registry.clone());
        let admin = registry.admin();
        Self {
            stores,
            registry,
            router,
            admin,
        }
    }

    /// A registry on AWS stores made by the caller (clients of its own, e.g. through a fault
    /// proxy), whose bucket `bucket` lives in `s3`.
    pub fn on_aws(
        s3: s3::S3Emulator,
        bucket: String,
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        limits: Limits,
    ) -> Self {
        let registry = Arc::new(Registry::new(meta, blobs, limits));
        let router = router(registry.clone());
        let admin = registry.admin();
        Self {
            stores: Stores::Aws {
                s3,
                bucket,
                table: None,
            },
            registry,
            router,
            admin,
        }
    }

    /// Every object key in the bucket of an AWS app, read past any proxy.
    pub async fn object_keys(&self) -> Vec<String> {
        match &self.stores {
            Stores::Aws { s3, bucket, .. } => s3.keys(bucket).await,
            Stores::Local(_) => panic!("not an AWS app"),
        }
    }

    /// Keys of the objects holding a file's bytes: blobs, and checked uploads not sealed.
    pub async fn blob_keys(&self) -> Vec<String> {
        match &self.stores {
            Stores::Aws { s3, bucket, .. } => s3
                .objects(bucket)
                .await
                .into_iter()
                .filter(|(k, size)| {
                    k.starts_with("blobs/") || (k.starts_with("checked/") && *size > 0)
                })
                .map(|(k, _)| k)
                .collect(),
            Stores::Local(_) => panic!("not an AWS app"),
        }
    }

    /// The same stores behind a registry configured by `configure` (downloads, uploads).
    pub fn reconfigure(&mut self, configure: impl FnOnce(Registry) -> Registry) {
        let registry = Registry::new(
            self.registry.meta().clone(),
            self.registry.blobs().clone(),
            self.registry.limits(),
        );
        self.registry = Arc::new(configure(registry));
        self.router = router(self.registry.clone());
        self.admin = self.registry.admin();
    }

    /// The data directory of a local app (for fault injection on the embedded store).
    pub fn local_dir(&self) -> &std::path::Path {
        match &self.stores {
            Stores::Local(dir) => dir.path(),
            Stores::Aws { .. } => panic!("not a local app"),
        }
    }

    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        self.registry.meta()
    }

    /// Send one request through the router.
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Answer {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = self
            .router
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn put(&self, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        self.send("PUT", uri, headers, body.to_vec()).await
    }

    pub async fn get(&self, uri: &str, headers: &[(&str, &str)]) -> Answer {
        self.send("GET", uri, headers, Body::empty()).await
    }

    pub async fn group(&self, path: &str) {
        self.admin.create_group(path).await.unwrap();
    }

    /// Create a project; returns its id.
    pub async fn project(&self, path: &str, public: bool) -> i64 {
        self.admin.create_project(path, public).await.unwrap().id
    }

    pub async fn user(&self, name: &str) {
        self.admin.create_user(name).await.unwrap();
    }

    pub async fn member(&self, user: &str, path: &str, role: Role) {
        self.admin.add_member(user, path, role).await.unwrap();
    }

    /// A personal token; returns (id, secret).
    pub async fn pat(
        &self,
        user: &str,
        scopes: &[Scope],
        expires_at: Option<Timestamp>,
    ) -> (i64, String) {
        self.token(TokenSpec::Personal {
            user: user.into(),
            scopes: scopes.to_vec(),
            expires_at,
        })
        .await
    }

    pub async fn deploy_token(
        &self,
        project: Option<&str>,
        group: Option<&str>,
        scopes: &[Scope],
    ) -> String {
        let target = match (project, group) {
            (Some(project), _) => DeployTarget::Project(project.into()),
            (None, Some(group)) => DeployTarget::Group(group.into()),
            (None, None) => panic!("a deploy token of neither a project nor a group"),
        };
        self.token(TokenSpec::Deploy {
            target,
            scopes: scopes.to_vec(),
            expires_at: None,
        })
        .await
        .1
    }

    pub async fn job_token(
        &self,
        user: &str,
        project: &str,
        expires_at: Timestamp,
    ) -> (i64, String) {
        self.token(TokenSpec::Job {
            user: user.into(),
            project: project.into(),
            expires_at,
        })
        .await
    }

    async fn token(&self, spec: TokenSpec) -> (i64, String) {
        let created = self.admin.create_token(spec).await.unwrap();
        (created.token.id, created.secret)
    }

    /// The newest live file `file` of package `name`/`version` in `project`, with its package.
    pub async fn newest(
        &self,
        project: i64,
        name: &str,
        version: &str,
        file: &str,
    ) -> Option<(depot::domain::Package, depot::domain::PackageFile)> {
        newest(self.meta().as_ref(), project, name, version, file).await
    }

    /// Stored blobs (files under `blobs/`, or objects under `blobs/` in the bucket).
    pub async fn blob_count(&self) -> usize {
        match &self.stores {
            Stores::Local(dir) => depot::store::fs::count_files(&dir.path().join("blobs")),
            // A checked upload's object is its blob, unless a settled session sealed it.
            Stores::Aws { .. } => self.blob_keys().await.len(),
        }
    }

    /// Bodies of files kept: blobs, and small files whose records hold their bytes.
    pub async fn stored_bodies(&self) -> usize {
        let inline = match &self.stores {
            Stores::Local(dir) => inline_bodies(dir.path()),
            Stores::Aws { table, .. } => {
                let (client, table) = table.as_ref().expect("a table the test made");
                dynamo::items_with(client, table, "content").await
            }
        };
        self.blob_count().await + inline
    }

    /// Sizes of what upload sessions staged (files under `uploads/`, parts included, or
    /// objects under `uploads/`).
    async fn staged_sizes(&self) -> Vec<u64> {
        match &self.stores {
            Stores::Local(dir) => file_sizes(&dir.path().join("uploads")),
            Stores::Aws { s3, bucket, .. } => s3
                .objects(bucket)
                .await
                .into_iter()
                .filter(|(k, _)| k.starts_with("uploads/"))
                .map(|(_, size)| size)
                .collect(),
        }
    }

    /// Staged objects and parts holding bytes (a sealed staged object, empty, holds none).
    pub async fn staged_count(&self) -> usize {
        self.staged_sizes().await.iter().filter(|s| **s > 0).count()
    }

    /// Sealed (empty) staged or checked objects: sessions settled, their write-once URLs
    /// spent.
    pub async fn sealed_count(&self) -> usize {
        let checked = match &self.stores {
            Stores::Local(_) => 0,
            Stores::Aws { s3, bucket, .. } => s3
                .objects(bucket)
                .await
                .iter()
                .filter(|(k, size)| k.starts_with("checked/") && *size == 0)
                .count(),
        };
        let staged = self.staged_sizes().await;
        staged.iter().filter(|s| **s == 0).count() + checked
    }

    /// Uploads in flight or left over (temp files, or unfinished multipart parts).
    pub async fn temp_count(&self) -> usize {
        match &self.stores {
            Stores::Local(dir) => depot::store::fs::count_files(&dir.path().join("tmp")),
            Stores::Aws { s3, .. } => s3.unfinished_parts(),
        }
    }
}

/// A standard world: group `grp` (+ `grp/sub`), private project `grp/app`, public project
/// `grp/pub`, and users with every role on `grp`, plus a non-member; each with an `api` token.
pub struct World {
    pub app: TestApp,
    pub private_id: i64,
    pub public_id: i64,
    pub tokens: std::collections::HashMap<&'static str, String>,
}

/// Files of the local store in `data_dir` whose rows hold their bytes (deleted ones until the
/// purge forgets them).
pub fn inline_bodies(data_dir: &std::path::Path) -> usize {
    let db = rusqlite::Connection::open(depot::config::database_path(data_dir)).unwrap();
    let count: i64 = db
        .query_row(
            "SELECT count(*) FROM package_files WHERE content IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    count as usize
}

impl World {
    pub async fn new(backend: Backend) -> Self {
        let limits = Limits::at_most(depot::config::DEFAULT_MAX_FILE_SIZE);
        Self::with_limits(backend, limits).await
    }

    pub async fn with_limits(backend: Backend, limits: Limits) -> Self {
        let app = TestApp::with_limits(backend, limits).await;
        app.group("grp").await;
        let private_id = app.project("grp/app", false).await;
        let public_id = app.project("grp/pub", true).await;
        let mut tokens = std::collections::HashMap::new();
        for (name, role) in [
            ("guest", Some(Role::Guest)),
            ("reporter", Some(Role::Reporter)),
            ("developer", Some(Role::Developer)),
            ("maintainer", Some(Role::Maintainer)),
            ("owner", Some(Role::Owner)),
            ("stranger", None),
        ] {
            app.user(name).await;
            if let Some(role) = role {
                app.member(name, "grp", role).await;
            }
            tokens.insert(name, app.pat(name, &[Scope::Api], None).await.1);
        }
        Self {
            app,
            private_id,
            public_id,
            tokens,
        }
    }

    pub fn token(&self, user: &str) -> &str {
        &self.tokens[user]
    }

    /// `/api/v4/projects/{project}/packages/generic/{rest}`
    pub fn url(&self, project: impl std::fmt::Display, rest: &str) -> String {
        format!("/api/v4/projects/{project}/packages/generic/{rest}")
    }
}

/// The AWS configuration the tests' SDK clients start from: the emulators' credentials and
/// region, nothing read from the environment.
pub fn sdk_config() -> aws_config::SdkConfig {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            s3::ACCESS_KEY,
            s3::SECRET_KEY,
            None,
            None,
            "test",
        )))
        .build()
}

/// The newest live file `file` of package `name`/`version` in `project` of any store.
pub async fn newest(
    meta: &dyn MetaStore,
    project: i64,
    name: &str,
    version: &str,
    file: &str,
) -> Option<(depot::domain::Package, depot::domain::PackageFile)> {
    use depot::domain::{FileName, PackageName, PackageVersion};
    meta.newest_file(
        project,
        &PackageName::parse(name).unwrap(),
        &PackageVersion::parse(version).unwrap(),
        &FileName::parse(None, file).unwrap(),
    )
    .await
    .unwrap()
}

/// On any store: group `group`, private project `group/project`, user `user` as Developer of
/// the group, and an `api` personal token. Returns (project id, token).
pub async fn provision_developer(
    admin: &Admin,
    group: &str,
    project: &str,
    user: &str,
) -> (i64, String) {
    admin.create_group(group).await.unwrap();
    let pid = admin
        .create_project(&format!("{group}/{project}"), false)
        .await
        .unwrap()
        .id;
    admin.create_user(user).await.unwrap();
    admin
        .add_member(user, group, Role::Developer)
        .await
        .unwrap();
    let spec = TokenSpec::Personal {
        user: user.into(),
        scopes: vec![Scope::Api],
        expires_at: None,
    };
    let token = admin.create_token(spec).await.unwrap().secret;
    (pid, token)
}

/// GitLab's package-file record, fields in GitLab's order, as a publish with
/// `select=package_file` answers it and `depot push` prints it.
pub const PACKAGE_FILE_FIELDS: [&str; 19] = [
    "id",
    "package_id",
    "created_at",
    "updated_at",
    "size",
    "file_store",
    "file_md5",
    "file_sha1",
    "file_name",
    "file",
    "file_sha256",
    "verification_retry_at",
    "verified_at",
    "verification_failure",
    "verification_retry_count",
    "verification_checksum",
    "verification_state",
    "verification_started_at",
    "new_file_path",
];

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The sizes of the files under `dir`, recursively.
fn file_sizes(dir: &std::path::Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut sizes = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sizes.extend(file_sizes(&path));
        } else if let Ok(meta) = entry.metadata() {
            sizes.push(meta.len());
        }
    }
    sizes
}
