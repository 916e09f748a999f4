//! An S3 emulator for tests: s3s-fs (which checks SigV4 signatures) served in-process on a free
//! loopback port, stopped when dropped; where s3s-fs departs from S3 in a way depot relies on
//! (a refused PUT's bytes, a CompleteMultipartUpload's part check), it is brought in line here.
#![allow(dead_code)]

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use md5::Digest;
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

/// S3's answer to a CompleteMultipartUpload naming a part it does not hold.
const INVALID_PART: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error>\
    <Code>InvalidPart</Code><Message>One or more of the specified parts could not be found. \
    The part may not have been uploaded, or the specified entity tag may not match the part's \
    entity tag.</Message></Error>";

/// The upload id of a CompleteMultipartUpload request (`POST …?uploadId=`), if it is one.
fn completed_upload(head: &hyper::http::request::Parts) -> Option<String> {
    let query = head.uri.query()?;
    let id = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "uploadId")?;
    (head.method == hyper::Method::POST).then(|| id.1.into_owned())
}

/// S3's check of a CompleteMultipartUpload, which s3s-fs skips (it consumes the upload and
/// joins whatever part files it finds, whatever the `ETag`s): every part named must be held,
/// with the `ETag` given if one is. `None` if they all are, else S3's `InvalidPart` answer; the upload
/// is then left as it was.
fn invalid_part(root: &std::path::Path, upload_id: &str, body: &[u8]) -> Option<String> {
    let body = String::from_utf8_lossy(body);
    let field = |part: &str, name: &str| -> Option<String> {
        let start = part.find(&format!("<{name}>"))? + name.len() + 2;
        let end = part[start..].find(&format!("</{name}>"))? + start;
        Some(part[start..end].replace("&quot;", "\""))
    };
    for part in body.split("<Part>").skip(1) {
        let number = field(part, "PartNumber")?;
        let path = root.join(format!(".upload_id-{upload_id}.part-{number}"));
        let held = std::fs::read(&path)
            .ok()
            .map(|bytes| format!("\"{}\"", hex::encode(md5::Md5::digest(&bytes))));
        // A part named without an ETag is let through: s3s-fs's ListParts gives none (S3's
        // does), so depot's join of listed parts names none here.
        let matches = match (&held, field(part, "ETag")) {
            (Some(held), Some(told)) => held == told.trim(),
            (held, None) => held.is_some(),
            (None, Some(_)) => false,
        };
        if !matches {
            return Some(INVALID_PART.to_string());
        }
    }
    None
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
                let body = match completed_upload(&head) {
                    Some(upload_id) => {
                        let bytes = http_body_util::BodyExt::collect(body)
                            .await
                            .map_err(|e| s3s::HttpError::new(Box::new(e)))?
                            .to_bytes();
                        if let Some(error) = invalid_part(&objects, &upload_id, &bytes) {
                            let answer = hyper::Response::builder()
                                .status(hyper::StatusCode::BAD_REQUEST)
                                .header("content-type", "application/xml")
                                .body(s3s::Body::from(error))
                                .unwrap();
                            return Ok(answer);
                        }
                        s3s::Body::from(bytes)
                    }
                    None => s3s::Body::from(body),
                };
                let is_get = head.method == hyper::Method::GET;
                let mut response = s3.call(hyper::Request::from_parts(head, body)).await?;
                if is_get && response.status() == hyper::StatusCode::OK {
                    response = response.map(coalesced);
                }
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
                // As S3 answers: a small object's body is not held back behind its headers.
                let _ = socket.set_nodelay(true);
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

/// s3s-fs streams an object in 4 KiB pieces; with `TCP_NODELAY` each would leave as a segment
/// of its own and cost the reader one read per 4 KiB, which S3 does not make it pay. The
/// pieces are joined up to 1 MiB.
fn coalesced(body: s3s::Body) -> s3s::Body {
    use futures::StreamExt;
    let joined = http_body_util::BodyDataStream::new(body)
        .chunks(256)
        .map(|pieces| {
            let mut joined = bytes::BytesMut::new();
            for piece in pieces {
                joined.extend_from_slice(&piece?);
            }
            Ok::<_, s3s::StdError>(hyper::body::Frame::data(joined.freeze()))
        });
    s3s::Body::http_body_unsync(http_body_util::StreamBody::new(joined))
}
