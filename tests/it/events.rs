//! Events (issue 17): every write records one event in the same step as the change (none for
//! a refused one), read back through the audit log API on both store pairs; on AWS through
//! DynamoDB Local's stream, the events function and an EventBridge stand-in that records
//! `PutEvents`, including a put it refuses; the audit log's pages and filters.

use crate::support::receiver::EventBus;
use crate::support::{Backend, TestApp, World};
use depot::domain::Timestamp;
use serde_json::{Value, json};

/// A call as `token`, with a JSON body if given: status and JSON answer (`Null` if empty).
pub(crate) async fn call(
    app: &TestApp,
    token: &str,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut headers = vec![("PRIVATE-TOKEN", token)];
    let bytes = match &body {
        Some(b) => {
            headers.push(("Content-Type", "application/json"));
            b.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    let answer = app.send(method, uri, &headers, bytes).await;
    let json = if answer.body.is_empty() {
        Value::Null
    } else {
        answer.json()
    };
    (answer.status.as_u16(), json)
}

/// Publish `file` of `name`/1.0.0 in the project: 200 and the package file record
/// (`select=package_file`).
pub(crate) async fn publish(w: &World, token: &str, name: &str, file: &str) -> (u16, Value) {
    let uri = w.url(
        w.private_id,
        &format!("{name}/1.0.0/{file}?select=package_file"),
    );
    let answer = w
        .app
        .put(&uri, &[("PRIVATE-TOKEN", token)], file.as_bytes())
        .await;
    let json = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (answer.status.as_u16(), json)
}

/// On AWS, hand the table's stream to the events function (with `bus` as EventBridge) until
/// it is read to its end; nothing to do on the local store.
async fn deliver(app: &TestApp, bus: &EventBus) {
    if let Some(mut pump) = app.event_pump().await {
        pump.deliver(&bus.bus(), 3).await;
    }
}

/// The project's audit log, newest first, as the owner reads it: the events' names.
async fn audit_names(w: &World, query: &str) -> Vec<String> {
    let uri = format!("/api/v4/projects/{}/audit_events?{query}", w.private_id);
    let (status, page) = call(&w.app, w.token("owner"), "GET", &uri, None).await;
    assert_eq!(status, 200, "{page}");
    page.as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_name"].as_str().unwrap().to_string())
        .collect()
}

async fn user_id(w: &World, name: &str) -> i64 {
    let uri = format!("/api/v4/users?username={name}");
    let (_, users) = call(&w.app, w.token("owner"), "GET", &uri, None).await;
    users[0]["id"].as_i64().unwrap()
}

async fn every_write_records_one_event(backend: Backend) {
    let w = World::new(backend).await;
    let bus = EventBus::start().await;
    let owner = w.token("owner").to_string();
    let project = format!("/api/v4/projects/{}", w.private_id);
    let (status, a) = publish(&w, &owner, "tool", "a.txt").await;
    assert_eq!(status, 200, "{a}");
    let (status, b) = publish(&w, &owner, "tool", "b.txt").await;
    assert_eq!(status, 200, "{b}");
    let rules = format!("{project}/packages/protection/rules");
    let rule = json!({"package_name_pattern": "locked*", "package_type": "generic",
        "minimum_access_level_for_push": "maintainer"});
    let (status, made) = call(&w.app, &owner, "POST", &rules, Some(rule)).await;
    assert_eq!(status, 201, "{made}");
    // Refused writes record nothing: a protected push, a developer's rule.
    assert_eq!(
        publish(&w, w.token("developer"), "locked", "x").await.0,
        403
    );
    let denied = json!({"package_name_pattern": "other*", "package_type": "generic",
        "minimum_access_level_for_push": "maintainer"});
    let developer = w.token("developer").to_string();
    assert_eq!(
        call(&w.app, &developer, "POST", &rules, Some(denied))
            .await
            .0,
        403
    );
    let rule_uri = format!("{rules}/{}", made["id"]);
    assert_eq!(call(&w.app, &owner, "DELETE", &rule_uri, None).await.0, 204);
    let files = format!(
        "{project}/packages/{}/package_files/{}",
        b["package_id"], b["id"]
    );
    assert_eq!(call(&w.app, &owner, "DELETE", &files, None).await.0, 204);
    let package = format!("{project}/packages/{}", a["package_id"]);
    assert_eq!(call(&w.app, &owner, "DELETE", &package, None).await.0, 204);
    let deploy = format!("{project}/deploy_tokens");
    let body = json!({"name": "ci", "scopes": ["read_package_registry"]});
    let (status, token) = call(&w.app, &owner, "POST", &deploy, Some(body)).await;
    assert_eq!(status, 201, "{token}");
    assert!(token["token"].is_string());
    let revoke = format!("{deploy}/{}", token["id"]);
    assert_eq!(call(&w.app, &owner, "DELETE", &revoke, None).await.0, 204);
    let stranger = user_id(&w, "stranger").await;
    let members = format!("{project}/members");
    let body = json!({"user_id": stranger, "access_level": 30});
    assert_eq!(
        call(&w.app, &owner, "POST", &members, Some(body)).await.0,
        201
    );
    let member = format!("{members}/{stranger}");
    assert_eq!(call(&w.app, &owner, "DELETE", &member, None).await.0, 204);
    let policy = format!("{project}/packages/cleanup_policy");
    let body = json!({"keep_n_latest_versions": 5});
    assert_eq!(
        call(&w.app, &owner, "PUT", &policy, Some(body)).await.0,
        200
    );
    deliver(&w.app, &bus).await;

    let names = audit_names(&w, "per_page=100").await;
    let expected = [
        "cleanup_policy.changed",
        "member.removed",
        "member.updated",
        "token.revoked",
        "token.created",
        "package.deleted",
        "package_file.deleted",
        "protection_rule.deleted",
        "protection_rule.created",
        "package_file.published",
        "package.published",
        // The world's setup made the project (`depot admin`: a system event).
        "project.created",
    ];
    assert_eq!(names, expected);
    let uri = format!("{project}/audit_events?event_name=package_file.published");
    let (_, page) = call(&w.app, &owner, "GET", &uri, None).await;
    let entry = &page[0];
    let owner_id = user_id(&w, "owner").await;
    assert_eq!(entry["author_id"], owner_id);
    assert_eq!(entry["entity_type"], "Project");
    assert_eq!(entry["entity_id"], w.private_id);
    let details = &entry["details"];
    assert_eq!(details["author_name"], "owner");
    assert_eq!(details["entity_path"], "grp/app");
    assert_eq!(details["target_details"], "tool/1.0.0");
    assert_eq!(details["file_name"], "b.txt");
    assert_eq!(details["file_sha256"], crate::support::sha256_hex(b"b.txt"));
    assert!(
        !details.to_string().contains(&owner),
        "no secret in {details}"
    );
    the_events_match_the_published_schema(&w).await;
    // Maintainers and above read a project's log.
    let uri = format!("{project}/audit_events");
    assert_eq!(call(&w.app, &developer, "GET", &uri, None).await.0, 403);
    if backend == Backend::Aws {
        the_bus_has_them(&w, &bus, &page).await;
    }
}

/// On AWS: what the audit log lists went to EventBridge too, once each, as depot's events.
async fn the_bus_has_them(w: &World, bus: &EventBus, published: &Value) {
    let entries = bus.entries();
    let mut ids = std::collections::HashSet::new();
    for entry in &entries {
        assert_eq!(entry["Source"], "depot");
        assert_eq!(entry["EventBusName"], "depot-test");
        let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
        assert_eq!(entry["DetailType"], detail["type"]);
        assert!(
            ids.insert(detail["id"].as_str().unwrap().to_string()),
            "twice: {detail}"
        );
    }
    let uri = format!(
        "/api/v4/projects/{}/audit_events?per_page=100",
        w.private_id
    );
    let (_, all) = call(&w.app, w.token("owner"), "GET", &uri, None).await;
    for entry in all.as_array().unwrap() {
        let id = entry["details"]["event_id"].as_str().unwrap();
        assert!(ids.contains(id), "{id} never reached the bus");
    }
    let id = published[0]["details"]["event_id"].as_str().unwrap();
    let on_bus = entries
        .iter()
        .map(|e| serde_json::from_str::<Value>(e["Detail"].as_str().unwrap()).unwrap())
        .find(|d| d["id"] == id)
        .unwrap();
    assert_eq!(on_bus["type"], "package_file.published");
    assert_eq!(on_bus["project"]["path"], "grp/app");
    assert_eq!(on_bus["package"]["name"], "tool");
    assert_eq!(on_bus["file"]["name"], "b.txt");
    assert_eq!(on_bus["file"]["size"], 5);
    assert_eq!(on_bus["actor"]["kind"], "user");
}

async fn the_audit_log_pages_and_filters(backend: Backend) {
    let w = World::new(backend).await;
    let bus = EventBus::start().await;
    let owner = w.token("owner").to_string();
    let mut between = None;
    for i in 0..5 {
        assert_eq!(publish(&w, &owner, &format!("p{i}"), "f").await.0, 200);
        if i == 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            between = Some(Timestamp::now());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    deliver(&w.app, &bus).await;
    let packages = |page: &Value| -> Vec<String> {
        let names = page.as_array().unwrap().iter();
        names
            .map(|e| e["details"]["target_details"].as_str().unwrap().to_string())
            .collect()
    };
    let all = format!(
        "/api/v4/projects/{}/audit_events?event_name=package.published",
        w.private_id
    );
    let base = format!("{all}&per_page=2");
    let mut seen = Vec::new();
    for (page, next) in [(1, Some("2")), (2, Some("3")), (3, None)] {
        let answer = w
            .app
            .get(&format!("{base}&page={page}"), &[("PRIVATE-TOKEN", &owner)])
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-next-page").filter(|n| !n.is_empty()), next);
        assert_eq!(answer.header("x-per-page"), Some("2"));
        seen.extend(packages(&answer.json()));
    }
    let newest_first: Vec<String> = (0..5).rev().map(|i| format!("p{i}/1.0.0")).collect();
    assert_eq!(seen, newest_first);
    let at = between.unwrap().to_iso8601();
    let after = format!("{all}&created_after={at}");
    let (_, later) = call(&w.app, &owner, "GET", &after, None).await;
    assert_eq!(packages(&later), ["p4/1.0.0", "p3/1.0.0"]);
    let before = format!("{all}&created_before={at}");
    let (_, earlier) = call(&w.app, &owner, "GET", &before, None).await;
    assert_eq!(packages(&earlier), ["p2/1.0.0", "p1/1.0.0", "p0/1.0.0"]);
    let bad = format!("{all}&created_after=soon");
    let (status, body) = call(&w.app, &owner, "GET", &bad, None).await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "created_after is invalid"}))
    );
    // The instance's log: administrators only.
    let instance = "/api/v4/audit_events?event_name=package.published&per_page=100";
    assert_eq!(call(&w.app, &owner, "GET", instance, None).await.0, 403);
    w.app.admin.create_user_as("root", true).await.unwrap();
    let (_, root) = w.app.pat("root", &[depot::domain::Scope::Api], None).await;
    let (status, all) = call(&w.app, &root, "GET", instance, None).await;
    assert_eq!(status, 200);
    assert_eq!(packages(&all), newest_first);
    deliver(&w.app, &bus).await;
    // The directory's changes too: the world's projects and users, made by `depot admin`.
    let made = "/api/v4/audit_events?event_name=project.created";
    let (_, projects) = call(&w.app, &root, "GET", made, None).await;
    let paths: Vec<&str> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["details"]["entity_path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["grp/pub", "grp/app"]);
    assert_eq!(projects[0]["details"]["author_name"], "depot admin");
    let users = "/api/v4/audit_events?event_name=user.created&per_page=100";
    let (_, users) = call(&w.app, &root, "GET", users, None).await;
    assert_eq!(users.as_array().unwrap().len(), 7, "six and root");
    // A group's change is the group's, in the instance's log.
    let mutation = r#"mutation { updateNamespacePackageSettings(input: {namespacePath: "grp",
      genericDuplicatesAllowed: false}) { errors } }"#;
    let body = json!({"query": mutation});
    let (status, _) = call(&w.app, &owner, "POST", "/api/graphql", Some(body)).await;
    assert_eq!(status, 200);
    deliver(&w.app, &bus).await;
    let settings = "/api/v4/audit_events?event_name=settings.changed";
    let (_, changed) = call(&w.app, &root, "GET", settings, None).await;
    assert_eq!(changed.as_array().unwrap().len(), 1, "{changed}");
    assert_eq!(changed[0]["entity_type"], "Group");
    assert_eq!(changed[0]["details"]["entity_path"], "grp");
    assert_eq!(changed[0]["details"]["generic_duplicates_allowed"], false);
}

/// On AWS: a put EventBridge refuses in part is handed again from the refused record; no
/// event is lost, and each reaches the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_put_is_handed_again() {
    let w = World::new(Backend::Aws).await;
    let bus = EventBus::start().await;
    let mut pump = w.app.event_pump().await.unwrap();
    // What the world's setup wrote first.
    pump.deliver(&bus.bus(), 0).await;
    let before = bus.entries().len();
    let owner = w.token("owner").to_string();
    for i in 0..3 {
        assert_eq!(publish(&w, &owner, "tool", &format!("f{i}")).await.0, 200);
    }
    bus.fail_next(1);
    assert_eq!(pump.deliver(&bus.bus(), 5).await, 3);
    // The refused one (the batch's first) came again, with those after it: at least once
    // each, and receivers drop repeats by id.
    let details: Vec<Value> = bus.entries()[before..]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e["Detail"].as_str().unwrap()).unwrap())
        .collect();
    let files: Vec<&str> = details
        .iter()
        .map(|d| d["file"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["f1", "f2", "f0", "f1", "f2"]);
    let ids: std::collections::HashSet<&str> =
        details.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    let names = audit_names(&w, "").await;
    assert_eq!(names.iter().filter(|n| n.contains("published")).count(), 3);
}

/// On AWS: a record handed twice in one batch (a publish's retried write makes its event
/// twice) is written and put once; one `BatchWriteItem` may not name a key twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_twice_in_a_batch_goes_out_once() {
    let w = World::new(Backend::Aws).await;
    let bus = EventBus::start().await;
    let mut pump = w.app.event_pump().await.unwrap();
    pump.deliver(&bus.bus(), 0).await;
    let before = bus.entries().len();
    assert_eq!(publish(&w, w.token("owner"), "tool", "f").await.0, 200);
    let batch = pump.next_batch().await;
    let mut records = depot::delivery::eventbridge::records_of(&batch);
    records.retain(|r| r.event.is_some());
    assert_eq!(records.len(), 1);
    records.push(records[0].clone());
    let (client, table) = w.app.dynamo_table().unwrap();
    let audit = depot::store::dynamo::DynamoMetaStore::new(client.clone(), table);
    let answer = depot::delivery::eventbridge::handle(&records, &audit, &bus.bus(), 86_400).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(bus.entries().len() - before, 1);
    let names = audit_names(&w, "event_name=package.published").await;
    assert_eq!(names.len(), 1);
}

#[tokio::test]
async fn hooks_are_local_on_aws_events_go_to_eventbridge() {
    let w = World::new(Backend::Aws).await;
    let uri = format!("/api/v4/projects/{}/hooks", w.private_id);
    let (status, body) = call(&w.app, w.token("owner"), "GET", &uri, None).await;
    assert_eq!(status, 404);
    assert!(
        body["message"].as_str().unwrap().contains("EventBridge"),
        "{body}"
    );
}

on_every_backend!(
    every_write_records_one_event,
    the_audit_log_pages_and_filters
);

/// Every event the store holds is an instance of `infra/event.schema.json`.
async fn the_events_match_the_published_schema(w: &World) {
    let schema: Value =
        serde_json::from_str(include_str!("../../infra/event.schema.json")).unwrap();
    let query = depot::domain::EventQuery {
        page: 1,
        per_page: 1000,
        ..Default::default()
    };
    let (events, _) = w.app.meta().events(&query).await.unwrap();
    assert!(events.len() >= 10);
    let types = schema["properties"]["type"]["enum"].as_array().unwrap();
    let all: Vec<Value> = depot::domain::EventType::ALL
        .iter()
        .map(|t| json!(t.as_str()))
        .collect();
    assert_eq!(types, &all, "the schema names every type");
    for event in events {
        let value: Value = serde_json::from_str(&event.to_json()).unwrap();
        conforms(&value, &schema, "event");
    }
}

/// A small check of `value` against `schema`: types, enums, required and unknown properties.
fn conforms(value: &Value, schema: &Value, at: &str) {
    if let Some(choices) = schema["enum"].as_array() {
        assert!(choices.contains(value), "{at}: {value} not in {choices:?}");
    }
    let fits = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        _ => true,
    };
    assert!(fits, "{at}: {value} is not a {}", schema["type"]);
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    let object = value.as_object().unwrap();
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap();
        assert!(object.contains_key(name), "{at}: {name} is missing");
    }
    for (name, field) in object {
        let Some(inner) = properties.get(name) else {
            assert!(
                schema["additionalProperties"] != false,
                "{at}: {name} is not in the schema"
            );
            continue;
        };
        conforms(field, inner, &format!("{at}.{name}"));
    }
}
