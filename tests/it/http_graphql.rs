//! GitLab's GraphQL for generic package settings on every store pair: who may read
//! and change them, GitLab's errors, and the duplicate rule that follows.

use crate::support::{Backend, World};
use serde_json::{Value, json};

const NOT_PERMITTED: &str = "The resource that you are attempting to access does not exist or \
                             you don't have permission to perform this action";

async fn graphql(w: &World, user: Option<&str>, query: &str, variables: Value) -> Value {
    let body = json!({"query": query, "variables": variables}).to_string();
    let bearer = user.map(|u| format!("Bearer {}", w.token(u)));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer.as_str()));
    }
    let a = w
        .app
        .send("POST", "/api/graphql", &headers, body.into_bytes())
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()
}

const UPDATE: &str = "mutation($path: ID!, $allowed: Boolean, $regex: UntrustedRegexp) {
  updateNamespacePackageSettings(input: {namespacePath: $path,
    genericDuplicatesAllowed: $allowed, genericDuplicateExceptionRegex: $regex}) {
    packageSettings { genericDuplicatesAllowed genericDuplicateExceptionRegex } errors } }";

const READ: &str = "query($path: ID!) { group(fullPath: $path) {
  fullPath packageSettings { genericDuplicatesAllowed genericDuplicateExceptionRegex } } }";

async fn owners_set_the_duplicate_rule(backend: Backend) {
    let w = World::new(backend).await;
    // The literal mutation of GitLab's documentation, as a GitLab user would paste it.
    let literal = r#"mutation { updateNamespacePackageSettings(input: {namespacePath: "grp",
      genericDuplicatesAllowed: false, genericDuplicateExceptionRegex: "foo-.*"}) {
      packageSettings { genericDuplicatesAllowed genericDuplicateExceptionRegex } errors } }"#;
    let answer = graphql(&w, Some("owner"), literal, json!({})).await;
    assert_eq!(
        answer,
        json!({"data": {"updateNamespacePackageSettings": {
            "packageSettings": {
                "genericDuplicatesAllowed": false,
                "genericDuplicateExceptionRegex": "foo-.*",
            },
            "errors": [],
        }}})
    );
    let read = graphql(&w, Some("owner"), READ, json!({"path": "grp"})).await;
    assert_eq!(
        read,
        json!({"data": {"group": {"fullPath": "grp", "packageSettings": {
            "genericDuplicatesAllowed": false,
            "genericDuplicateExceptionRegex": "foo-.*",
        }}}})
    );

    // Toggle off: duplicates are refused, except for names the regex lists.
    let dev = [("PRIVATE-TOKEN", w.token("developer"))];
    for (name, second) in [("bar", 400), ("foo-x", 201)] {
        let url = w.url(w.private_id, &format!("{name}/1.0/f.bin"));
        assert_eq!(w.app.put(&url, &dev, b"1").await.status, 201);
        let a = w.app.put(&url, &dev, b"2").await;
        assert_eq!(a.status.as_u16(), second, "{name}: {}", a.text());
        if second == 400 {
            assert_eq!(
                a.json(),
                json!({"message": "400 Bad request - Duplicate package is not allowed"})
            );
        }
    }
    // Toggle back on with the regex: now the regex lists what may NOT be duplicated.
    let answer = graphql(
        &w,
        Some("owner"),
        UPDATE,
        json!({"path": "grp", "allowed": true}),
    )
    .await;
    assert_eq!(
        answer["data"]["updateNamespacePackageSettings"]["packageSettings"],
        json!({"genericDuplicatesAllowed": true, "genericDuplicateExceptionRegex": "foo-.*"})
    );
    let url = w.url(w.private_id, "bar/1.0/f.bin");
    assert_eq!(w.app.put(&url, &dev, b"3").await.status, 201);
    let url = w.url(w.private_id, "foo-x/1.0/f.bin");
    assert_eq!(w.app.put(&url, &dev, b"4").await.status, 400);
}

async fn errors_and_permissions(backend: Backend) {
    let w = World::new(backend).await;
    // An invalid regex is a GraphQL error naming it; nothing changes.
    let answer = graphql(
        &w,
        Some("owner"),
        UPDATE,
        json!({"path": "grp", "regex": "foo("}),
    )
    .await;
    assert_eq!(
        answer["data"]["updateNamespacePackageSettings"],
        Value::Null
    );
    let message = answer["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("foo( is an invalid regexp: "),
        "{message}"
    );
    // Too long: the payload's errors, GitLab-worded.
    let answer = graphql(
        &w,
        Some("owner"),
        UPDATE,
        json!({"path": "grp", "regex": "a".repeat(256)}),
    )
    .await;
    assert_eq!(
        answer["data"]["updateNamespacePackageSettings"],
        json!({"packageSettings": null, "errors": [
            "Generic duplicate exception regex is too long (maximum is 255 characters)"
        ]})
    );
    let read = graphql(&w, Some("owner"), READ, json!({"path": "grp"})).await;
    assert_eq!(
        read["data"]["group"]["packageSettings"],
        json!({"genericDuplicatesAllowed": true, "genericDuplicateExceptionRegex": ""})
    );

    // Only an Owner changes settings; others (and unknown groups) get GitLab's error.
    for (user, path) in [
        (Some("maintainer"), "grp"),
        (Some("stranger"), "grp"),
        (None, "grp"),
        (Some("owner"), "missing"),
    ] {
        let answer = graphql(&w, user, UPDATE, json!({"path": path, "allowed": false})).await;
        assert_eq!(
            answer["data"]["updateNamespacePackageSettings"],
            Value::Null,
            "{user:?}"
        );
        assert_eq!(answer["errors"][0]["message"], NOT_PERMITTED, "{user:?}");
    }
    // Non-owners see the group (it has a public project) but not its settings.
    for user in [Some("maintainer"), Some("stranger"), None] {
        let read = graphql(&w, user, READ, json!({"path": "grp"})).await;
        assert_eq!(
            read,
            json!({"data": {"group": {"fullPath": "grp", "packageSettings": null}}}),
            "{user:?}"
        );
    }
    // A group with only private projects is invisible to strangers; unknown groups are null.
    w.app.group("hidden").await;
    w.app.project("hidden/p", false).await;
    for (user, path) in [
        (Some("stranger"), "hidden"),
        (None, "hidden"),
        (Some("owner"), "nope"),
    ] {
        let read = graphql(&w, user, READ, json!({"path": path})).await;
        assert_eq!(read, json!({"data": {"group": null}}), "{user:?} {path}");
    }
    // A malformed request is refused plainly.
    let a = w
        .app
        .send(
            "POST",
            "/api/graphql",
            &[("Content-Type", "application/json")],
            b"not json".to_vec(),
        )
        .await;
    assert_eq!(a.status, 400);
    // A GraphQL syntax error is reported the GraphQL way.
    let answer = graphql(&w, Some("owner"), "query { group(", json!({})).await;
    assert!(answer["errors"][0]["message"].is_string(), "{answer}");
}

/// GitLab's `updatePackagesCleanupPolicy` and `project { packagesCleanupPolicy }`: what a
/// GitLab user sets keeps that many duplicates when the policy runs; Maintainers only.
async fn maintainers_set_the_cleanup_policy(backend: Backend) {
    let w = World::new(backend).await;
    let mutation = r#"mutation { updatePackagesCleanupPolicy(input: {projectPath: "grp/app",
        keepNDuplicatedPackageFiles: TEN_PACKAGE_FILES}) { packagesCleanupPolicy {
        keepNDuplicatedPackageFiles nextRunAt } errors } }"#;
    let answer = graphql(&w, Some("maintainer"), mutation, json!({})).await;
    let payload = &answer["data"]["updatePackagesCleanupPolicy"];
    assert_eq!(payload["errors"], json!([]), "{answer}");
    let policy = &payload["packagesCleanupPolicy"];
    assert_eq!(policy["keepNDuplicatedPackageFiles"], "TEN_PACKAGE_FILES");
    assert!(policy["nextRunAt"].as_str().unwrap().ends_with('Z'));
    let query = r#"query { project(fullPath: "grp/app") { packagesCleanupPolicy {
        keepNDuplicatedPackageFiles } } }"#;
    let read = graphql(&w, Some("maintainer"), query, json!({})).await;
    assert_eq!(
        read["data"]["project"]["packagesCleanupPolicy"]["keepNDuplicatedPackageFiles"],
        "TEN_PACKAGE_FILES"
    );
    // The REST view of the same policy.
    let rest = format!("/api/v4/projects/{}/packages/cleanup_policy", w.private_id);
    let shown = w
        .app
        .get(&rest, &[("PRIVATE-TOKEN", w.token("maintainer"))])
        .await;
    assert_eq!(shown.json()["keep_n_duplicated_package_files"], "10");
    // A Developer reads null and may not change it.
    let read = graphql(&w, Some("developer"), query, json!({})).await;
    assert_eq!(
        read["data"]["project"]["packagesCleanupPolicy"],
        Value::Null
    );
    let refused = graphql(&w, Some("developer"), mutation, json!({})).await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("you don't have permission")
    );
}

on_every_backend!(
    owners_set_the_duplicate_rule,
    errors_and_permissions,
    maintainers_set_the_cleanup_policy,
);
