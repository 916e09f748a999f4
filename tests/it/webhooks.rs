//! Webhooks of `depot serve` (issue 17): a loopback receiver that refuses the first
//! deliveries, then takes them: each event arrives signed (the README's verification example
//! checks it), in order per package, once delivered; the hook's delivery log says so. And a
//! server killed between a change and its delivery delivers it after restart, exactly once.

use crate::cli::Server;
use crate::events::{call, publish};
use crate::support::receiver::{Received, Receiver};
use crate::support::{Backend, World};
use depot::delivery::webhooks::{RetryPolicy, Webhooks, signature};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Quick retries, so a test sees several within a second.
fn quick() -> RetryPolicy {
    RetryPolicy {
        first: Duration::from_millis(20),
        longest: Duration::from_millis(100),
        ..RetryPolicy::default()
    }
}

/// Run passes of `hooks` until `done` holds (at most 10 s).
async fn deliver_until(hooks: &Webhooks, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not delivered in 10 s"
        );
        hooks.pass().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hooks_get_signed_events_in_order_through_refusals() {
    let w = World::new(Backend::Local).await;
    let receiver = Receiver::start(2).await;
    let quiet = Receiver::start(0).await;
    let hooks_uri = format!("/api/v4/projects/{}/hooks", w.private_id);
    let body = json!({"url": receiver.url, "token": "s3cret", "name": "ci"});
    let developer = w.token("developer").to_string();
    assert_eq!(
        call(&w.app, &developer, "POST", &hooks_uri, Some(body.clone()))
            .await
            .0,
        403
    );
    let maintainer = w.token("maintainer").to_string();
    let (status, hook) = call(&w.app, &maintainer, "POST", &hooks_uri, Some(body)).await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["package_events"], true);
    assert!(
        hook.get("token").is_none(),
        "the secret is never shown: {hook}"
    );
    // A hook of token events only hears nothing of publishes.
    let tokens_only = json!({"url": quiet.url, "event_types": ["token.created"]});
    let (status, _) = call(&w.app, &maintainer, "POST", &hooks_uri, Some(tokens_only)).await;
    assert_eq!(status, 201);
    // A group's hook (its Owners') hears the events of every project under it.
    let group = Receiver::start(0).await;
    let group_hooks = "/api/v4/groups/grp/hooks";
    let body = json!({"url": group.url});
    let denied = call(&w.app, &maintainer, "POST", group_hooks, Some(body.clone())).await;
    assert_eq!(denied.0, 403, "{}", denied.1);
    let (status, made) = call(&w.app, w.token("owner"), "POST", group_hooks, Some(body)).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["group_path"], "grp");
    let bad = json!({"url": "ftp://example/x"});
    let (status, refused) = call(&w.app, &maintainer, "POST", &hooks_uri, Some(bad)).await;
    assert_eq!(status, 400, "{refused}");

    for file in ["a", "b", "c"] {
        assert_eq!(publish(&w, w.token("owner"), "tool", file).await.0, 200);
    }
    let store = w.app.registry.hook_store_of().unwrap().clone();
    let hooks = Webhooks::new(store, quick());
    deliver_until(&hooks, || {
        receiver.delivered().len() == 3 && group.delivered().len() == 3
    })
    .await;

    let got = receiver.received();
    // The first event was refused twice and kept its delivery id; the others waited for it.
    let names: Vec<String> = got
        .iter()
        .map(|r| r.json()["file"]["name"].to_string())
        .collect();
    assert_eq!(names, [r#""a""#, r#""a""#, r#""a""#, r#""b""#, r#""c""#]);
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200, 200, 200]);
    assert_eq!(
        got[0].header("x-depot-delivery"),
        got[2].header("x-depot-delivery")
    );
    assert_ne!(
        got[2].header("x-depot-delivery"),
        got[3].header("x-depot-delivery")
    );
    let types: Vec<&str> = got[2..].iter().map(|r| r.header("x-depot-event")).collect();
    assert_eq!(
        types,
        [
            "package.published",
            "package_file.published",
            "package_file.published"
        ]
    );
    for r in &got {
        assert_eq!(r.header("x-depot-signature"), signature("s3cret", &r.body));
        assert_eq!(r.header("content-type"), "application/json");
        assert!(readme_example_verifies("s3cret", r));
    }
    let mut forged = got[2].clone();
    forged.body = forged.body.slice(1..);
    assert!(!readme_example_verifies("s3cret", &forged));
    assert!(quiet.received().is_empty());

    let one = format!("{hooks_uri}/{}", hook["id"]);
    let (status, shown) = call(&w.app, &maintainer, "GET", &one, None).await;
    assert_eq!(status, 200);
    let log = &shown["deliveries"];
    assert_eq!(
        (log["delivered"].clone(), log["pending"].clone()),
        (json!(3), json!(0))
    );
    assert_eq!(log["last_status"], 200);
    let (_, listed) = call(&w.app, &maintainer, "GET", &hooks_uri, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(call(&w.app, &maintainer, "DELETE", &one, None).await.0, 204);
    let (status, gone) = call(&w.app, &maintainer, "GET", &one, None).await;
    assert_eq!(
        (status, gone),
        (404, json!({"message": "404 Hook Not Found"}))
    );
}

/// Run the README's signature check (Python, as a receiver would) on one delivery.
fn readme_example_verifies(secret: &str, delivery: &Received) -> bool {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("<!-- verify-signature -->")
        .expect("the README's signature example");
    let code = readme[start..]
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a python block after the marker");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body"), &delivery.body).unwrap();
    let script = format!(
        "{code}\nimport sys\nbody = open(sys.argv[2], 'rb').read()\n\
         print(verify(sys.argv[1].encode(), body, sys.argv[3]))\n"
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(secret)
        .arg(dir.path().join("body"))
        .arg(delivery.header("x-depot-signature"))
        .output()
        .expect("python3 runs the README's example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match String::from_utf8_lossy(&out.stdout).trim() {
        "True" => true,
        "False" => false,
        other => panic!("the example printed {other:?}"),
    }
}

/// POST `body` to `uri` of a running server as `token`.
async fn post(base: &str, token: &str, uri: &str, body: Value) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{base}{uri}"))
        .header("PRIVATE-TOKEN", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_delivers_after_restart_exactly_once() {
    let receiver = Receiver::start(0).await;
    // The first process sends nothing after its first pass (at start, before any hook).
    let first = [("DEPOT_HOOK_INTERVAL", "1h")];
    let server = Server::start_with(tempfile::tempdir().unwrap(), &[], &first);
    let (base, token) = (server.base.clone(), server.demo_token());
    let hook = json!({"url": receiver.url, "token": "k"});
    let hooks = "/api/v4/projects/demo%2Fapp/hooks";
    assert_eq!(post(&base, &token, hooks, hook).await.0, 201);
    let client = reqwest::Client::new();
    for file in ["one.bin", "two.bin"] {
        let url = format!("{base}/api/v4/projects/demo%2Fapp/packages/generic/kit/1.0.0/{file}");
        let put = client.put(url).header("PRIVATE-TOKEN", &token).body(file);
        assert_eq!(put.send().await.unwrap().status().as_u16(), 201);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.received().is_empty(),
        "nothing went out before the kill"
    );
    // SIGKILL: the events are on disk, their deliveries not made.
    let dir = server.stop();
    let again = [("DEPOT_HOOK_INTERVAL", "50ms")];
    let restarted = Server::start_with(dir, &[], &again);
    let started = Instant::now();
    while receiver.delivered().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not delivered after restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Many passes later, still once each.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let got = receiver.received();
    let ids: Vec<String> = got.iter().map(|r| r.json()["id"].to_string()).collect();
    assert_eq!(got.len(), 2, "{ids:?}");
    assert_ne!(ids[0], ids[1]);
    let files: Vec<Value> = got
        .iter()
        .map(|r| r.json()["file"]["name"].clone())
        .collect();
    assert_eq!(files, ["one.bin", "two.bin"]);
    assert!(
        got.iter()
            .all(|r| r.header("x-depot-signature") == signature("k", &r.body))
    );
    // `depot admin` reads the same store while the server runs: the hook's log, the audit log.
    let dir = restarted.dir.path();
    let hooks = crate::cli::admin(dir, &["hooks", "list", "demo/app"]);
    assert_eq!(hooks[0]["deliveries"]["delivered"], 2, "{hooks}");
    assert_eq!(hooks[0]["url"], receiver.url);
    let audit = crate::cli::admin(dir, &["audit", "demo/app"]);
    let names: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_name"].as_str().unwrap())
        .collect();
    let expected = [
        "package_file.published",
        "package.published",
        "project.created",
    ];
    assert_eq!(names, expected, "{audit}");
    let added = crate::cli::admin(dir, &["hooks", "add", "demo", "http://127.0.0.1:9/x"]);
    assert_eq!(added["group_path"], "demo");
    let id = added["id"].to_string();
    assert_eq!(
        crate::cli::admin(dir, &["hooks", "remove", &id])["removed"],
        added["id"]
    );
}
