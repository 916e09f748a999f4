//! HTTP conformance of the Packages API, driven through the router on every store
//! pair: project and group lists with GitLab's pagination headers, one package, its files.

use crate::support::{Backend, World};
use depot::wire::PackageEntity;
use serde_json::{Value, json};

/// Publish `file` in package `name`/`version` of `project` as the developer.
async fn publish(
    w: &World,
    project: impl std::fmt::Display,
    name: &str,
    version: &str,
    file: &str,
) {
    let url = w.url(project, &format!("{name}/{version}/{file}"));
    let a = w
        .app
        .put(&url, &[("PRIVATE-TOKEN", w.token("developer"))], b"data")
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
}

/// `GET url` as `user` (a personal token of the World), or anonymously.
async fn get_as(w: &World, url: &str, user: Option<&str>) -> crate::support::Answer {
    match user {
        Some(user) => w.app.get(url, &[("PRIVATE-TOKEN", w.token(user))]).await,
        None => w.app.get(url, &[]).await,
    }
}

fn ids(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

fn names(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}@{}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect()
}

/// The `rel="next"` URL of a `Link` header, as python-gitlab reads it.
fn next_link(link: &str) -> Option<String> {
    link.split(", ").find_map(|part| {
        let (url, rel) = part.split_once("; ")?;
        (rel == "rel=\"next\"").then(|| url.trim_matches(['<', '>']).to_string())
    })
}

async fn lists_page_through_link_headers(backend: Backend) {
    let w = World::new(backend).await;
    for i in 0..25 {
        publish(&w, w.private_id, &format!("pkg-{i:02}"), "1.0", "f.bin").await;
    }
    let maintainer = w.token("maintainer");
    let headers = [("PRIVATE-TOKEN", maintainer), ("Host", "registry.example")];
    let list = format!("/api/v4/projects/{}/packages", w.private_id);
    let a = w
        .app
        .get(&format!("{list}?per_page=10&page=2"), &headers)
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json().as_array().unwrap().len(), 10);
    for (name, value) in [
        ("x-page", "2"),
        ("x-per-page", "10"),
        ("x-next-page", "3"),
        ("x-prev-page", "1"),
        ("x-total", "25"),
        ("x-total-pages", "3"),
    ] {
        assert_eq!(a.header(name), Some(value), "{name}");
    }
    let url = |p: u32| format!("http://registry.example{list}?page={p}&per_page=10");
    assert_eq!(
        a.header("link").unwrap(),
        format!(
            "<{}>; rel=\"prev\", <{}>; rel=\"next\", <{}>; rel=\"first\", <{}>; rel=\"last\"",
            url(1),
            url(3),
            url(1),
            url(3)
        )
    );

    // Walk every page by rel="next", as python-gitlab does.
    let mut seen = Vec::new();
    let mut next = Some(format!("{list}?per_page=10"));
    let mut pages = 0;
    while let Some(url) = next {
        let path = url.trim_start_matches("http://registry.example");
        let a = w.app.get(path, &headers).await;
        assert_eq!(a.status, 200);
        seen.extend(names(&a.json()));
        next = a.header("link").and_then(next_link);
        pages += 1;
        assert!(pages <= 3, "more pages than X-Total-Pages");
    }
    let expected: Vec<String> = (0..25).map(|i| format!("pkg-{i:02}@1.0")).collect();
    assert_eq!(seen, expected);

    // Beyond the last page: an empty array, no next or previous page.
    let a = w
        .app
        .get(&format!("{list}?per_page=10&page=9"), &headers)
        .await;
    assert_eq!(a.json(), json!([]));
    assert_eq!(a.header("x-next-page"), Some(""));
    assert_eq!(a.header("x-prev-page"), Some(""));
    assert_eq!(a.header("x-total"), Some("25"));
    // per_page above 100 is 100.
    let a = w.app.get(&format!("{list}?per_page=500"), &headers).await;
    assert_eq!(a.header("x-per-page"), Some("100"));
    assert_eq!(a.header("x-total-pages"), Some("1"));
}

async fn package_entities_match_gitlab(backend: Backend) {
    let w = World::new(backend).await;
    publish(&w, w.private_id, "my_package", "0.0.1", "file.txt").await;
    publish(&w, w.private_id, "my_package", "0.0.2", "file.txt").await;
    let list = format!("/api/v4/projects/{}/packages", w.private_id);
    let maintainer = [
        ("PRIVATE-TOKEN", w.token("maintainer")),
        ("Host", "r.example"),
    ];
    let a = w.app.get(&list, &maintainer).await;
    // The entities read back as the wire type clients use, field for field.
    let typed: Vec<PackageEntity> = a.wire();
    assert_eq!(typed[0].versions, None);
    let first = a.json()[0].clone();
    let id = first["id"].as_i64().unwrap();
    let created = first["created_at"].as_str().unwrap().to_string();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    let entity = json!({
        "id": id,
        "name": "my_package",
        "version": "0.0.1",
        "package_type": "generic",
        "status": "default",
        "_links": {
            "web_path": format!("/grp/app/-/packages/{id}"),
            "delete_api_path": format!("http://r.example/api/v4/projects/{}/packages/{id}", w.private_id),
        },
        "created_at": created,
        "last_downloaded_at": null,
        // depot's, beside GitLab's fields.
        "download_count": 0,
        "tags": [],
    });
    assert_eq!(first, entity);

    // One package: the same entity plus the other versions of its name.
    let a = w.app.get(&format!("{list}/{id}"), &maintainer).await;
    assert_eq!(a.status, 200);
    let one: PackageEntity = a.wire();
    assert_eq!(one.versions.map(|v| v.len()), Some(1));
    let mut single = a.json();
    let versions = single.as_object_mut().unwrap().remove("versions").unwrap();
    assert_eq!(single, entity);
    assert_eq!(versions.as_array().unwrap().len(), 1);
    assert_eq!(versions[0]["version"], "0.0.2");

    // Without the right to delete there is no delete link; a download shows up.
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    w.app
        .get(&w.url(w.private_id, "my_package/0.0.1/file.txt"), &dev)
        .await;
    let a = w.app.get(&format!("{list}/{id}"), &dev).await;
    let body = a.json();
    assert_eq!(
        body["_links"],
        json!({"web_path": format!("/grp/app/-/packages/{id}")})
    );
    assert!(body["last_downloaded_at"].as_str().unwrap().ends_with('Z'));
}

async fn filters_orders_and_errors(backend: Backend) {
    let w = World::new(backend).await;
    publish(&w, w.private_id, "beta", "2.0", "f").await;
    publish(&w, w.private_id, "alpha-lib", "1.0", "f").await;
    publish(&w, w.private_id, "Core-Lib", "1.0", "f").await;
    let hidden = w.url(w.private_id, "secret/1.0/f?status=hidden");
    w.app
        .put(&hidden, &[("PRIVATE-TOKEN", w.token("developer"))], b"x")
        .await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let list = format!("/api/v4/projects/{}/packages", w.private_id);
    let get = |q: &str| {
        let url = format!("{list}?{q}");
        let w = &w;
        async move { get_as(w, &url, Some("developer")).await }
    };
    let cases = [
        ("", vec!["beta@2.0", "alpha-lib@1.0", "Core-Lib@1.0"]),
        (
            "order_by=name",
            vec!["Core-Lib@1.0", "alpha-lib@1.0", "beta@2.0"],
        ),
        (
            "order_by=version&sort=desc",
            vec!["beta@2.0", "Core-Lib@1.0", "alpha-lib@1.0"],
        ),
        ("package_name=LIB", vec!["alpha-lib@1.0", "Core-Lib@1.0"]),
        ("package_name=core+lib", vec!["Core-Lib@1.0"]),
        ("package_version=2.0", vec!["beta@2.0"]),
        ("status=hidden", vec!["secret@1.0"]),
        (
            "package_type=generic&include_versionless=true",
            vec!["beta@2.0", "alpha-lib@1.0", "Core-Lib@1.0"],
        ),
        ("package_type=maven", vec![]),
    ];
    for (q, expected) in cases {
        let a = get(q).await;
        assert_eq!(a.status, 200, "{q}: {}", a.text());
        assert_eq!(names(&a.json()), expected, "{q}");
        assert_eq!(
            a.header("x-total"),
            Some(expected.len().to_string().as_str()),
            "{q}"
        );
    }
    let bad = [
        ("order_by=size", "order_by does not have a valid value"),
        ("sort=sideways", "sort does not have a valid value"),
        (
            "package_type=zip",
            "package_type does not have a valid value",
        ),
        ("status=lost", "status does not have a valid value"),
        ("per_page=0", "per_page has a value not allowed"),
        ("page=first", "page is invalid"),
    ];
    for (q, message) in bad {
        get(q).await.expect(400, json!({ "error": message }));
    }

    // One package: hidden and unknown ids are not found, a non-integer id is invalid.
    let hidden_id = ids(&get("status=hidden").await.json())[0];
    for id in [hidden_id.to_string(), "999999".to_string()] {
        w.app
            .get(&format!("{list}/{id}"), &dev)
            .await
            .expect(404, json!({"message": "404 Not found"}));
    }
    w.app
        .get(&format!("{list}/abc"), &dev)
        .await
        .expect(400, json!({"error": "package_id is invalid"}));
    // A package of another project is not found through this one.
    let visible_id = ids(&get("").await.json())[0];
    w.app
        .get(
            &format!("/api/v4/projects/{}/packages/{visible_id}", w.public_id),
            &dev,
        )
        .await
        .expect(404, json!({"message": "404 Not found"}));
    w.app
        .get(&format!("{list}/{visible_id}/nothing"), &dev)
        .await
        .expect(404, json!({"error": "404 Not Found"}));
}

async fn who_may_list(backend: Backend) {
    let w = World::new(backend).await;
    publish(&w, w.private_id, "p", "1", "f").await;
    publish(&w, w.public_id, "q", "1", "f").await;
    let private = format!("/api/v4/projects/{}/packages", w.private_id);
    let by_path = "/api/v4/projects/grp%2Fapp/packages";
    let public = format!("/api/v4/projects/{}/packages", w.public_id);
    let not_found = json!({"message": "404 Project Not Found"});
    // Anonymous callers and strangers cannot see a private project.
    w.app
        .get(&private, &[])
        .await
        .expect(404, not_found.clone());
    w.app
        .get(&private, &[("PRIVATE-TOKEN", w.token("stranger"))])
        .await
        .expect(404, not_found.clone());
    // Anyone reads a public project's list; any member a private one's.
    assert_eq!(names(&w.app.get(&public, &[]).await.json()), vec!["q@1"]);
    for user in ["guest", "reporter", "owner"] {
        let a = w
            .app
            .get(by_path, &[("PRIVATE-TOKEN", w.token(user))])
            .await;
        assert_eq!(names(&a.json()), vec!["p@1"], "{user}");
    }
    // A bad token is refused even where anonymous reads would do.
    w.app
        .get(&public, &[("PRIVATE-TOKEN", "dpat-wrong")])
        .await
        .expect(401, json!({"message": "401 Unauthorized"}));
    // A read deploy token of the project lists it.
    let deploy = w
        .app
        .deploy_token(
            Some("grp/app"),
            None,
            &[depot::domain::Scope::ReadPackageRegistry],
        )
        .await;
    let a = w
        .app
        .get(&private, &[("DEPLOY-TOKEN", deploy.as_str())])
        .await;
    assert_eq!(names(&a.json()), vec!["p@1"]);
    // Access is checked before the query is validated.
    w.app
        .get(&format!("{private}?order_by=size"), &[])
        .await
        .expect(404, not_found);
}

async fn group_lists(backend: Backend) {
    let w = World::new(backend).await;
    w.app.group("grp/sub").await;
    let lib = w.app.project("grp/sub/lib", false).await;
    w.app.group("other").await;
    let elsewhere = w.app.project("other/x", false).await;
    publish(&w, w.private_id, "app-pkg", "1", "f").await;
    publish(&w, w.public_id, "pub-pkg", "1", "f").await;
    publish(&w, lib, "lib-pkg", "1", "f").await;
    w.app
        .member("developer", "other", depot::domain::Role::Developer)
        .await;
    publish(&w, elsewhere, "other-pkg", "1", "f").await;

    let dev = [
        ("PRIVATE-TOKEN", w.token("developer")),
        ("Host", "r.example"),
    ];
    let a = w.app.get("/api/v4/groups/grp/packages", &dev).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let body = a.json();
    assert_eq!(names(&body), vec!["app-pkg@1", "pub-pkg@1", "lib-pkg@1"]);
    assert_eq!(body[2]["project_id"], lib);
    assert_eq!(body[2]["project_path"], "grp/sub/lib");
    assert_eq!(a.header("x-total"), Some("3"));
    assert!(a.header("link").unwrap().contains(
        "<http://r.example/api/v4/groups/grp/packages?page=1&per_page=20>; rel=\"first\""
    ));

    let get = |url: &'static str, user: Option<&'static str>| get_as(&w, url, user);
    assert_eq!(
        names(
            &get(
                "/api/v4/groups/grp/packages?exclude_subgroups=true",
                Some("developer")
            )
            .await
            .json()
        ),
        vec!["app-pkg@1", "pub-pkg@1"]
    );
    assert_eq!(
        names(
            &get("/api/v4/groups/grp%2Fsub/packages", Some("developer"))
                .await
                .json()
        ),
        vec!["lib-pkg@1"]
    );
    assert_eq!(
        names(
            &get(
                "/api/v4/groups/grp/packages?order_by=project_path&sort=desc",
                Some("developer")
            )
            .await
            .json()
        ),
        vec!["lib-pkg@1", "pub-pkg@1", "app-pkg@1"]
    );
    // Those who cannot read the private projects see the public one only.
    assert_eq!(
        names(&get("/api/v4/groups/grp/packages", None).await.json()),
        vec!["pub-pkg@1"]
    );
    assert_eq!(
        names(
            &get("/api/v4/groups/grp/packages", Some("stranger"))
                .await
                .json()
        ),
        vec!["pub-pkg@1"]
    );
    let group_not_found = json!({"message": "404 Group Not Found"});
    get("/api/v4/groups/other/packages", None)
        .await
        .expect(404, group_not_found.clone());
    get("/api/v4/groups/other/packages", Some("stranger"))
        .await
        .expect(404, group_not_found.clone());
    get("/api/v4/groups/missing/packages", Some("developer"))
        .await
        .expect(404, group_not_found);
    get(
        "/api/v4/groups/grp/packages?exclude_subgroups=maybe",
        Some("developer"),
    )
    .await
    .expect(400, json!({"error": "exclude_subgroups is invalid"}));
    let a = get(
        "/api/v4/groups/grp/packages?order_by=project_path",
        Some("developer"),
    )
    .await;
    assert_eq!(
        names(&a.json()),
        vec!["app-pkg@1", "pub-pkg@1", "lib-pkg@1"]
    );
    // The group's numeric id works as well.
    let group_id = w
        .app
        .meta()
        .group_by_path("other")
        .await
        .unwrap()
        .unwrap()
        .id;
    let a = w
        .app
        .get(&format!("/api/v4/groups/{group_id}/packages"), &dev)
        .await;
    assert_eq!(names(&a.json()), vec!["other-pkg@1"]);
}

async fn package_files(backend: Backend) {
    let w = World::new(backend).await;
    publish(&w, w.private_id, "pkg", "1.0", "b.bin").await;
    publish(&w, w.private_id, "pkg", "1.0", "a.bin").await;
    publish(&w, w.private_id, "pkg", "1.0", "b.bin").await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let list = format!("/api/v4/projects/{}/packages", w.private_id);
    let id = ids(&w.app.get(&list, &dev).await.json())[0];
    let files = format!("{list}/{id}/package_files");
    let a = w.app.get(&files, &dev).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let body = a.json();
    let got: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_name"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec!["b.bin", "a.bin", "b.bin"]);
    let first = &body[0];
    assert_eq!(
        first,
        &json!({
            "id": first["id"],
            "package_id": id,
            "created_at": first["created_at"],
            "file_name": "b.bin",
            "size": 4,
            "file_md5": null,
            "file_sha1": null,
            "file_sha256": crate::support::sha256_hex(b"data"),
            "download_count": 0,
        })
    );
    assert_eq!(a.header("x-total"), Some("3"));
    let a = w
        .app
        .get(
            &format!("{files}?order_by=file_name&sort=desc&per_page=2"),
            &dev,
        )
        .await;
    let body = a.json();
    let got: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_name"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec!["b.bin", "b.bin"]);
    assert_eq!(a.header("x-next-page"), Some("2"));
    assert_eq!(a.header("x-total-pages"), Some("2"));
    w.app
        .get(&format!("{files}?order_by=size"), &dev)
        .await
        .expect(
            400,
            json!({"error": "order_by does not have a valid value"}),
        );
    w.app
        .get(&format!("{list}/999999/package_files"), &dev)
        .await
        .expect(404, json!({"message": "404 Not found"}));
}

async fn deletes_vanish_at_once_and_purge_later(backend: Backend) {
    let w = World::new(backend).await;
    publish(&w, w.private_id, "gone", "1.0", "a.bin").await;
    publish(&w, w.private_id, "gone", "1.0", "b.bin").await;
    publish(&w, w.private_id, "kept", "1.0", "k.bin").await;
    assert_eq!(w.app.stored_bodies().await, 3);
    let list = format!("/api/v4/projects/{}/packages", w.private_id);
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let listed = w.app.get(&list, &dev).await.json();
    let (gone, kept) = (ids(&listed)[0], ids(&listed)[1]);
    let package = format!("{list}/{gone}");

    // Who may delete: Maintainer and up, or a write deploy token. An anonymous caller cannot
    // see a private project (404; a public one: `anonymous_deletes`).
    w.app
        .send("DELETE", &package, &[], Vec::new())
        .await
        .expect(404, json!({"message": "404 Project Not Found"}));

    for user in ["guest", "developer"] {
        w.app
            .send(
                "DELETE",
                &package,
                &[("PRIVATE-TOKEN", w.token(user))],
                Vec::new(),
            )
            .await
            .expect(403, json!({"message": "403 Forbidden"}));
    }
    w.app
        .send(
            "DELETE",
            &package,
            &[("PRIVATE-TOKEN", w.token("stranger"))],
            Vec::new(),
        )
        .await
        .expect(404, json!({"message": "404 Project Not Found"}));
    // If-Unmodified-Since before the package's last change: kept, 412.
    let maintainer = ("PRIVATE-TOKEN", w.token("maintainer"));
    w.app
        .send(
            "DELETE",
            &package,
            &[
                maintainer,
                ("If-Unmodified-Since", "Thu, 01 Jan 2015 00:00:00 GMT"),
            ],
            Vec::new(),
        )
        .await
        .expect(412, json!({"message": "412 Precondition Failed"}));

    let a = w
        .app
        .send(
            "DELETE",
            &package,
            &[
                maintainer,
                ("If-Unmodified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text());
    assert!(a.body.is_empty());
    // Gone at once: lists, the package, its downloads; a second delete finds nothing.
    assert_eq!(ids(&w.app.get(&list, &dev).await.json()), vec![kept]);
    w.app
        .get(&package, &dev)
        .await
        .expect(404, json!({"message": "404 Not found"}));
    w.app
        .get(&w.url(w.private_id, "gone/1.0/a.bin"), &dev)
        .await
        .expect(404, json!({"message": "404 Not found"}));
    w.app
        .send("DELETE", &package, &[maintainer], Vec::new())
        .await
        .expect(404, json!({"message": "404 Not found"}));
    let pending = w
        .app
        .get(&format!("{list}?status=pending_destruction"), &dev)
        .await
        .json();
    assert_eq!(ids(&pending), vec![gone]);
    // The bytes stay until the purge, which removes exactly the deleted package's.
    assert_eq!(w.app.stored_bodies().await, 3);
    assert_eq!(purge(&w).await, (1, 2, 2));
    assert_eq!(w.app.stored_bodies().await, 1);
    assert_eq!(w.app.registry.purge(100).await.unwrap(), Default::default());
    let a = w
        .app
        .get(&w.url(w.private_id, "kept/1.0/k.bin"), &dev)
        .await;
    assert_eq!(
        (a.status.as_u16(), a.body.as_slice()),
        (200, b"data".as_slice())
    );

    // One file, with a write deploy token.
    publish(&w, w.private_id, "kept", "1.0", "extra.bin").await;
    let files = format!("{list}/{kept}/package_files");
    let file_ids = ids(&w.app.get(&files, &dev).await.json());
    let deploy = w
        .app
        .deploy_token(
            Some("grp/app"),
            None,
            &[depot::domain::Scope::WritePackageRegistry],
        )
        .await;
    let by_deploy = [("DEPLOY-TOKEN", deploy.as_str())];
    let a = w
        .app
        .send(
            "DELETE",
            &format!("{files}/{}", file_ids[1]),
            &by_deploy,
            Vec::new(),
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text());
    assert_eq!(
        ids(&w.app.get(&files, &dev).await.json()),
        vec![file_ids[0]]
    );
    w.app
        .get(&w.url(w.private_id, "kept/1.0/extra.bin"), &dev)
        .await
        .expect(404, json!({"message": "404 Not found"}));
    w.app
        .send(
            "DELETE",
            &format!("{files}/{}", file_ids[1]),
            &by_deploy,
            Vec::new(),
        )
        .await
        .expect(404, json!({"message": "404 Not Found"}));
    w.app
        .send("DELETE", &format!("{files}/x"), &by_deploy, Vec::new())
        .await
        .expect(400, json!({"error": "package_file_id is invalid"}));
    assert_eq!(w.app.stored_bodies().await, 2);
    assert_eq!(purge(&w).await, (0, 1, 1));
    assert_eq!(w.app.stored_bodies().await, 1);
    // A file deleted on its own, then its package: each purged once.
    publish(&w, w.private_id, "kept", "1.0", "late.bin").await;
    let late = *ids(&w.app.get(&files, &dev).await.json()).last().unwrap();
    let maintainer_only = [maintainer];
    let a = w
        .app
        .send(
            "DELETE",
            &format!("{files}/{late}"),
            &maintainer_only,
            Vec::new(),
        )
        .await;
    assert_eq!(a.status, 204);
    let a = w
        .app
        .send(
            "DELETE",
            &format!("{list}/{kept}"),
            &maintainer_only,
            Vec::new(),
        )
        .await;
    assert_eq!(a.status, 204);
    assert_eq!(purge(&w).await, (1, 2, 2));
    assert_eq!(w.app.stored_bodies().await, 0);
    // A read-only deploy token may not delete.
    let reader = w
        .app
        .deploy_token(
            Some("grp/app"),
            None,
            &[depot::domain::Scope::ReadPackageRegistry],
        )
        .await;
    let a = w
        .app
        .send(
            "DELETE",
            &format!("{list}/{kept}"),
            &[("DEPLOY-TOKEN", reader.as_str())],
            Vec::new(),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.text());
}

async fn links_use_the_configured_public_url(backend: Backend) {
    let w = World::new(backend).await;
    for i in 0..3 {
        publish(&w, w.private_id, &format!("p{i}"), "1", "f").await;
    }
    let registry = depot::Registry::new(
        w.app.registry.meta().clone(),
        w.app.registry.blobs().clone(),
        depot::Limits::unlimited(),
    )
    .with_public_url(Some("https://pkgs.example.com/".into()));
    let app = depot::router(std::sync::Arc::new(registry));
    let request = axum::http::Request::builder()
        .uri(format!(
            "/api/v4/projects/{}/packages?per_page=1&page=2&sort=asc",
            w.private_id
        ))
        .header("PRIVATE-TOKEN", w.token("maintainer"))
        .header("Host", "internal:8080")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app, request).await.unwrap();
    let link = response.headers()["link"].to_str().unwrap().to_string();
    let url = |p: u32| {
        format!(
            "https://pkgs.example.com/api/v4/projects/{}/packages?page={p}&per_page=1&sort=asc",
            w.private_id
        )
    };
    assert_eq!(
        link,
        format!(
            "<{}>; rel=\"prev\", <{}>; rel=\"next\", <{}>; rel=\"first\", <{}>; rel=\"last\"",
            url(1),
            url(3),
            url(1),
            url(3)
        )
    );
    let body: Value = serde_json::from_slice(
        &http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes(),
    )
    .unwrap();
    assert!(
        body[0]["_links"]["delete_api_path"]
            .as_str()
            .unwrap()
            .starts_with("https://pkgs.example.com/api/v4/projects/")
    );
}

/// A CI job's token that cannot see a private project is told so, as GitLab tells it (403,
/// naming both projects by their own paths); one that can read it lists it.
async fn job_tokens_outside_their_reach(backend: Backend) {
    let w = World::new(backend).await;
    publish(&w, w.private_id, "secret", "1.0", "s.bin").await;
    let expires = depot::domain::Timestamp::now().plus_seconds(3600);
    let (_, stranger_job) = w.app.job_token("stranger", "grp/pub", expires).await;
    let job = [("JOB-TOKEN", stranger_job.as_str())];
    let list = format!("/api/v4/projects/{}/packages", w.private_id);
    let refused = json!({
        "message": "403 Forbidden - Authentication by CI/CD job token not allowed from pub to app."
    });
    w.app.get(&list, &job).await.expect(403, refused.clone());
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let id = ids(&w.app.get(&list, &dev).await.json())[0];
    w.app
        .get(&format!("{list}/{id}"), &job)
        .await
        .expect(403, refused);
    // A missing project stays a plain 404.
    w.app
        .get("/api/v4/projects/424242/packages", &job)
        .await
        .expect(404, json!({"message": "404 Project Not Found"}));
    let (_, member_job) = w.app.job_token("developer", "grp/app", expires).await;
    let member = [("JOB-TOKEN", member_job.as_str())];
    assert_eq!(ids(&w.app.get(&list, &member).await.json()), vec![id]);
}

/// An anonymous DELETE: a public project's package is 403 (seen, not to be changed), a
/// private one's 404 (not seen), as GitLab answers; nothing is deleted.
async fn anonymous_deletes(backend: Backend) {
    let w = World::new(backend).await;
    publish(&w, w.public_id, "open", "1.0", "o.bin").await;
    publish(&w, w.private_id, "closed", "1.0", "c.bin").await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    for (project, status, message) in [
        (w.public_id, 403, "403 Forbidden"),
        (w.private_id, 404, "404 Project Not Found"),
    ] {
        let list = format!("/api/v4/projects/{project}/packages");
        let id = ids(&w.app.get(&list, &dev).await.json())[0];
        w.app
            .send("DELETE", &format!("{list}/{id}"), &[], Vec::new())
            .await
            .expect(status, json!({ "message": message }));
        assert_eq!(ids(&w.app.get(&list, &dev).await.json()), vec![id]);
    }
}

/// A package's pipelines: none (depot runs no pipelines), GitLab's per-page bound of 20, and
/// GitLab's 404 for a package that is not there.
async fn package_pipelines(backend: Backend) {
    let w = World::new(backend).await;
    publish(&w, w.private_id, "my_package", "0.0.1", "file.txt").await;
    let list = format!("/api/v4/projects/{}/packages", w.private_id);
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let id = w.app.get(&list, &dev).await.json()[0]["id"]
        .as_i64()
        .unwrap();
    let pipelines = |q: &str| format!("{list}/{id}/pipelines{q}");
    w.app.get(&pipelines(""), &dev).await.expect(200, json!([]));
    w.app
        .get(&pipelines("?per_page=20&page=2"), &dev)
        .await
        .expect(200, json!([]));
    for bad in ["-2", "21", "0"] {
        w.app
            .get(&pipelines(&format!("?per_page={bad}")), &dev)
            .await
            .expect(
                400,
                json!({"error": "per_page does not have a valid value"}),
            );
    }
    w.app
        .get(&format!("{list}/{}/pipelines", id + 1000), &dev)
        .await
        .expect(404, json!({"message": "404 Not found"}));
    w.app
        .get(&format!("{list}/x/pipelines"), &dev)
        .await
        .expect(400, json!({"error": "package_id is invalid"}));
    // Who may not see the project learns nothing more here.
    let stranger = [("PRIVATE-TOKEN", w.token("stranger"))];
    assert_eq!(w.app.get(&pipelines(""), &stranger).await.status, 404);
}

on_every_backend!(
    job_tokens_outside_their_reach,
    anonymous_deletes,
    package_pipelines,
    lists_page_through_link_headers,
    package_entities_match_gitlab,
    filters_orders_and_errors,
    who_may_list,
    group_lists,
    package_files,
    deletes_vanish_at_once_and_purge_later,
    links_use_the_configured_public_url,
);

/// One purge pass: the packages and files it purged and the stored bodies (blobs, or small
/// files' records) that went with them; the blobs it reports deleted are those that went.
async fn purge(w: &World) -> (usize, usize, usize) {
    let (bodies, blobs) = (w.app.stored_bodies().await, w.app.blob_count().await);
    let purged = w.app.registry.purge(100).await.unwrap();
    assert_eq!(
        purged.blobs,
        blobs - w.app.blob_count().await,
        "blobs purged"
    );
    (
        purged.packages,
        purged.files,
        bodies - w.app.stored_bodies().await,
    )
}
