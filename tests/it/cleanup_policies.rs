//! Cleanup policies on both stores: Maintainers set them with Grape-shaped errors (nothing
//! changed by a refused one); the preview lists exactly what the scheduled run then deletes
//! (pending destruction, as a person's delete), protected packages untouched; a run is not
//! repeated before its 12 hours.

use crate::support::{Backend, World};
use serde_json::{Value, json};

fn policy(w: &World) -> String {
    format!("/api/v4/projects/{}/packages/cleanup_policy", w.private_id)
}

async fn put_json(w: &World, uri: &str, token: &str, body: Value) -> crate::support::Answer {
    let headers = [
        ("PRIVATE-TOKEN", token),
        ("Content-Type", "application/json"),
    ];
    w.app
        .send("PUT", uri, &headers, body.to_string().into_bytes())
        .await
}

async fn maintainers_set_a_policy(backend: Backend) {
    let w = World::new(backend).await;
    let maintainer = w.token("maintainer");
    let auth = [("PRIVATE-TOKEN", maintainer)];
    let off = w.app.get(&policy(&w), &auth).await.json();
    assert_eq!(off["keep_n_duplicated_package_files"], "all");
    assert_eq!(off["keep_n_latest_versions"], Value::Null);
    let set = put_json(
        &w,
        &policy(&w),
        maintainer,
        json!({
            "keep_n_latest_versions": 3, "delete_versions_not_downloaded_for_days": "30",
            "package_name_regex": "^app", "keep_n_duplicated_package_files": "10"
        }),
    )
    .await;
    assert_eq!(set.status.as_u16(), 200, "{}", set.text());
    let shown = set.json();
    assert_eq!(
        (
            &shown["keep_n_latest_versions"],
            &shown["delete_versions_not_downloaded_for_days"]
        ),
        (&json!(3), &json!(30))
    );
    assert_eq!(shown["keep_n_duplicated_package_files"], "10");
    let cases: [(Value, Value); 6] = [
        (
            json!({"keep_n_latest_versions": 0}),
            json!({"error": "keep_n_latest_versions does not have a valid value"}),
        ),
        (
            json!({"delete_versions_older_than_days": -1}),
            json!({"error": "delete_versions_older_than_days does not have a valid value"}),
        ),
        (
            json!({"keep_n_duplicated_package_files": "5"}),
            json!({"error": "keep_n_duplicated_package_files does not have a valid value"}),
        ),
        (
            json!({"keep_everything": true}),
            json!({"error": "keep_everything is not a known field"}),
        ),
        (
            json!({"package_name_regex": "(unclosed"}),
            json!({"message": {"package_name_regex": ["is an invalid regexp"]}}),
        ),
        (
            json!({"delete_versions_not_downloaded_for_days": "soon"}),
            json!({"error": "delete_versions_not_downloaded_for_days does not have a valid value"}),
        ),
    ];
    for (body, answer) in cases {
        let refused = put_json(&w, &policy(&w), maintainer, body.clone()).await;
        assert_eq!(
            (refused.status.as_u16(), refused.json()),
            (400, answer),
            "{body}"
        );
    }
    let kept = w.app.get(&policy(&w), &auth).await.json();
    assert_eq!(kept["keep_n_latest_versions"], 3, "nothing changed");
    assert_eq!(kept["package_name_regex"], "^app");
    // `null` turns a rule off.
    let cleared = put_json(
        &w,
        &policy(&w),
        maintainer,
        json!({"keep_n_latest_versions": null}),
    )
    .await;
    assert_eq!(cleared.json()["keep_n_latest_versions"], Value::Null);
    let developer = w
        .app
        .get(&policy(&w), &[("PRIVATE-TOKEN", w.token("developer"))])
        .await;
    assert_eq!(developer.status.as_u16(), 403);
}

async fn the_preview_is_what_the_run_deletes(backend: Backend) {
    let w = World::new(backend).await;
    let maintainer = w.token("maintainer");
    let auth = [("PRIVATE-TOKEN", maintainer)];
    let put = |rest: String| {
        let uri = w.url(w.private_id, &rest);
        let w = &w;
        async move { assert_eq!(w.app.put(&uri, &auth, b"bytes").await.status.as_u16(), 201) }
    };
    for v in 0..5 {
        put(format!("app/1.{v}/f.bin")).await;
        put(format!("prot/1.{v}/f.bin")).await;
    }
    for _ in 0..3 {
        put("tool/1.0/f.bin".into()).await;
    }
    let rules = format!(
        "/api/v4/projects/{}/packages/protection/rules",
        w.private_id
    );
    let rule = json!({"package_name_pattern": "prot", "package_type": "generic",
        "minimum_access_level_for_delete": "owner"});
    let headers = [
        ("PRIVATE-TOKEN", maintainer),
        ("Content-Type", "application/json"),
    ];
    let made = w
        .app
        .send("POST", &rules, &headers, rule.to_string().into_bytes())
        .await;
    assert_eq!(made.status.as_u16(), 201);
    let set = put_json(
        &w,
        &policy(&w),
        maintainer,
        json!({
            "keep_n_latest_versions": 2, "package_name_regex": "^(app|prot)$",
            "keep_n_duplicated_package_files": "1"
        }),
    )
    .await;
    assert_eq!(set.status.as_u16(), 200);
    let preview = w
        .app
        .get(&format!("{}/preview", policy(&w)), &auth)
        .await
        .json();
    let versions: Vec<(&str, &str)> = preview["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["version"].as_str().unwrap(),
                p["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("1.0", "keep_n_latest_versions"),
            ("1.1", "keep_n_latest_versions"),
            ("1.2", "keep_n_latest_versions")
        ]
    );
    assert!(
        preview["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["name"] == "app")
    );
    let files = preview["package_files"].as_array().unwrap();
    assert_eq!(
        files.len(),
        2,
        "the older duplicates of tool's f.bin: {preview}"
    );
    // The run deletes exactly that.
    let done = w.app.registry.run_due_cleanups().await.unwrap();
    assert_eq!((done.packages, done.files), (3, 2));
    let list = format!(
        "/api/v4/projects/{}/packages?per_page=100&order_by=name",
        w.private_id
    );
    let left: Vec<String> = w
        .app
        .get(&list, &auth)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect();
    let mut expected = vec!["app/1.3".to_string(), "app/1.4".into()];
    expected.extend((0..5).map(|v| format!("prot/1.{v}")));
    expected.push("tool/1.0".into());
    assert_eq!(left, expected);
    let doomed = format!(
        "/api/v4/projects/{}/packages?status=pending_destruction",
        w.private_id
    );
    assert_eq!(
        w.app
            .get(&doomed, &auth)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Not again before its 12 hours; the preview is empty now.
    let again = w.app.registry.run_due_cleanups().await.unwrap();
    assert_eq!((again.packages, again.files), (0, 0));
    let preview = w
        .app
        .get(&format!("{}/preview", policy(&w)), &auth)
        .await
        .json();
    assert_eq!(preview, json!({"packages": [], "package_files": []}));
}

on_every_backend!(
    maintainers_set_a_policy,
    the_preview_is_what_the_run_deletes,
    a_change_saved_during_a_run_is_kept,
);

/// `depot admin cleanup`: the dry run lists, the run deletes the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_command_previews_and_runs() {
    let w = World::new(Backend::Local).await;
    let maintainer = w.token("maintainer");
    for v in 0..3 {
        let uri = w.url(w.private_id, &format!("app/1.{v}/f.bin"));
        let put = w
            .app
            .put(&uri, &[("PRIVATE-TOKEN", maintainer)], b"x")
            .await;
        assert_eq!(put.status.as_u16(), 201);
    }
    let set = put_json(
        &w,
        &policy(&w),
        maintainer,
        json!({"keep_n_latest_versions": 1}),
    )
    .await;
    assert_eq!(set.status.as_u16(), 200);
    let dir = w.app.local_dir();
    let dry = crate::cli::admin(dir, &["cleanup", "grp/app", "--dry-run"]);
    assert_eq!(dry["plan"]["packages"].as_array().unwrap().len(), 2);
    assert_eq!(dry["deleted"], Value::Null);
    let ran = crate::cli::admin(dir, &["cleanup", "grp/app"]);
    assert_eq!(ran["plan"], dry["plan"]);
    assert_eq!(ran["deleted"], json!({"packages": 2, "package_files": 0}));
}

/// A run moves its policy's next run on only if no change was saved since it began (a saved
/// change runs at the next pass, with its own fields).
async fn a_change_saved_during_a_run_is_kept(backend: Backend) {
    use depot::domain::{CleanupPolicy, Timestamp};
    let w = World::new(backend).await;
    let meta = w.app.meta();
    let t = |ms: i64| Timestamp::from_millis(1_800_000_000_000 + ms);
    let mut policy = CleanupPolicy::off(w.private_id, t(0));
    policy.keep_n_latest_versions = Some(3);
    meta.set_cleanup_policy(&policy, &crate::support::ev())
        .await
        .unwrap();
    // A run that began at t(10): due, moved on.
    assert!(
        meta.schedule_cleanup(w.private_id, t(10), t(1000))
            .await
            .unwrap()
    );
    assert_eq!(
        meta.cleanup_policy(w.private_id)
            .await
            .unwrap()
            .unwrap()
            .next_run_at,
        t(1000)
    );
    // A change saved at t(20), during a run that began at t(15): the run leaves it be.
    let changed = CleanupPolicy {
        keep_n_latest_versions: Some(1),
        next_run_at: t(20),
        ..policy
    };
    meta.set_cleanup_policy(&changed, &crate::support::ev())
        .await
        .unwrap();
    assert!(
        !meta
            .schedule_cleanup(w.private_id, t(15), t(2000))
            .await
            .unwrap()
    );
    assert_eq!(
        meta.cleanup_policy(w.private_id).await.unwrap().unwrap(),
        changed
    );
}
