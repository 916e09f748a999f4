//! Downloads above the inline threshold: on object storage a 302 to a presigned URL that
//! carries GitLab's Content-Disposition (with `X-Checksum-SHA256` on the redirect), and the URL
//! answers whole files and ranges; HEAD, conditional GETs and small files stay inline. A store
//! that cannot presign (the local directory) answers inline whatever the size.

mod support;

use depot::{Downloads, Registry, router};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use support::{Answer, Backend, World, sha256_hex};
use tower::ServiceExt;

/// The World's stores behind a router that redirects downloads above `inline_max` bytes.
fn redirecting(w: &World, inline_max: u64) -> axum::Router {
    let registry = Registry::new(
        w.app.registry.meta().clone(),
        w.app.registry.blobs().clone(),
        depot::Limits { max_file_size: 0 },
    )
    .with_downloads(Downloads {
        inline_max: Some(inline_max),
        presign_ttl: Duration::from_secs(60),
    });
    router(Arc::new(registry))
}

async fn call(app: &axum::Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = http_body_util::BodyExt::collect(response.into_body())
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

/// `curl` a URL: status, headers (lower-cased), body.
fn curl(url: &str, extra: &[&str]) -> (String, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (headers, body) = (dir.path().join("h"), dir.path().join("b"));
    let out = Command::new("curl")
        .args(["-s", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&headers)
        .args(["-w", "%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        std::fs::read_to_string(&headers)
            .unwrap_or_default()
            .to_ascii_lowercase(),
        std::fs::read(&body).unwrap_or_default(),
    )
}

async fn large_files_redirect_where_the_store_presigns(backend: Backend) {
    let w = World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let data: Vec<u8> = (0..100u8).collect();
    let url = w.url(w.private_id, "big/1.0/data.bin");
    assert_eq!(w.app.put(&url, &dev, &data).await.status, 201);
    let small_url = w.url(w.private_id, "big/1.0/small.txt");
    assert_eq!(w.app.put(&small_url, &dev, b"tiny").await.status, 201);
    let app = redirecting(&w, 64);
    let disposition = "attachment; filename=\"data.bin\"; filename*=UTF-8''data.bin";

    let a = call(&app, "GET", &url, &dev).await;
    let sha = sha256_hex(&data);
    assert_eq!(a.header("x-checksum-sha256"), Some(sha.as_str()));
    match backend {
        Backend::Local => {
            // The directory store cannot presign: the file comes inline.
            assert_eq!(a.status, 200);
            assert_eq!(a.body, data);
        }
        Backend::Aws => {
            assert_eq!(a.status, 302, "{}", a.text());
            assert!(a.body.is_empty());
            let location = a.header("location").unwrap().to_string();
            assert!(location.contains("X-Amz-Signature="), "{location}");
            // Following it, as curl -L, wget and python-gitlab do.
            let (status, headers, body) = curl(&location, &[]);
            assert_eq!(status, "200");
            assert_eq!(body, data);
            assert!(
                headers.contains(&format!(
                    "content-disposition: {}",
                    disposition.to_ascii_lowercase()
                )),
                "{headers}"
            );
            // Ranges work on the presigned URL.
            let (status, _, body) = curl(&location, &["-r", "10-19"]);
            assert_eq!((status.as_str(), body.as_slice()), ("206", &data[10..20]));
            // A tampered URL is refused by the store.
            let at = location.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
            let flipped = if &location[at..at + 1] == "0" {
                "1"
            } else {
                "0"
            };
            let tampered = format!("{}{flipped}{}", &location[..at], &location[at + 1..]);
            let (status, _, _) = curl(&tampered, &[]);
            assert_eq!(status, "403");
            // The redirect counts as a download.
            let (package, _) = w
                .app
                .newest(w.private_id, "big", "1.0", "data.bin")
                .await
                .unwrap();
            assert!(package.last_downloaded_at.is_some());
        }
    }

    // HEAD answers inline (no bytes move), with the full headers.
    let a = call(&app, "HEAD", &url, &dev).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-length"), Some("100"));
    assert_eq!(a.header("content-disposition"), Some(disposition));
    // A conditional GET that matches is 304, never a redirect.
    let etag = format!("\"{sha}\"");
    let a = call(&app, "GET", &url, &[dev[0], ("If-None-Match", &etag)]).await;
    assert_eq!(a.status, 304);
    // Files up to the threshold come inline, so curl without -L keeps working for them.
    let a = call(&app, "GET", &small_url, &dev).await;
    assert_eq!(
        (a.status.as_u16(), a.body.as_slice()),
        (200, b"tiny".as_slice())
    );
    // Refusals are unchanged: no redirect for someone who may not read.
    let a = call(&app, "GET", &url, &[]).await;
    assert_eq!(a.status, 401);
}

on_every_backend!(large_files_redirect_where_the_store_presigns);
