//! The soak's last step, after the end check: ids are never given twice. Every package left is
//! deleted, the purge is awaited (the `pending_destruction` list empties, so every record is
//! forgotten), and one fresh publish must get a package id and a file id above every id the
//! soak was ever given, as GitLab's never come back. A stale id (a client's retried DELETE, a
//! cached link) must never reach another package or file.

use crate::report::{Kind, Stats};
use crate::workload::Ctx;
use depot::wire::{PackageEntity, PackageFileRecord};
use futures::StreamExt;
use reqwest::Method;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the purge (every 5 s) may take to forget everything deleted.
const PURGE_WAIT: Duration = Duration::from_secs(90);

/// Delete every package, wait for the purge, publish once more and check its ids. Returns the
/// packages deleted here; problems go to `out`.
pub async fn never_reused(ctx: &Arc<Ctx>, stats: &mut Stats, out: &mut Vec<String>) -> u64 {
    let deleted = delete_every_package(ctx, stats, out).await;
    if !purged(ctx, stats).await {
        out.push(format!(
            "deleted packages were still pending destruction {} s after the end check",
            PURGE_WAIT.as_secs()
        ));
        return deleted;
    }
    let (max_file, max_package) = {
        let model = ctx.model();
        let files = model.files.keys().max().copied().unwrap_or(0);
        (files, model.packages.keys().max().copied().unwrap_or(0))
    };
    let coord = ("soak-last".into(), "1.0.0".into(), "last.bin".into());
    let url = format!("{}?select=package_file", ctx.file_url(&coord));
    let body = bytes::Bytes::from_static(b"the last file of the soak");
    let answer = ctx
        .send(stats, Kind::Verify, Method::PUT, &url, Some(body))
        .await;
    let record = answer
        .filter(|a| a.status == 200)
        .and_then(|a| serde_json::from_slice::<PackageFileRecord>(&a.body).ok());
    let Some(record) = record else {
        out.push("the publish after the purge failed".into());
        return deleted;
    };
    if record.package_id <= max_package {
        out.push(format!(
            "package id {} given again after the purge (ids up to {max_package} were given)",
            record.package_id
        ));
    }
    if record.id <= max_file {
        out.push(format!(
            "file id {} given again after the purge (ids up to {max_file} were given)",
            record.id
        ));
    }
    deleted
}

/// Every listed package, deleted (64 at a time); how many answered 204.
async fn delete_every_package(ctx: &Arc<Ctx>, stats: &mut Stats, out: &mut Vec<String>) -> u64 {
    let mut ids = Vec::new();
    for page in 1.. {
        let url = ctx.url(&format!("packages?per_page=100&page={page}"));
        let answer = ctx.send(stats, Kind::Verify, Method::GET, &url, None).await;
        let listed = answer
            .filter(|a| a.status == 200)
            .and_then(|a| serde_json::from_slice::<Vec<PackageEntity>>(&a.body).ok());
        match listed {
            Some(packages) if !packages.is_empty() => ids.extend(packages.iter().map(|p| p.id)),
            Some(_) => break,
            None => {
                out.push(format!("{url} did not answer a list"));
                return 0;
            }
        }
    }
    let answers = futures::stream::iter(ids)
        .map(|id| {
            let ctx = ctx.clone();
            async move {
                let mut stats = Stats::default();
                let url = ctx.url(&format!("packages/{id}"));
                let answer = ctx.send(&mut stats, Kind::Verify, Method::DELETE, &url, None);
                (id, answer.await.map(|a| a.status), stats)
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let mut deleted = 0;
    for (id, status, answer_stats) in answers {
        stats.merge(answer_stats);
        match status {
            Some(204) => deleted += 1,
            other => out.push(format!("end: DELETE of package {id} answered {other:?}")),
        }
    }
    deleted
}

/// Whether the `pending_destruction` list emptied within [`PURGE_WAIT`].
async fn purged(ctx: &Ctx, stats: &mut Stats) -> bool {
    let deadline = Instant::now() + PURGE_WAIT;
    let url = ctx.url("packages?status=pending_destruction&per_page=1");
    while Instant::now() < deadline {
        let answer = ctx.send(stats, Kind::Verify, Method::GET, &url, None).await;
        // An empty page and a zero count: a page alone was once short of a package the
        // purge forgot while it was read, with others still pending.
        let empty = |a: &crate::workload::Answer| {
            a.status == 200
                && a.body.as_ref() == b"[]"
                && a.headers.get("x-total").is_some_and(|t| t == "0")
        };
        if answer.is_some_and(|a| empty(&a)) {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    false
}
