//! HTTP conformance of the generic packages API, driven through the router:
//! every response row, every credential form, the role tables, validation and semantics.

use crate::support::Backend;
use depot::store::BlobLocation;
use depot::wire::PackageFileRecord;

use crate::support::{PACKAGE_FILE_FIELDS, World, basic, sha256_hex};
use depot::Limits;
use depot::domain::{PackageStatus, Scope, Timestamp};
use serde_json::json;

fn created() -> serde_json::Value {
    json!({"message": "201 Created"})
}

fn unauthorized() -> serde_json::Value {
    json!({"message": "401 Unauthorized"})
}

const FORBIDDEN: &str = "403 Forbidden";

async fn publish_and_download_with_every_header(backend: Backend) {
    let w = World::new(backend).await;
    let url = w.url(w.private_id, "my_package/0.0.1/file.txt");
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    w.app
        .put(&url, &dev, b"hello depot\n")
        .await
        .expect(201, created());

    let a = w.app.get(&url, &dev).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, b"hello depot\n");
    let sha = sha256_hex(b"hello depot\n");
    assert_eq!(a.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        a.header("content-disposition"),
        Some("attachment; filename=\"file.txt\"; filename*=UTF-8''file.txt")
    );
    assert_eq!(a.header("x-checksum-sha256"), Some(sha.as_str()));
    assert_eq!(a.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(a.header("content-length"), Some("12"));
    assert_eq!(a.header("accept-ranges"), Some("bytes"));
}

async fn select_package_file_returns_the_full_record(backend: Backend) {
    let w = World::new(backend).await;
    let url = w.url(
        w.private_id,
        "my_package/0.0.1/file.txt?select=package_file",
    );
    let a = w
        .app
        .put(&url, &[("PRIVATE-TOKEN", w.token("developer"))], b"")
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let record: PackageFileRecord = a.wire();
    assert_eq!(record.file_name, "file.txt");
    let r = a.json();
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, PACKAGE_FILE_FIELDS);
    assert!(r["id"].is_i64() && r["package_id"].is_i64());
    assert_eq!(r["size"], 0);
    assert_eq!(r["file_md5"], json!(null));
    assert_eq!(r["file_sha1"], json!(null));
    assert_eq!(r["file_name"], "file.txt");
    // GitLab's codes: 1 local storage, 2 object storage.
    let file_store = match w.app.registry.blob_location() {
        BlobLocation::Local => 1,
        BlobLocation::ObjectStorage => 2,
    };
    assert_eq!(r["file_store"], file_store);
    assert_eq!(
        r["file_sha256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(
        r["file"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/my_package/0.0.1/file.txt")
    );
    let created_at = r["created_at"].as_str().unwrap();
    assert_eq!(
        created_at.len(),
        "2021-10-12T12:05:23.387Z".len(),
        "{created_at}"
    );
    assert!(created_at.ends_with('Z') && created_at.as_bytes()[19] == b'.');
}

async fn file_size_limit(backend: Backend) {
    let w = World::with_limits(backend, Limits::at_most(10)).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let too_large = json!({"message": "400 Bad request - File is too large"});
    w.app
        .put(&w.url(w.private_id, "p/1/nine"), &dev, &[0; 9])
        .await
        .expect(201, created());
    w.app
        .put(&w.url(w.private_id, "p/1/ten"), &dev, &[0; 10])
        .await
        .expect(400, too_large.clone());
    w.app
        .put(&w.url(w.private_id, "p/1/big"), &dev, &[0; 1000])
        .await
        .expect(400, too_large.clone());
    // Without a Content-Length the limit is enforced while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(vec![1; 6]), Ok(vec![2; 6])];
    let body = axum::body::Body::from_stream(futures::stream::iter(chunks));
    w.app
        .send("PUT", &w.url(w.private_id, "p/1/chunked"), &dev, body)
        .await
        .expect(400, too_large);
    assert_eq!(
        w.app.stored_bodies().await,
        1,
        "only the accepted file is stored"
    );
    assert_eq!(w.app.temp_count().await, 0);
    w.app
        .get(&w.url(w.private_id, "p/1/ten"), &dev)
        .await
        .expect(404, json!({"message": "404 Not found"}));

    let unlimited = World::with_limits(backend, Limits::unlimited()).await;
    let dev = [("PRIVATE-TOKEN", unlimited.token("developer"))];
    unlimited
        .app
        .put(
            &unlimited.url(unlimited.private_id, "p/1/f"),
            &dev,
            &[7; 100_000],
        )
        .await
        .expect(201, created());
}

async fn validation_errors_use_gitlabs_wording(backend: Backend) {
    let w = World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let p = w.private_id;
    let cases = [
        (w.url(p, "bad%20name/1.0/f.txt"), "package_name is invalid"),
        (w.url(p, "pkg/..1.2.3/f.txt"), "package_version is invalid"),
        (w.url(p, "pkg/1.2.bananas/~f.txt"), "file_name is invalid"),
        (w.url(p, "pkg/1.0/f.txt@"), "file_name is invalid"),
        (
            w.url(p, "pkg/1.0/%252e%252e"),
            "file_name is invalid, file_name should be a valid file path",
        ),
        (
            w.url(p, "pkg/%2e%2e%2f1.2.3/f.txt"),
            "package_version is invalid",
        ),
        (
            w.url(p, "pkg/1.0/a/../f.txt"),
            "path should be a valid file path",
        ),
        (
            w.url(p, "pkg/1.0/f.txt?path=../x"),
            "path should be a valid file path",
        ),
        // A version or a name ending in `/../`, sent raw (GitLab's request specs).
        (
            w.url(p, "mypackage/1.2.3-4/../..//myfile.tar.gz"),
            "path should be a valid file path",
        ),
        (
            w.url(p, "my-package/..//0.0.1/myfile.tar.gz"),
            "package_version is invalid, path should be a valid file path",
        ),
        // Control characters in a directory, raw or by the path parameter.
        (
            w.url(p, "pkg/1.0/a%00b/f.txt"),
            "path should be a valid file path",
        ),
        (
            w.url(p, "pkg/1.0/f.txt?path=a%09b"),
            "path should be a valid file path",
        ),
        (
            w.url(p, &format!("{}/1.0/f.txt", "n".repeat(256))),
            "package_name is too long (maximum is 255 characters)",
        ),
        (
            w.url(p, &format!("pkg/1.0/{}", "f".repeat(256))),
            "file_name is too long (maximum is 255 characters)",
        ),
        (
            w.url(p, "pkg/1.0/f.txt?status=gone"),
            "status does not have a valid value",
        ),
        (
            w.url(p, "pkg/1.0/f.txt?select=everything"),
            "select does not have a valid value",
        ),
        (
            w.url(p, "bad!/..x/f~?status=x"),
            "package_name is invalid, package_version is invalid, file_name is invalid, status does not have a valid value",
        ),
    ];
    for (url, message) in cases {
        w.app
            .put(&url, &dev, b"x")
            .await
            .expect(400, json!({"error": message}));
    }
    // An empty directory without a traversal is no route at all.
    w.app
        .put(&w.url(p, "pkg/1.0//f.txt"), &dev, b"x")
        .await
        .expect(404, json!({"error": "404 Not Found"}));
    // Downloads validate too, before authentication.
    w.app
        .get(&w.url(p, "bad%20name/1.0/f.txt"), &[])
        .await
        .expect(400, json!({"error": "package_name is invalid"}));
    assert_eq!(w.app.stored_bodies().await, 0);
}

async fn order_of_checks(backend: Backend) {
    let w = World::new(backend).await;
    // PUT without credentials: 401 before validation and before the project lookup.
    let bad = w.url(999, "bad%20name/1.0/f.txt");
    w.app.put(&bad, &[], b"x").await.expect(401, unauthorized());
    // With credentials: validation (400) before the project lookup (404).
    w.app
        .put(&bad, &[("PRIVATE-TOKEN", w.token("developer"))], b"x")
        .await
        .expect(400, json!({"error": "package_name is invalid"}));
    w.app
        .put(
            &w.url(999, "ok/1.0/f.txt"),
            &[("PRIVATE-TOKEN", w.token("developer"))],
            b"x",
        )
        .await
        .expect(404, json!({"message": "404 Project Not Found"}));
    // A bad token on PUT is refused before validation.
    w.app
        .put(&bad, &[("PRIVATE-TOKEN", "dpat-nope")], b"x")
        .await
        .expect(401, unauthorized());
    // GET: validation first, then authentication.
    w.app
        .get(&bad, &[("PRIVATE-TOKEN", "dpat-nope")])
        .await
        .expect(400, json!({"error": "package_name is invalid"}));
    w.app
        .get(
            &w.url(w.public_id, "ok/1.0/f.txt"),
            &[("PRIVATE-TOKEN", "dpat-nope")],
        )
        .await
        .expect(401, unauthorized());
}

async fn upload_role_table(backend: Backend) {
    let w = World::new(backend).await;
    let forbidden = json!({"message": FORBIDDEN});
    let not_found = json!({"message": "404 Project Not Found"});
    let cases = [
        ("guest", w.private_id, 403, forbidden.clone()),
        ("reporter", w.private_id, 403, forbidden.clone()),
        ("developer", w.private_id, 201, created()),
        ("maintainer", w.private_id, 201, created()),
        ("owner", w.private_id, 201, created()),
        ("stranger", w.public_id, 403, forbidden.clone()),
        ("stranger", w.private_id, 404, not_found.clone()),
        ("developer", w.public_id, 201, created()),
    ];
    for (user, project, status, body) in cases {
        let url = w.url(project, &format!("pkg/1.0/{user}.bin"));
        let a = w
            .app
            .put(&url, &[("PRIVATE-TOKEN", w.token(user))], b"data")
            .await;
        assert_eq!(
            a.status.as_u16(),
            status,
            "{user} on {project}: {}",
            a.text()
        );
        assert_eq!(a.json(), body, "{user} on {project}");
    }
    w.app
        .put(&w.url(w.public_id, "pkg/1.0/anon.bin"), &[], b"data")
        .await
        .expect(401, unauthorized());
}

async fn download_role_table(backend: Backend) {
    let w = World::new(backend).await;
    for project in [w.private_id, w.public_id] {
        let url = w.url(project, "pkg/1.0/f.bin");
        w.app
            .put(&url, &[("PRIVATE-TOKEN", w.token("developer"))], b"data")
            .await
            .expect(201, created());
    }
    let private = w.url(w.private_id, "pkg/1.0/f.bin");
    let public = w.url(w.public_id, "pkg/1.0/f.bin");
    for user in ["guest", "reporter", "developer", "maintainer", "owner"] {
        let a = w
            .app
            .get(&private, &[("PRIVATE-TOKEN", w.token(user))])
            .await;
        assert_eq!(
            (a.status.as_u16(), a.body.as_slice()),
            (200, &b"data"[..]),
            "{user}"
        );
    }
    w.app
        .get(&private, &[("PRIVATE-TOKEN", w.token("stranger"))])
        .await
        .expect(404, json!({"message": "404 Project Not Found"}));
    w.app.get(&private, &[]).await.expect(401, unauthorized());
    for headers in [vec![], vec![("PRIVATE-TOKEN", w.token("stranger"))]] {
        let a = w.app.get(&public, &headers).await;
        assert_eq!((a.status.as_u16(), a.body.as_slice()), (200, &b"data"[..]));
    }
}

async fn missing_package_or_file_is_404(backend: Backend) {
    let w = World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let not_found = json!({"message": "404 Not found"});
    w.app
        .get(&w.url(w.private_id, "nothing/1.0/f.txt"), &dev)
        .await
        .expect(404, not_found.clone());
    w.app
        .put(&w.url(w.private_id, "pkg/1.0/f.txt"), &dev, b"x")
        .await
        .expect(201, created());
    w.app
        .get(&w.url(w.private_id, "pkg/1.0/other.txt"), &dev)
        .await
        .expect(404, not_found.clone());
    w.app
        .get(&w.url(w.private_id, "pkg/2.0/f.txt"), &dev)
        .await
        .expect(404, not_found);
    w.app
        .get("/api/v4/projects/1/nothing-here", &dev)
        .await
        .expect(404, json!({"error": "404 Not Found"}));
    w.app
        .get("/api/v4/unknown", &[])
        .await
        .expect(404, json!({"error": "404 Not Found"}));
    // A name alone is no route (a name and version is depot's manifest: `manifests`).
    w.app
        .get(&w.url(w.private_id, "pkg"), &dev)
        .await
        .expect(404, json!({"error": "404 Not Found"}));
    // A bare name is not a project path.
    w.app
        .get(&w.url("app", "pkg/1.0/f.txt"), &dev)
        .await
        .expect(404, json!({"message": "404 Project Not Found"}));
}

async fn every_credential_form(backend: Backend) {
    let w = World::new(backend).await;
    let app = &w.app;
    let url = |n: &str| w.url(w.private_id, &format!("pkg/1.0/{n}"));
    let pat = w.token("developer").to_string();
    let deploy_rw = app
        .deploy_token(Some("grp/app"), None, &[Scope::WritePackageRegistry])
        .await;
    let (_, job) = app
        .job_token("developer", "grp/app", Timestamp::now().plus_seconds(3600))
        .await;

    let uploads: Vec<(String, Vec<(&str, String)>)> = vec![
        (url("a"), vec![("PRIVATE-TOKEN", pat.clone())]),
        (format!("{}?private_token={pat}", url("b")), vec![]),
        (url("c"), vec![("Authorization", format!("Bearer {pat}"))]),
        (url("d"), vec![("Authorization", basic("anyone", &pat))]),
        (url("e"), vec![("DEPLOY-TOKEN", deploy_rw.clone())]),
        (
            url("f"),
            vec![("Authorization", basic("deployer", &deploy_rw))],
        ),
        (url("g"), vec![("JOB-TOKEN", job.clone())]),
        (format!("{}?job_token={job}", url("h")), vec![]),
        (url("i"), vec![("Authorization", format!("Bearer {job}"))]),
    ];
    for (u, headers) in &uploads {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.put(u, &h, b"x").await.expect(201, created());
        let a = app.get(u, &h).await;
        assert_eq!(
            (a.status.as_u16(), a.body.as_slice()),
            (200, &b"x"[..]),
            "download via {u} {:?}",
            headers.first().map(|h| h.0)
        );
    }
    // gitlab-ci-token Basic: downloads only.
    let ci_basic = basic("gitlab-ci-token", &job);
    let a = app.get(&url("a"), &[("Authorization", &ci_basic)]).await;
    assert_eq!(a.status, 200);
    app.put(&url("z"), &[("Authorization", &ci_basic)], b"x")
        .await
        .expect(401, unauthorized());
    // A job token under another Basic user is not accepted.
    app.get(&url("a"), &[("Authorization", &basic("someone", &job))])
        .await
        .expect(401, unauthorized());
}

async fn scopes(backend: Backend) {
    let w = World::new(backend).await;
    let app = &w.app;
    let dev_url = w.url(w.private_id, "pkg/1.0/f");
    app.put(&dev_url, &[("PRIVATE-TOKEN", w.token("developer"))], b"x")
        .await
        .expect(201, created());
    let (_, read_api) = app.pat("developer", &[Scope::ReadApi], None).await;
    assert_eq!(
        app.get(&dev_url, &[("PRIVATE-TOKEN", &read_api)])
            .await
            .status,
        200
    );
    app.put(&dev_url, &[("PRIVATE-TOKEN", &read_api)], b"x").await.expect(
        403,
        json!({"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.", "scope": "api"}),
    );
    let read = app
        .deploy_token(Some("grp/app"), None, &[Scope::ReadPackageRegistry])
        .await;
    assert_eq!(
        app.get(&dev_url, &[("DEPLOY-TOKEN", &read)]).await.status,
        200
    );
    app.put(&dev_url, &[("DEPLOY-TOKEN", &read)], b"x")
        .await
        .expect(403, json!({"message": FORBIDDEN}));
    // A group deploy token is valid for the group's projects.
    let group_rw = app
        .deploy_token(None, Some("grp"), &[Scope::WritePackageRegistry])
        .await;
    app.put(
        &w.url(w.private_id, "pkg/1.0/g"),
        &[("DEPLOY-TOKEN", &group_rw)],
        b"x",
    )
    .await
    .expect(201, created());
    // A deploy token of another project cannot see a private project.
    app.group("other").await;
    app.project("other/thing", false).await;
    let foreign = app
        .deploy_token(Some("other/thing"), None, &[Scope::WritePackageRegistry])
        .await;
    app.get(&dev_url, &[("DEPLOY-TOKEN", &foreign)])
        .await
        .expect(404, json!({"message": "404 Project Not Found"}));
}

async fn unknown_expired_and_revoked_tokens(backend: Backend) {
    let w = World::new(backend).await;
    let app = &w.app;
    let public = w.url(w.public_id, "pkg/1.0/f");
    app.put(&public, &[("PRIVATE-TOKEN", w.token("developer"))], b"x")
        .await
        .expect(201, created());
    let past = Timestamp::now().plus_seconds(-60);
    let (_, expired) = app.pat("developer", &[Scope::Api], Some(past)).await;
    let (revoked_id, revoked) = app.pat("developer", &[Scope::Api], None).await;
    app.admin.revoke_token(revoked_id).await.unwrap();
    let (_, expired_job) = app.job_token("developer", "grp/pub", past).await;
    let (job_id, revoked_job) = app
        .job_token("developer", "grp/pub", Timestamp::now().plus_seconds(600))
        .await;
    app.admin.revoke_token(job_id).await.unwrap();

    let expired_body = json!({"error": "invalid_token", "error_description": "Token is expired. You can either do re-authorization or token refresh."});
    let revoked_body = json!({"error": "invalid_token", "error_description": "Token was revoked. You have to re-authorize from the user."});
    // Even on a public project, where anonymous reads are fine.
    app.get(&public, &[("PRIVATE-TOKEN", "dpat-unknown")])
        .await
        .expect(401, unauthorized());
    app.get(&public, &[("PRIVATE-TOKEN", &expired)])
        .await
        .expect(401, expired_body.clone());
    app.get(&public, &[("Authorization", &format!("Bearer {expired}"))])
        .await
        .expect(401, expired_body.clone());
    app.put(&public, &[("PRIVATE-TOKEN", &expired)], b"x")
        .await
        .expect(401, expired_body);
    app.get(&public, &[("PRIVATE-TOKEN", &revoked)])
        .await
        .expect(401, revoked_body.clone());
    app.put(&public, &[("PRIVATE-TOKEN", &revoked)], b"x")
        .await
        .expect(401, revoked_body);
    app.get(&public, &[("JOB-TOKEN", "djt-unknown")])
        .await
        .expect(401, unauthorized());
    app.get(&public, &[("JOB-TOKEN", &expired_job)])
        .await
        .expect(401, unauthorized());
    app.get(&public, &[("JOB-TOKEN", &revoked_job)])
        .await
        .expect(401, unauthorized());
    app.get(&public, &[("Authorization", "Bearer nothing")])
        .await
        .expect(401, unauthorized());
    // Unknown deploy tokens and bad Basic pairs are anonymous: fine to read a public project...
    assert_eq!(
        app.get(&public, &[("DEPLOY-TOKEN", "ddt-unknown")])
            .await
            .status,
        200
    );
    assert_eq!(
        app.get(&public, &[("Authorization", &basic("u", "wrong"))])
            .await
            .status,
        200
    );
    // ...but anonymous cannot write, and Basic answers carry the challenge.
    let a = app
        .put(&public, &[("Authorization", &basic("u", "wrong"))], b"x")
        .await;
    a.expect(401, unauthorized());
    assert_eq!(
        a.header("www-authenticate"),
        Some("Basic realm=\"GitLab Packages Registry\"")
    );
    app.put(&public, &[("DEPLOY-TOKEN", "ddt-unknown")], b"x")
        .await
        .expect(401, unauthorized());
    let private = w.url(w.private_id, "pkg/1.0/f");
    app.get(&private, &[("Authorization", &basic("u", "wrong"))])
        .await
        .expect(401, unauthorized());
}

async fn subgroup_projects_inherit_group_membership(backend: Backend) {
    let w = World::new(backend).await;
    w.app.group("grp/sub").await;
    let id = w.app.project("grp/sub/deep", false).await;
    let url = w.url(id, "pkg/1.0/f");
    w.app
        .put(&url, &[("PRIVATE-TOKEN", w.token("developer"))], b"x")
        .await
        .expect(201, created());
    w.app
        .put(&url, &[("PRIVATE-TOKEN", w.token("reporter"))], b"x")
        .await
        .expect(403, json!({"message": FORBIDDEN}));
    assert_eq!(
        w.app
            .get(&url, &[("PRIVATE-TOKEN", w.token("guest"))])
            .await
            .status,
        200
    );
}

async fn project_id_forms_and_go_gitlab_escapes(backend: Backend) {
    let w = World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    w.app
        .put(&w.url("grp%2Fapp", "pkg/1.0/a.txt"), &dev, b"a")
        .await
        .expect(201, created());
    // API Gateway may hand the path over with %2F decoded.
    w.app
        .put(&w.url("grp/app", "pkg/1.0/b.txt"), &dev, b"b")
        .await
        .expect(201, created());
    // go-gitlab escapes every dot.
    w.app
        .put(&w.url("grp%2Fapp", "pkg%2Ego/1%2E0/c%2Etxt"), &dev, b"c")
        .await
        .expect(201, created());
    for (name, body) in [("a.txt", "a"), ("b.txt", "b")] {
        for id in [
            w.private_id.to_string(),
            "grp%2Fapp".into(),
            "grp%2fapp".into(),
            "grp/app".into(),
        ] {
            let a = w
                .app
                .get(&w.url(&id, &format!("pkg/1.0/{name}")), &dev)
                .await;
            assert_eq!(
                (a.status.as_u16(), a.text()),
                (200, body.to_string()),
                "{id} {name}"
            );
        }
    }
    assert_eq!(
        w.app
            .get(&w.url(w.private_id, "pkg.go/1.0/c.txt"), &dev)
            .await
            .text(),
        "c"
    );
}

async fn directories_before_the_file_name(backend: Backend) {
    let w = World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let a = w
        .app
        .put(
            &w.url(
                w.private_id,
                "tool/1.0.0/linux/amd64/tool.tar.gz?select=package_file",
            ),
            &dev,
            b"bin",
        )
        .await;
    assert_eq!(a.json()["file_name"], "linux%2Famd64%2Ftool.tar.gz");
    let got = w
        .app
        .get(
            &w.url(w.private_id, "tool/1.0.0/linux/amd64/tool.tar.gz"),
            &dev,
        )
        .await;
    assert_eq!(got.text(), "bin");
    assert_eq!(
        got.header("content-disposition"),
        Some(
            "attachment; filename=\"linux%252Famd64%252Ftool.tar.gz\"; filename*=UTF-8''linux%252Famd64%252Ftool.tar.gz"
        )
    );
    // The `path` parameter does the same.
    let via_param = w
        .app
        .get(
            &w.url(w.private_id, "tool/1.0.0/tool.tar.gz?path=linux/amd64"),
            &dev,
        )
        .await;
    assert_eq!(via_param.text(), "bin");
    // The bare file name is a different file.
    assert_eq!(
        w.app
            .get(&w.url(w.private_id, "tool/1.0.0/tool.tar.gz"), &dev)
            .await
            .status,
        404
    );
}

async fn duplicates_default_allowed_newest_wins(backend: Backend) {
    let w = World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let url = w.url(w.private_id, "pkg/1.0/f.txt");
    w.app.put(&url, &dev, b"first").await.expect(201, created());
    w.app
        .put(&url, &dev, b"second")
        .await
        .expect(201, created());
    assert_eq!(w.app.get(&url, &dev).await.text(), "second");
    assert_eq!(w.app.stored_bodies().await, 2, "both files are kept");
}

async fn duplicate_settings_and_exception_regex(backend: Backend) {
    let w = &World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let refused = json!({"message": "400 Bad request - Duplicate package is not allowed"});
    let put = |name: &str, version: &str| {
        let url = w.url(w.private_id, &format!("{name}/{version}/f.txt"));
        async move {
            w.app
                .put(&url, &[("PRIVATE-TOKEN", w.token("developer"))], b"x")
                .await
        }
    };
    // Toggle on, regex lists the exceptions that may NOT be duplicated.
    w.app
        .admin
        .set_settings("grp", Some(true), Some("foo-.*".into()))
        .await
        .unwrap();
    put("foo-bar", "1.0").await.expect(201, created());
    put("foo-bar", "1.0").await.expect(400, refused.clone());
    put("bar", "1.0").await.expect(201, created());
    put("bar", "1.0").await.expect(201, created());
    // Toggle off, regex lists those that MAY be duplicated (tested against the version too).
    w.app
        .admin
        .set_settings("grp", Some(false), Some(".*-SNAPSHOT".into()))
        .await
        .unwrap();
    put("lib", "2.0-SNAPSHOT").await.expect(201, created());
    put("lib", "2.0-SNAPSHOT").await.expect(201, created());
    put("lib", "2.0").await.expect(201, created());
    put("lib", "2.0").await.expect(400, refused.clone());
    // A different file name in the same package is not a duplicate.
    w.app
        .put(&w.url(w.private_id, "lib/2.0/other.txt"), &dev, b"x")
        .await
        .expect(201, created());
    // Refused uploads leave no blob behind: 7 accepted files, 7 blobs.
    assert_eq!(w.app.stored_bodies().await, 7);
    assert_eq!(w.app.temp_count().await, 0);
}

async fn hidden_status_and_status_changes(backend: Backend) {
    let w = World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    w.app
        .put(
            &w.url(w.private_id, "pkg/1.0/f.txt?status=hidden"),
            &dev,
            b"h",
        )
        .await
        .expect(201, created());
    let lookup = || async {
        w.app
            .newest(w.private_id, "pkg", "1.0", "f.txt")
            .await
            .unwrap()
            .0
    };
    assert_eq!(lookup().await.status, PackageStatus::Hidden);
    // Hidden packages still download.
    assert_eq!(
        w.app
            .get(&w.url(w.private_id, "pkg/1.0/f.txt"), &dev)
            .await
            .text(),
        "h"
    );
    // An upload without status keeps it; one with status changes it.
    w.app
        .put(&w.url(w.private_id, "pkg/1.0/g.txt"), &dev, b"g")
        .await
        .expect(201, created());
    assert_eq!(lookup().await.status, PackageStatus::Hidden);
    w.app
        .put(
            &w.url(w.private_id, "pkg/1.0/g.txt?status=default"),
            &dev,
            b"g",
        )
        .await
        .expect(201, created());
    assert_eq!(lookup().await.status, PackageStatus::Default);
}

async fn downloads_set_last_downloaded_at(backend: Backend) {
    let w = World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let url = w.url(w.private_id, "pkg/1.0/f.txt");
    w.app.put(&url, &dev, b"x").await.expect(201, created());
    let package = || async {
        w.app
            .newest(w.private_id, "pkg", "1.0", "f.txt")
            .await
            .unwrap()
            .0
    };
    assert_eq!(package().await.last_downloaded_at, None);
    let before = Timestamp::now();
    w.app
        .send("HEAD", &url, &dev, axum::body::Body::empty())
        .await;
    assert_eq!(
        package().await.last_downloaded_at,
        None,
        "HEAD is not a download"
    );
    w.app.get(&url, &dev).await;
    let at = package()
        .await
        .last_downloaded_at
        .expect("set by the download");
    assert!(at >= before && at <= Timestamp::now());
    // Kept to the minute: a download right after does not write it again.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(w.app.get(&url, &dev).await.status, 200);
    assert_eq!(package().await.last_downloaded_at, Some(at));
}

async fn head_range_and_etag(backend: Backend) {
    let w = &World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let url = w.url(w.private_id, "pkg/1.0/f.txt");
    w.app
        .put(&url, &dev, b"0123456789")
        .await
        .expect(201, created());

    let head = w
        .app
        .send("HEAD", &url, &dev, axum::body::Body::empty())
        .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("10"));
    assert_eq!(
        head.header("x-checksum-sha256"),
        Some(sha256_hex(b"0123456789").as_str())
    );

    let range = |spec: &'static str| {
        let url = url.clone();
        async move {
            w.app
                .get(
                    &url,
                    &[("PRIVATE-TOKEN", w.token("developer")), ("Range", spec)],
                )
                .await
        }
    };
    let a = range("bytes=2-5").await;
    assert_eq!((a.status.as_u16(), a.text()), (206, "2345".to_string()));
    assert_eq!(a.header("content-range"), Some("bytes 2-5/10"));
    assert_eq!(a.header("content-length"), Some("4"));
    assert_eq!(range("bytes=7-").await.text(), "789");
    assert_eq!(range("bytes=-2").await.text(), "89");
    let bad = range("bytes=10-").await;
    assert_eq!(bad.status, 416);
    assert_eq!(bad.header("content-range"), Some("bytes */10"));

    let etag = w
        .app
        .get(&url, &dev)
        .await
        .header("etag")
        .unwrap()
        .to_string();
    let cached = w
        .app
        .get(
            &url,
            &[
                ("PRIVATE-TOKEN", w.token("developer")),
                ("If-None-Match", &etag),
            ],
        )
        .await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    let stale = w
        .app
        .get(
            &url,
            &[
                ("PRIVATE-TOKEN", w.token("developer")),
                ("If-None-Match", "\"nope\""),
            ],
        )
        .await;
    assert_eq!(stale.status, 200);
}

async fn empty_body_is_a_zero_byte_file(backend: Backend) {
    let w = World::new(backend).await;
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    let url = w.url(w.private_id, "pkg/1.0/empty");
    w.app.put(&url, &dev, b"").await.expect(201, created());
    let a = w.app.get(&url, &dev).await;
    assert_eq!((a.status.as_u16(), a.body.len()), (200, 0));
    assert_eq!(
        a.header("x-checksum-sha256"),
        Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
}

on_every_backend!(
    publish_and_download_with_every_header,
    select_package_file_returns_the_full_record,
    file_size_limit,
    validation_errors_use_gitlabs_wording,
    order_of_checks,
    upload_role_table,
    download_role_table,
    missing_package_or_file_is_404,
    every_credential_form,
    scopes,
    unknown_expired_and_revoked_tokens,
    subgroup_projects_inherit_group_membership,
    project_id_forms_and_go_gitlab_escapes,
    directories_before_the_file_name,
    duplicates_default_allowed_newest_wins,
    duplicate_settings_and_exception_regex,
    hidden_status_and_status_changes,
    downloads_set_last_downloaded_at,
    head_range_and_etag,
    empty_body_is_a_zero_byte_file,
);
