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

/// Where a PutObject request (not a part, not a copy) writes its object, in s3s-fs's layout.
fn refused_put_target(
    head: &hyper::http::request::Parts,
    root: &std::path::Path,
) -> Option<std::path::PathBuf> {
    let query = head.uri.query().unwrap_or_default();
    let plain_put = head.method == hyper::Method::PUT
        && !query.contains("uploadId")
        && !head.headers.contains_key("x-amz-copy-source");
    let path = head.uri.path().trim_start_matches('/');
    (plain_put && path.contains('/') && !path.contains("..")).then(|| {
        root.join(
            percent_encoding::percent_decode_str(path)
                .decode_utf8_lossy()
                .as_ref(),
        )
    })
}

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
        let objects = root.path().to_path_buf();
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let (s3, observer) = (s3.clone(), observer.clone());
            let objects = objects.clone();
            async move {
                let (head, body) = request.into_parts();
                let seen = observer.as_ref().map(|_| head.clone());
                let put_object = refused_put_target(&head, &objects);
                let response =
                    hyper::service::Service::call(&s3, hyper::Request::from_parts(head, body))
                        .await?;
                // s3s-fs writes a PutObject's bytes before it checks their checksum; S3 keeps
                // nothing of a refused PUT, so neither does this emulator.
                if let Some(path) = put_object
                    && response.status() == hyper::StatusCode::BAD_REQUEST
                {
                    let _ = std::fs::remove_file(path);
                }
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
        self.objects(bucket)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// Every object's key and size (every page of the listing). s3s-fs answers a listing 500
    /// when an object vanishes while it walks the directory: the listing is taken again.
    pub async fn objects(&self, bucket: &str) -> Vec<(String, u64)> {
        let mut last_error = None;
        for _ in 0..5 {
            match self.try_objects(bucket).await {
                Ok(objects) => return objects,
                Err(e) => last_error = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("listing {bucket}: {last_error:?}")
    }

    async fn try_objects(&self, bucket: &str) -> Result<Vec<(String, u64)>, String> {
        let mut pages = self
            .client()
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| format!("{e:?}"))?;
            objects.extend(page.contents().iter().filter_map(|o| {
                let size = o.size().unwrap_or_default().max(0) as u64;
                o.key().map(|k| (k.to_string(), size))
            }));
        }
        Ok(objects)
    }
}
