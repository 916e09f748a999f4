//! Package protection rules, GitLab's API and semantics, on both stores: Maintainers manage
//! them with GitLab's errors; a push or delete by someone below a rule's level is 403 with
//! GitLab's message and changes nothing, across roles, rule levels, actions and token kinds.

use crate::support::{Backend, World};
use depot::domain::{Scope, Timestamp};
use serde_json::{Value, json};

fn rules(w: &World) -> String {
    format!(
        "/api/v4/projects/{}/packages/protection/rules",
        w.private_id
    )
}

async fn send_json(
    w: &World,
    method: &str,
    uri: &str,
    token: &str,
    body: Value,
) -> crate::support::Answer {
    w.app
        .send(
            method,
            uri,
            &[
                ("PRIVATE-TOKEN", token),
                ("Content-Type", "application/json"),
            ],
            body.to_string().into_bytes(),
        )
        .await
}

async fn maintainers_manage_rules(backend: Backend) {
    let w = World::new(backend).await;
    let maintainer = w.token("maintainer");
    let made = send_json(
        &w,
        "POST",
        &rules(&w),
        maintainer,
        json!({
            "package_name_pattern": "tool-*", "package_type": "generic",
            "minimum_access_level_for_push": "maintainer"
        }),
    )
    .await;
    assert_eq!(made.status.as_u16(), 201, "{}", made.text());
    let rule = made.json();
    let id = rule["id"].as_i64().unwrap();
    assert_eq!(
        rule,
        json!({
            "id": id, "project_id": w.private_id, "package_name_pattern": "tool-*",
            "package_type": "generic", "minimum_access_level_for_delete": null,
            "minimum_access_level_for_push": "maintainer"
        })
    );
    let keys: Vec<&str> = rule
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "project_id",
            "package_name_pattern",
            "package_type",
            "minimum_access_level_for_delete",
            "minimum_access_level_for_push"
        ]
    );
    let one = format!("{}/{id}", rules(&w));
    let changed = send_json(
        &w,
        "PATCH",
        &one,
        maintainer,
        json!({
            "minimum_access_level_for_delete": "owner", "minimum_access_level_for_push": null
        }),
    )
    .await;
    assert_eq!(changed.status.as_u16(), 200, "{}", changed.text());
    assert_eq!(changed.json()["minimum_access_level_for_delete"], "owner");
    assert_eq!(changed.json()["minimum_access_level_for_push"], Value::Null);
    let listed = w
        .app
        .get(&rules(&w), &[("PRIVATE-TOKEN", maintainer)])
        .await;
    assert_eq!(listed.json(), json!([changed.json()]));
    // Who may not: a Developer (403), nobody signed in (401), a stranger (404).
    for (token, status) in [(w.token("developer"), 403), (w.token("stranger"), 404)] {
        assert_eq!(
            w.app
                .get(&rules(&w), &[("PRIVATE-TOKEN", token)])
                .await
                .status
                .as_u16(),
            status
        );
        let refused = send_json(&w, "DELETE", &one, token, json!({})).await;
        assert_eq!(refused.status.as_u16(), status);
    }
    assert_eq!(w.app.get(&rules(&w), &[]).await.status.as_u16(), 404);
    let public = format!("/api/v4/projects/{}/packages/protection/rules", w.public_id);
    assert_eq!(w.app.get(&public, &[]).await.status.as_u16(), 401);
    let gone = w
        .app
        .send(
            "DELETE",
            &one,
            &[("PRIVATE-TOKEN", maintainer)],
            Vec::<u8>::new(),
        )
        .await;
    assert_eq!(gone.status.as_u16(), 204);
    let again = w
        .app
        .send(
            "DELETE",
            &one,
            &[("PRIVATE-TOKEN", maintainer)],
            Vec::<u8>::new(),
        )
        .await;
    assert_eq!(
        (again.status.as_u16(), again.json()),
        (404, json!({"message": "404 Not found"}))
    );
}

async fn bad_rules_are_refused_as_gitlab_refuses_them(backend: Backend) {
    let w = World::new(backend).await;
    let maintainer = w.token("maintainer");
    let ok = json!({"package_name_pattern": "p", "package_type": "generic",
        "minimum_access_level_for_push": "owner"});
    assert_eq!(
        send_json(&w, "POST", &rules(&w), maintainer, ok.clone())
            .await
            .status
            .as_u16(),
        201
    );
    let with = |changes: Value| {
        let mut body = ok.clone();
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(Value, u16, Value)> = vec![
        (
            json!({}),
            400,
            json!({"error": "package_name_pattern is missing, package_type is missing, minimum_access_level_for_push, minimum_access_level_for_delete are missing, at least one parameter must be provided"}),
        ),
        (
            with(json!({"package_type": "rubygems"})),
            400,
            json!({"error": "package_type does not have a valid value"}),
        ),
        (
            with(json!({"minimum_access_level_for_push": "developer"})),
            400,
            json!({"error": "minimum_access_level_for_push does not have a valid value"}),
        ),
        (
            with(json!({"minimum_access_level_for_delete": "maintainer"})),
            400,
            json!({"error": "minimum_access_level_for_delete does not have a valid value"}),
        ),
        (
            with(json!({"colour": "red"})),
            400,
            json!({"error": "colour is not a known field"}),
        ),
        (
            with(json!({"minimum_access_level_for_push": null})),
            422,
            json!({"message": {"error": ["A rule must have at least a minimum access role for push or delete."]}}),
        ),
        (
            ok.clone(),
            422,
            json!({"message": {"error": ["Package name pattern has already been taken"]}}),
        ),
        (
            with(json!({"package_name_pattern": "bad/name"})),
            422,
            json!({"message": {"error": ["Package name pattern should be a valid generic package name with optional wildcard characters."]}}),
        ),
        (
            with(json!({"package_name_pattern": "x".repeat(256)})),
            422,
            json!({"message": {"error": ["Package name pattern is too long (maximum is 255 characters)"]}}),
        ),
        (
            with(json!({"package_name_pattern": ""})),
            422,
            json!({"message": {"error": ["Package name pattern can't be blank"]}}),
        ),
    ];
    for (body, status, answer) in cases {
        let refused = send_json(&w, "POST", &rules(&w), maintainer, body.clone()).await;
        assert_eq!(
            (refused.status.as_u16(), refused.json()),
            (status, answer),
            "{body}"
        );
    }
    // Nothing of them was kept; an unknown or malformed id.
    let listed = w
        .app
        .get(&rules(&w), &[("PRIVATE-TOKEN", maintainer)])
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let patch = send_json(
        &w,
        "PATCH",
        &format!("{}/999999", rules(&w)),
        maintainer,
        json!({}),
    )
    .await;
    assert_eq!(
        (patch.status.as_u16(), patch.json()),
        (404, json!({"message": "404 Not found"}))
    );
    let bad = send_json(
        &w,
        "PATCH",
        &format!("{}/x", rules(&w)),
        maintainer,
        json!({}),
    )
    .await;
    assert_eq!(
        bad.json(),
        json!({"error": "package_protection_rule_id is invalid"})
    );
}

/// The matrix: who, under which rule level, may push and delete a protected package.
async fn protection_holds_back_those_below_the_level(backend: Backend) {
    let w = World::new(backend).await;
    // An administrator who is also an Owner here (depot's administrators read and write only
    // where they are members).
    w.app.admin.create_user_as("root", true).await.unwrap();
    w.app
        .member("root", "grp", depot::domain::Role::Owner)
        .await;
    let (_, root) = w.app.pat("root", &[Scope::Api], None).await;
    let deploy = w
        .app
        .deploy_token(
            Some("grp/app"),
            None,
            &[Scope::WritePackageRegistry, Scope::ReadPackageRegistry],
        )
        .await;
    let hour = Timestamp::now().plus_seconds(3600);
    let (_, maintainer_job) = w.app.job_token("maintainer", "grp/app", hour).await;
    let who: Vec<(&str, (&str, String))> = vec![
        (
            "developer",
            ("PRIVATE-TOKEN", w.token("developer").to_string()),
        ),
        (
            "maintainer",
            ("PRIVATE-TOKEN", w.token("maintainer").to_string()),
        ),
        ("maintainer's job", ("JOB-TOKEN", maintainer_job)),
        ("owner", ("PRIVATE-TOKEN", w.token("owner").to_string())),
        ("admin", ("PRIVATE-TOKEN", root)),
        ("deploy token", ("DEPLOY-TOKEN", deploy)),
    ];
    let maintainer = w.token("maintainer");
    // (push level, delete level) and who may push, who may delete.
    let matrix: [(&str, &str, &[&str], &[&str]); 3] = [
        (
            "maintainer",
            "owner",
            &["maintainer", "maintainer's job", "owner", "admin"],
            &["owner", "admin"],
        ),
        ("owner", "admin", &["owner", "admin"], &["admin"]),
        ("admin", "admin", &["admin"], &["admin"]),
    ];
    for (round, (push, delete, pushers, deleters)) in matrix.into_iter().enumerate() {
        let made = send_json(
            &w,
            "POST",
            &rules(&w),
            maintainer,
            json!({
                "package_name_pattern": format!("prot{round}-*"), "package_type": "generic",
                "minimum_access_level_for_push": push, "minimum_access_level_for_delete": delete
            }),
        )
        .await;
        assert_eq!(made.status.as_u16(), 201, "{}", made.text());
        for (i, (name, header)) in who.iter().enumerate() {
            let header = (header.0, header.1.as_str());
            let uri = w.url(w.private_id, &format!("prot{round}-pkg/1.{i}/f.bin"));
            let put = w.app.put(&uri, &[header], b"bytes").await;
            let may_push = pushers.contains(name);
            let expected = if may_push { 201 } else { 403 };
            assert_eq!(
                put.status.as_u16(),
                expected,
                "{name} pushing under {push}: {}",
                put.text()
            );
            if !may_push {
                assert_eq!(
                    put.json(),
                    json!({"message": "403 Forbidden - Package protected."})
                );
            }
            // An unprotected name is not held back.
            let free = w.url(w.private_id, &format!("free{round}/1.{i}/f.bin"));
            assert_eq!(
                w.app.put(&free, &[header], b"bytes").await.status.as_u16(),
                201,
                "{name}"
            );
        }
        // Deletes, of a package the owner published (under the admin rule, the admin did).
        let publisher = ("PRIVATE-TOKEN", w.token("owner"));
        for (i, (name, header)) in who.iter().enumerate() {
            if *name == "developer" {
                continue; // below Maintainer: no delete at all, protected or not
            }
            let header = (header.0, header.1.as_str());
            let uri = w.url(w.private_id, &format!("prot{round}-del{i}/1.0/f.bin"));
            let by = if round == 2 {
                (who[4].1.0, who[4].1.1.as_str())
            } else {
                publisher
            };
            assert_eq!(w.app.put(&uri, &[by], b"x").await.status.as_u16(), 201);
            let list = format!(
                "/api/v4/projects/{}/packages?package_name=prot{round}-del{i}",
                w.private_id
            );
            let id = w.app.get(&list, &[publisher]).await.json()[0]["id"]
                .as_i64()
                .unwrap();
            let package = format!("/api/v4/projects/{}/packages/{id}", w.private_id);
            let deleted = w
                .app
                .send("DELETE", &package, &[header], Vec::<u8>::new())
                .await;
            let may = deleters.contains(name);
            assert_eq!(
                deleted.status.as_u16(),
                if may { 204 } else { 403 },
                "{name} deleting under {delete}"
            );
            if !may {
                assert_eq!(
                    deleted.json(),
                    json!({"message": "403 Forbidden - Package is deletion protected."})
                );
                assert_eq!(
                    w.app.get(&uri, &[publisher]).await.status.as_u16(),
                    200,
                    "kept"
                );
            }
        }
    }
}

/// An upload session is a push too: one is not opened for a package the caller may not push.
async fn sessions_are_pushes_too(backend: Backend) {
    let w = World::new(backend).await;
    let rule = json!({"package_name_pattern": "big-*", "package_type": "generic",
        "minimum_access_level_for_push": "maintainer"});
    let made = send_json(&w, "POST", &rules(&w), w.token("maintainer"), rule).await;
    assert_eq!(made.status.as_u16(), 201);
    let open = |who: &'static str, name: &'static str| {
        let uri = w.url(w.private_id, &format!("{name}/1.0/f.bin/uploads"));
        let w = &w;
        async move { send_json(w, "POST", &uri, w.token(who), json!({"size": 10})).await }
    };
    let refused = open("developer", "big-one").await;
    assert_eq!(
        (refused.status.as_u16(), refused.json()),
        (
            403,
            json!({"message": "403 Forbidden - Package protected."})
        )
    );
    assert_eq!(open("developer", "small-one").await.status.as_u16(), 201);
    assert_eq!(open("maintainer", "big-one").await.status.as_u16(), 201);
    // A rule made while a session is open holds its commit back: nothing is published.
    let dev = w.token("developer");
    let file = "late-one/1.0/f.bin";
    let data = vec![7u8; 100];
    let opened = crate::http_uploads::open(&w, dev, file, json!({"size": data.len()})).await;
    assert_eq!(opened.status.as_u16(), 201, "{}", opened.text());
    let body = opened.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(
        crate::http_uploads::send_bytes(&w, &body["upload"], &data).await,
        200
    );
    let rule = json!({"package_name_pattern": "late-*", "package_type": "generic",
        "minimum_access_level_for_push": "maintainer"});
    let made = send_json(&w, "POST", &rules(&w), w.token("maintainer"), rule).await;
    assert_eq!(made.status.as_u16(), 201);
    let done = crate::http_uploads::session(&w, "POST", dev, file, &id, "/complete").await;
    // The session's view, refused, with the request's own message.
    let view = done.json();
    assert_eq!(done.status.as_u16(), 403);
    assert_eq!(view["state"], "refused");
    assert_eq!(view["message"], "403 Forbidden - Package protected.");
    assert_eq!(
        crate::http_uploads::download(&w, dev, file)
            .await
            .status
            .as_u16(),
        404
    );
}

on_every_backend!(
    maintainers_manage_rules,
    bad_rules_are_refused_as_gitlab_refuses_them,
    protection_holds_back_those_below_the_level,
    sessions_are_pushes_too,
);
