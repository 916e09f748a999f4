//! An S3 emulator for tests: s3s-fs (which checks SigV4 signatures) served in-process on a free
//! loopback port, stopped when dropped.
#![allow(dead_code)]

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

pub const ACCESS_KEY: &str = "test";
pub const SECRET_KEY: &str = "test";

pub struct S3Emulator {
    pub endpoint: String,
    pub root: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for S3Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Told of each request the emulator answers: the request's head and the response's status
/// and head (sizes are in their `content-length` headers).
pub type Observer = std::sync::Arc<
    dyn Fn(&hyper::http::request::Parts, &hyper::http::response::Parts) + Send + Sync,
>;

impl S3Emulator {
    pub async fn start() -> Self {
        Self::start_observed(None).await
    }

    /// As [`Self::start`], telling `observer` of every request answered.
    pub async fn start_observed(observer: Option<Observer>) -> Self {
        let root = tempfile::tempdir().unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let s3 = builder.build();
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let (s3, observer) = (s3.clone(), observer.clone());
            async move {
                let (head, body) = request.into_parts();
                let seen = observer.as_ref().map(|_| head.clone());
                let response =
                    hyper::service::Service::call(&s3, hyper::Request::from_parts(head, body))
                        .await?;
                if let (Some(observer), Some(head)) = (observer, seen) {
                    let (parts, body) = response.into_parts();
                    observer(&head, &parts);
                    return Ok(hyper::Response::from_parts(parts, body));
                }
                Ok::<_, s3s::HttpError>(response)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Self {
            endpoint,
            root,
            server,
        }
    }

    /// An SDK client for this emulator, configured as depot configures its own.
    pub fn client(&self) -> aws_sdk_s3::Client {
        depot::store::s3::S3BlobStore::client_from(
            &super::sdk_config(),
            Some(&self.endpoint),
            &Default::default(),
        )
    }

    /// Create a bucket; returns its name.
    pub async fn bucket(&self, name: &str) -> String {
        self.client()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap();
        name.to_string()
    }

    /// Parts of multipart uploads not completed or aborted (s3s-fs keeps them as files).
    pub fn unfinished_parts(&self) -> usize {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".upload_id-"))
            .count()
    }

    /// Objects stored in `bucket` (every key).
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self
            .client()
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }
}
