//! Downloads above the inline threshold: on object storage a 302 to a presigned URL that
//! carries GitLab's Content-Disposition (with `X-Checksum-SHA256` on the redirect), and the URL
//! answers whole files and ranges; HEAD, conditional GETs and small files stay inline. A store
//! that cannot presign (the local directory) answers inline whatever the size.

use crate::support::prerequisites::on_path;
use crate::support::{Backend, World, sha256_hex};
use depot::Downloads;
use std::time::Duration;

/// `curl` a URL: status, headers (lower-cased), body.
fn curl(url: &str, extra: &[&str]) -> (String, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (headers, body) = (dir.path().join("h"), dir.path().join("b"));
    let out = on_path("curl")
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
    let mut w = World::new(backend).await;
    let token = w.token("developer").to_string();
    let dev = [("PRIVATE-TOKEN", token.as_str())];
    // Above the inline limit: a blob of its own, which the store can presign.
    let data: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    let url = w.url(w.private_id, "big/1.0/data.bin");
    assert_eq!(w.app.put(&url, &dev, &data).await.status, 201);
    let small_url = w.url(w.private_id, "big/1.0/small.txt");
    assert_eq!(w.app.put(&small_url, &dev, b"tiny").await.status, 201);
    // Downloads above 64 bytes redirect where the store presigns.
    w.app.reconfigure(|r| {
        r.with_downloads(Downloads {
            inline_max: Some(64),
            presign_ttl: Duration::from_secs(60),
        })
    });
    let disposition = "attachment; filename=\"data.bin\"; filename*=UTF-8''data.bin";

    let a = w.app.send("GET", &url, &dev, Vec::<u8>::new()).await;
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
    let a = w.app.send("HEAD", &url, &dev, Vec::<u8>::new()).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-length"), Some("20000"));
    assert_eq!(a.header("content-disposition"), Some(disposition));
    // A conditional GET that matches is 304, never a redirect.
    let etag = format!("\"{sha}\"");
    let a = w
        .app
        .send(
            "GET",
            &url,
            &[dev[0], ("If-None-Match", &etag)],
            Vec::<u8>::new(),
        )
        .await;
    assert_eq!(a.status, 304);
    // Files up to the threshold come inline, so curl without -L keeps working for them.
    let a = w.app.send("GET", &small_url, &dev, Vec::<u8>::new()).await;
    assert_eq!(
        (a.status.as_u16(), a.body.as_slice()),
        (200, b"tiny".as_slice())
    );
    // A file its record keeps has no object to redirect to: inline, past the threshold too.
    let kept: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let kept_url = w.url(w.private_id, "big/1.0/kept.bin");
    assert_eq!(w.app.put(&kept_url, &dev, &kept).await.status, 201);
    let a = w.app.send("GET", &kept_url, &dev, Vec::<u8>::new()).await;
    assert_eq!(
        (a.status.as_u16(), a.body.as_slice()),
        (200, kept.as_slice())
    );
    // Refusals are unchanged: no redirect for someone who may not read.
    let a = w.app.send("GET", &url, &[], Vec::<u8>::new()).await;
    assert_eq!(a.status, 401);
}

on_every_backend!(large_files_redirect_where_the_store_presigns);
