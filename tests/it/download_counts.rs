//! Download counts per package and per file, on both stores: counted in memory and written
//! with `last_downloaded_at` (no write per download), shown in the Packages API entities,
//! kept across a restart that flushes (as `depot serve` does when it stops), and a crash
//! loses only what had not been written.

use crate::support::{Backend, World};

/// (package count, [file counts by name order]) as the Packages API shows them.
async fn shown(w: &World, token: &str) -> (u64, Vec<u64>) {
    let auth = [("PRIVATE-TOKEN", token)];
    let list = format!("/api/v4/projects/{}/packages", w.private_id);
    let package = w.app.get(&list, &auth).await.json()[0].clone();
    let id = package["id"].as_i64().unwrap();
    let files = format!(
        "/api/v4/projects/{}/packages/{id}/package_files",
        w.private_id
    );
    let files = w.app.get(&files, &auth).await.json();
    let mut by_name: Vec<(String, u64)> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file_name"].as_str().unwrap().to_string(),
                f["download_count"].as_u64().unwrap(),
            )
        })
        .collect();
    by_name.sort();
    (
        package["download_count"].as_u64().unwrap(),
        by_name.into_iter().map(|(_, n)| n).collect(),
    )
}

async fn download(w: &World, token: &str, file: &str, times: usize) {
    let uri = w.url(w.private_id, &format!("pkg/1.0/{file}"));
    for _ in 0..times {
        let got = w.app.get(&uri, &[("PRIVATE-TOKEN", token)]).await;
        assert_eq!(got.status.as_u16(), 200);
    }
}

async fn counts_follow_a_burst_and_a_restart(backend: Backend) {
    let mut w = World::new(backend).await;
    let dev = w.token("developer").to_string();
    let auth = [("PRIVATE-TOKEN", dev.as_str())];
    for file in ["a.bin", "b.bin"] {
        let uri = w.url(w.private_id, &format!("pkg/1.0/{file}"));
        assert_eq!(w.app.put(&uri, &auth, b"bytes").await.status.as_u16(), 201);
    }
    download(&w, &dev, "a.bin", 25).await;
    download(&w, &dev, "b.bin", 5).await;
    // The first download wrote (the package had never been downloaded); the rest wait in
    // memory for the next write a minute on: no write per download.
    assert_eq!(shown(&w, &dev).await, (1, vec![1, 0]));
    assert_eq!(w.app.registry.flush_downloads(true).await, 1);
    assert_eq!(shown(&w, &dev).await, (30, vec![25, 5]));
    // A restart: the counts are the store's.
    w.app.reconfigure(|r| r);
    assert_eq!(shown(&w, &dev).await, (30, vec![25, 5]));
    // Counted and written at the stop (as `depot serve` does).
    download(&w, &dev, "b.bin", 3).await;
    assert_eq!(
        shown(&w, &dev).await,
        (30, vec![25, 5]),
        "within the minute"
    );
    assert_eq!(w.app.registry.flush_downloads(true).await, 1);
    assert_eq!(shown(&w, &dev).await, (33, vec![25, 8]));
    // A crash before the write loses those counts, and only those.
    download(&w, &dev, "a.bin", 4).await;
    w.app.reconfigure(|r| r);
    assert_eq!(w.app.registry.flush_downloads(true).await, 0);
    assert_eq!(shown(&w, &dev).await, (33, vec![25, 8]));
}

on_every_backend!(counts_follow_a_burst_and_a_restart);

/// `depot admin downloads` shows the counts of the store (the embedded one here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_command_shows_the_counts() {
    let w = World::new(Backend::Local).await;
    let dev = w.token("developer").to_string();
    let uri = w.url(w.private_id, "pkg/1.0/dir/a.bin");
    let auth = [("PRIVATE-TOKEN", dev.as_str())];
    assert_eq!(w.app.put(&uri, &auth, b"bytes").await.status.as_u16(), 201);
    for _ in 0..7 {
        assert_eq!(w.app.get(&uri, &auth).await.status.as_u16(), 200);
    }
    w.app.registry.flush_downloads(true).await;
    let shown = crate::cli::admin(w.app.local_dir(), &["downloads", "grp/app"]);
    assert_eq!(shown[0]["name"], "pkg");
    assert_eq!(shown[0]["download_count"], 7);
    assert_eq!(shown[0]["files"][0]["file_name"], "dir/a.bin");
    assert_eq!(shown[0]["files"][0]["download_count"], 7);
}
