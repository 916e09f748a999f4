//! A `complete` may tell of the parts it sent (`{"parts": [{"part_number", "etag"}]}`, the
//! `ETag` each part's `PUT` answered), sparing the commit a listing of the parts. What it tells
//! is never trusted over storage: parts told wrongly are looked up and joined as storage holds
//! them, and a part told of that storage does not hold refuses the `complete` (400) and leaves
//! the session to finish.

use crate::http_uploads::{download, open, send_bytes, session};
use crate::support::{Backend, World};
use serde_json::{Value, json};

const PART: usize = 5 << 20;

/// `POST …/uploads/<id>/complete` with `body`.
async fn complete(w: &World, token: &str, file: &str, id: &str, body: Value) -> (u16, Value) {
    let url = format!("{}/uploads/{id}/complete", w.url(w.private_id, file));
    let headers = [
        ("PRIVATE-TOKEN", token),
        ("Content-Type", "application/json"),
    ];
    let a = w.app.send("POST", &url, &headers, body.to_string()).await;
    let shown = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
    (a.status.as_u16(), shown)
}

async fn parts_told_wrongly_are_looked_up_and_missing_ones_refused(backend: Backend) {
    let mut w = World::new(backend).await;
    w.app.reconfigure(|r| {
        r.with_uploads(depot::Uploads {
            part_size: PART as u64,
            commit_inline_max: None,
            single_max: 0,
        })
    });
    let dev = w.token("developer");
    let data: Vec<u8> = (0..(PART + 1000)).map(|i| (i % 239) as u8).collect();
    let told = json!({"parts": [
        {"part_number": 1, "etag": "\"not-the-etag\""},
        {"part_number": 2, "etag": "\"nor-this\""},
    ]});
    for (file, whole) in [("a/1.0/a.bin", true), ("b/1.0/b.bin", false)] {
        let opened = open(&w, dev, file, json!({"size": data.len()})).await;
        let body = opened.json();
        let id = body["id"].as_str().unwrap().to_string();
        let parts = body["upload"]["parts"].as_array().unwrap().clone();
        assert_eq!(send_bytes(&w, &parts[0], &data[..PART]).await, 200);
        if whole {
            assert_eq!(send_bytes(&w, &parts[1], &data[PART..]).await, 200);
            let (status, shown) = complete(&w, dev, file, &id, told.clone()).await;
            assert_eq!(status, 200, "{shown}");
            assert_eq!(shown["state"], "committed");
        } else {
            // Part 2 never sent: told of anyway.
            let (status, shown) = complete(&w, dev, file, &id, told.clone()).await;
            assert_eq!(status, 400, "{shown}");
            assert!(shown["error"].as_str().unwrap().contains("part"), "{shown}");
            assert_eq!(download(&w, dev, file).await.status, 404);
            // The session is still the client's to finish.
            assert_eq!(send_bytes(&w, &parts[1], &data[PART..]).await, 200);
            let a = session(&w, "POST", dev, file, &id, "/complete").await;
            assert_eq!(a.status, 200, "{}", a.text());
        }
        let served = download(&w, dev, file).await;
        assert_eq!(served.status, 200);
        assert_eq!(served.body, data, "{file} serves the bytes sent");
    }
    // A body that is not the parts is refused as bad input.
    let opened = open(&w, dev, "c/1.0/c.bin", json!({"size": 10})).await;
    let id = opened.json()["id"].as_str().unwrap().to_string();
    let (status, _) = complete(&w, dev, "c/1.0/c.bin", &id, json!({"parts": "all"})).await;
    assert_eq!(status, 400);
}

crate::on_every_backend!(parts_told_wrongly_are_looked_up_and_missing_ones_refused);
