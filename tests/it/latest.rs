//! `GET|HEAD …/generic/:name/latest/(dirs/):file`, on both stores: the file from the highest
//! version holding it (SemVer precedence, pre-releases last, hidden packages never), the
//! version named in `X-Package-Version` and `Content-Location`; after a delete the next
//! version; a version literally named `latest` wins; GitLab's 404 when none holds the file.

use crate::support::{Backend, World};

async fn latest_serves_the_highest_version_holding_the_file(backend: Backend) {
    let w = World::new(backend).await;
    let dev = ("PRIVATE-TOKEN", w.token("developer"));
    let publish = |rest: String, body: &'static [u8]| {
        let uri = w.url(w.private_id, &rest);
        let app = &w.app;
        async move {
            let put = app.put(&uri, &[dev], body).await;
            assert_eq!(put.status.as_u16(), 201, "{rest}: {}", put.text());
        }
    };
    for version in ["1.0.0", "1.10.0", "2.0.0-rc.1", "v1.9.0"] {
        publish(format!("tool/{version}/bin/f.bin"), b"some bytes").await;
    }
    // Higher, but without the file; and higher, but hidden.
    publish("tool/1.11.0/other.bin".into(), b"other").await;
    publish("tool/3.0.0/bin/f.bin?status=hidden".into(), b"hidden").await;
    let latest = w.url(w.private_id, "tool/latest/bin/f.bin");
    let chosen = |answer: &crate::support::Answer| {
        assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
        let version = answer.header("x-package-version").unwrap().to_string();
        let location = answer.header("content-location").unwrap();
        let path = format!(
            "/projects/{}/packages/generic/tool/{version}/bin/f.bin",
            w.private_id
        );
        assert!(location.ends_with(&path), "{location}");
        version
    };
    assert_eq!(chosen(&w.app.get(&latest, &[dev]).await), "1.10.0");
    let head = w.app.send("HEAD", &latest, &[dev], Vec::<u8>::new()).await;
    assert_eq!(chosen(&head), "1.10.0");
    // The highest deleted: the next one.
    let listed = w
        .app
        .get(
            &format!("/api/v4/projects/{}/packages?per_page=100", w.private_id),
            &[dev],
        )
        .await;
    let id = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["version"] == "1.10.0")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let owner = ("PRIVATE-TOKEN", w.token("owner"));
    let uri = format!("/api/v4/projects/{}/packages/{id}", w.private_id);
    assert_eq!(
        w.app
            .send("DELETE", &uri, &[owner], Vec::<u8>::new())
            .await
            .status
            .as_u16(),
        204
    );
    assert_eq!(chosen(&w.app.get(&latest, &[dev]).await), "v1.9.0");
    // The manifest of `latest`: the highest version, file or not.
    let manifest = format!(
        "/api/v4/projects/{}/packages/generic/tool/latest",
        w.private_id
    );
    let manifest: depot::wire::PackageManifest = w.app.get(&manifest, &[dev]).await.wire();
    assert_eq!(manifest.package_version, "1.11.0");
    // No version holds the file: GitLab's 404.
    let none = w
        .app
        .get(&w.url(w.private_id, "tool/latest/none.bin"), &[dev])
        .await;
    assert_eq!(none.status.as_u16(), 404);
    assert_eq!(none.json(), serde_json::json!({"message": "404 Not found"}));
    // Only pre-releases: the highest of them.
    for version in ["0.1.0-rc.2", "0.1.0-rc.10", "0.1.0-beta"] {
        publish(format!("beta/{version}/f.bin"), b"pre").await;
    }
    let pre = w
        .app
        .get(&w.url(w.private_id, "beta/latest/f.bin"), &[dev])
        .await;
    assert_eq!(pre.header("x-package-version"), Some("0.1.0-rc.10"));
    // A version literally named `latest` is that version (GitLab's meaning).
    publish("tool/latest/bin/f.bin".into(), b"literal").await;
    let literal = w.app.get(&latest, &[dev]).await;
    assert_eq!(
        (literal.status.as_u16(), &literal.body[..]),
        (200, &b"literal"[..])
    );
}

async fn latest_is_read_as_a_download_is(backend: Backend) {
    let w = World::new(backend).await;
    let dev = ("PRIVATE-TOKEN", w.token("developer"));
    let uri = w.url(w.private_id, "tool/1.0.0/f.bin");
    assert_eq!(w.app.put(&uri, &[dev], b"bytes").await.status.as_u16(), 201);
    let latest = w.url(w.private_id, "tool/latest/f.bin");
    let stranger = ("PRIVATE-TOKEN", w.token("stranger"));
    assert_eq!(
        w.app.get(&latest, &[stranger]).await.status.as_u16(),
        w.app.get(&uri, &[stranger]).await.status.as_u16()
    );
    let got = w.app.get(&latest, &[dev]).await;
    assert_eq!(
        got.header("x-checksum-sha256"),
        w.app.get(&uri, &[dev]).await.header("x-checksum-sha256")
    );
}

/// A file only an old version holds: past the few versions the store is asked for first,
/// `latest` asks for all.
async fn latest_looks_past_the_first_few_versions(backend: Backend) {
    let w = World::new(backend).await;
    let dev = ("PRIVATE-TOKEN", w.token("developer"));
    let put = |rest: String| {
        let uri = w.url(w.private_id, &rest);
        let w = &w;
        async move { assert_eq!(w.app.put(&uri, &[dev], b"x").await.status.as_u16(), 201) }
    };
    put("tool/1.0.0/rare.bin".into()).await;
    for minor in 0..12 {
        put(format!("tool/1.{minor}.0/common.bin")).await;
    }
    put("tool/nightly/common.bin".into()).await;
    let rare = w
        .app
        .get(&w.url(w.private_id, "tool/latest/rare.bin"), &[dev])
        .await;
    assert_eq!(rare.header("x-package-version"), Some("1.0.0"));
    // The newest of all (the other version, made last) for the common file.
    let common = w
        .app
        .get(&w.url(w.private_id, "tool/latest/common.bin"), &[dev])
        .await;
    assert_eq!(common.header("x-package-version"), Some("nightly"));
}

/// The SemVer ordering table (`domain::versions`' own) through the API on each store: each
/// case's versions published in the order given, `latest` answers its first.
async fn the_ordering_table_through_the_api(backend: Backend) {
    let w = World::new(backend).await;
    let dev = ("PRIVATE-TOKEN", w.token("developer"));
    let table: [(&[&str], &str); 8] = [
        (&["1.2.0", "1.10.0", "1.9.9"], "1.10.0"),
        (
            &["1.0.0-beta.11", "1.0.0-alpha", "1.0.0-rc.1", "1.0.0-beta"],
            "1.0.0-rc.1",
        ),
        (&["3.0.0-rc.1", "1.0.0", "2.0.0"], "2.0.0"),
        (&["1.0.0+b.2", "1.0.0+b.1", "0.9.0"], "1.0.0+b.1"),
        (&["v2.0.0", "1.5.0", "V1.7.0"], "v2.0.0"),
        (&["1.0", "01.0.0", "nightly"], "nightly"),
        (&["2.0.0", "nightly", "1.0.0"], "nightly"),
        (&["nightly", "2.0.0", "2.1.0-rc.1"], "2.0.0"),
    ];
    for (case, (versions, expected)) in table.into_iter().enumerate() {
        for version in versions {
            let uri = w.url(w.private_id, &format!("case{case}/{version}/f.bin"));
            assert_eq!(w.app.put(&uri, &[dev], b"x").await.status.as_u16(), 201);
            // Distinct creation times, as the table assumes.
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let latest = w
            .app
            .get(
                &w.url(w.private_id, &format!("case{case}/latest/f.bin")),
                &[dev],
            )
            .await;
        assert_eq!(
            latest.header("x-package-version"),
            Some(expected),
            "case {case}: {versions:?}"
        );
    }
}

on_every_backend!(
    the_ordering_table_through_the_api,
    latest_looks_past_the_first_few_versions,
    latest_serves_the_highest_version_holding_the_file,
    latest_is_read_as_a_download_is,
);
