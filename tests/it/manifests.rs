//! `GET /projects/:id/packages/generic/:name/:version`, a version's manifest, on both stores:
//! the newest live file of each name in name order, with sizes, digests and download URLs
//! that work; GitLab-shaped errors for a missing or invalid version, and the same access as a
//! download.

use crate::support::{Backend, World, sha256_hex};

async fn a_version_lists_its_newest_files(backend: Backend) {
    let w = World::new(backend).await;
    let dev = ("PRIVATE-TOKEN", w.token("developer"));
    let put = |rest: &'static str, body: &'static [u8]| {
        let uri = w.url(w.private_id, rest);
        let app = &w.app;
        async move { assert_eq!(app.put(&uri, &[dev], body).await.status.as_u16(), 201) }
    };
    put("tool/1.0/z.bin", b"zed").await;
    put("tool/1.0/linux/amd64/tool", b"binary").await;
    put("tool/1.0/z.bin", b"zed, newer").await;
    put("tool/2.0/other.bin", b"another version").await;
    let uri = format!(
        "/api/v4/projects/{}/packages/generic/tool/1.0",
        w.private_id
    );
    let got = w.app.get(&uri, &[dev]).await;
    assert_eq!(got.status.as_u16(), 200, "{}", got.text());
    let manifest: depot::wire::PackageManifest = got.wire();
    assert_eq!(
        (
            manifest.package_name.as_str(),
            manifest.package_version.as_str()
        ),
        ("tool", "1.0")
    );
    let listed: Vec<(&str, u64, &str)> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.size, f.sha256.as_str()))
        .collect();
    let (binary, zed) = (sha256_hex(b"binary"), sha256_hex(b"zed, newer"));
    assert_eq!(
        listed,
        [
            ("linux/amd64/tool", 6, binary.as_str()),
            ("z.bin", 10, zed.as_str())
        ]
    );
    for file in &manifest.files {
        let path = file
            .download_url
            .split_once("/api/v4/")
            .map(|(_, rest)| format!("/api/v4/{rest}"))
            .unwrap();
        let body = w.app.get(&path, &[dev]).await;
        assert_eq!(body.status.as_u16(), 200, "{path}");
        assert_eq!(sha256_hex(&body.body), file.sha256, "{path}");
    }
    // By the project's path too.
    let by_path = w
        .app
        .get(
            "/api/v4/projects/grp%2Fapp/packages/generic/tool/1.0",
            &[dev],
        )
        .await;
    assert_eq!(by_path.wire::<depot::wire::PackageManifest>(), manifest);
}

async fn a_manifest_refuses_as_a_download_does(backend: Backend) {
    let w = World::new(backend).await;
    let dev = ("PRIVATE-TOKEN", w.token("developer"));
    let uri = w.url(w.private_id, "tool/1.0/f.bin");
    assert_eq!(w.app.put(&uri, &[dev], b"f").await.status.as_u16(), 201);
    let manifest = |version: &str| {
        format!(
            "/api/v4/projects/{}/packages/generic/tool/{version}",
            w.private_id
        )
    };
    let missing = w.app.get(&manifest("9.9"), &[dev]).await;
    assert_eq!(missing.status.as_u16(), 404);
    assert_eq!(
        missing.json(),
        serde_json::json!({"message": "404 Not found"})
    );
    let invalid = w.app.get(&manifest("1..0"), &[dev]).await;
    assert_eq!(invalid.status.as_u16(), 400);
    assert_eq!(
        invalid.json(),
        serde_json::json!({"error": "package_version is invalid"})
    );
    // Who may not download may not list: a stranger, and nobody at all, on a private project.
    let stranger = ("PRIVATE-TOKEN", w.token("stranger"));
    assert_eq!(
        w.app
            .get(&manifest("1.0"), &[stranger])
            .await
            .status
            .as_u16(),
        404
    );
    let anonymous = w.app.get(&manifest("1.0"), &[]).await.status.as_u16();
    let download = w.app.get(&uri, &[]).await.status.as_u16();
    assert_eq!(anonymous, download);
    // A deleted package has no manifest.
    let listed = w
        .app
        .get(
            &format!("/api/v4/projects/{}/packages", w.private_id),
            &[dev],
        )
        .await;
    let id = listed.json()[0]["id"].as_i64().unwrap();
    let owner = ("PRIVATE-TOKEN", w.token("owner"));
    let deleted = w
        .app
        .send(
            "DELETE",
            &format!("/api/v4/projects/{}/packages/{id}", w.private_id),
            &[owner],
            Vec::<u8>::new(),
        )
        .await;
    assert_eq!(deleted.status.as_u16(), 204);
    assert_eq!(
        w.app.get(&manifest("1.0"), &[dev]).await.status.as_u16(),
        404
    );
}

on_every_backend!(
    a_version_lists_its_newest_files,
    a_manifest_refuses_as_a_download_does,
);
