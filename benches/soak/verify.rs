//! The end check, once the load has stopped: what the registry lists must be what the model
//! expects (no live file missing, none deleted still there, none unknown, every SHA-256 and size
//! as published); then every listed file's bytes are downloaded and hashed, at each coordinate
//! the newest first and each older duplicate once the newer one is deleted, until the
//! coordinate answers 404; coordinates and packages deleted during the load answer 404. Last,
//! `ids` deletes what is left and checks ids are never given twice.

use crate::model::{Coord, Fate, Model};
use crate::report::{EndCheck, Kind, Stats};
use crate::workload::{Ctx, sha256_hex};
use depot::wire::{PackageEntity, PackageFileEntity};
use futures::StreamExt;
use reqwest::Method;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Requests the end check keeps in flight.
const IN_FLIGHT: usize = 64;

/// A file as the registry lists it at the end.
struct Listed {
    coord: Coord,
    file: PackageFileEntity,
}

/// Check the registry against the model; returns what was checked and any violations.
pub async fn verify(ctx: Arc<Ctx>, stats: &mut Stats) -> (EndCheck, Vec<String>) {
    let mut problems = Vec::new();
    let Some(listed) = list_everything(&ctx, stats, &mut problems).await else {
        return (EndCheck::default(), problems);
    };
    let mut end = EndCheck::default();
    compare(&ctx.model(), &listed, &mut end, &mut problems);
    let mut by_coord: BTreeMap<Coord, Vec<PackageFileEntity>> = BTreeMap::new();
    for l in listed.into_values() {
        by_coord.entry(l.coord).or_default().push(l.file);
    }
    // Coordinates with nothing listed must answer 404 as well.
    for coord in &ctx.model().coords {
        by_coord.entry(coord.clone()).or_default();
    }
    end.coordinates = by_coord.values().filter(|f| !f.is_empty()).count() as u64;
    let peels = futures::stream::iter(by_coord)
        .map(|(coord, files)| {
            let ctx = ctx.clone();
            async move { peel(&ctx, coord, files).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    for (peeled, peel_stats, peel_problems) in peels {
        end.files_verified += peeled.files_verified;
        end.bytes_verified += peeled.bytes_verified;
        end.gone_coordinates += peeled.gone_coordinates;
        stats.merge(peel_stats);
        problems.extend(peel_problems);
    }
    end.gone_packages = deleted_packages_gone(&ctx, stats, &mut problems).await;
    end.deleted_at_end = crate::ids::never_reused(&ctx, stats, &mut problems).await;
    (end, problems)
}

/// Every file of every listed package, by file id.
async fn list_everything(
    ctx: &Ctx,
    stats: &mut Stats,
    problems: &mut Vec<String>,
) -> Option<HashMap<i64, Listed>> {
    let packages: Vec<PackageEntity> = all_pages(ctx, stats, "packages", problems).await?;
    let mut listed = HashMap::new();
    for p in packages {
        let files: Vec<PackageFileEntity> = all_pages(
            ctx,
            stats,
            &format!("packages/{}/package_files", p.id),
            problems,
        )
        .await?;
        for file in files {
            let coord = (p.name.clone(), p.version.clone(), file.file_name.clone());
            listed.insert(file.id, Listed { coord, file });
        }
    }
    Some(listed)
}

/// Every page (100 a page) of a project list.
async fn all_pages<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    stats: &mut Stats,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<Vec<T>> {
    let mut items = Vec::new();
    let mut page = 1u64;
    loop {
        let url = ctx.url(&format!("{what}?per_page=100&page={page}"));
        let answer = ctx.send(stats, Kind::Verify, Method::GET, &url, None).await;
        let parsed = answer
            .filter(|a| a.status == 200)
            .and_then(|a| Some((serde_json::from_slice::<Vec<T>>(&a.body).ok()?, a.headers)));
        let Some((mut got, headers)) = parsed else {
            problems.push(format!("end check: {url} did not answer a list"));
            return None;
        };
        items.append(&mut got);
        let next = headers
            .get("x-next-page")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        match next {
            Some(n) if n > page => page = n,
            _ => return Some(items),
        }
    }
}

/// The listing against the model: live files listed as published, deleted ones absent, no
/// file the model does not know.
fn compare(
    model: &Model,
    listed: &HashMap<i64, Listed>,
    end: &mut EndCheck,
    out: &mut Vec<String>,
) {
    for (id, f) in &model.files {
        match (f.fate, listed.get(id)) {
            (Fate::Live, None) => {
                out.push(format!("lost: file {id} at {:?} is not listed", f.coord))
            }
            (Fate::Deleted, Some(_)) => out.push(format!(
                "deleted file {id} at {:?} is still listed",
                f.coord
            )),
            (Fate::Either, None) => end.either_gone += 1,
            (Fate::Either, Some(_)) => end.either_kept += 1,
            _ => {}
        }
        if let Some(l) = listed.get(id) {
            let got = (
                &l.coord,
                l.file.package_id,
                l.file.file_sha256.as_str(),
                l.file.size,
            );
            if got != (&f.coord, f.package_id, f.sha256.as_str(), f.size) {
                out.push(format!(
                    "file {id} listed as {got:?}, published as {:?}",
                    (&f.coord, f.package_id, &f.sha256, f.size)
                ));
            }
        }
    }
    for (id, l) in listed {
        if !model.files.contains_key(id) {
            out.push(format!("file {id} at {:?} was never answered 201", l.coord));
        }
    }
}

/// At one coordinate: download the newest file and check its bytes, delete it, and go on
/// with the next newest; at the end the coordinate answers 404.
async fn peel(
    ctx: &Ctx,
    coord: Coord,
    mut files: Vec<PackageFileEntity>,
) -> (EndCheck, Stats, Vec<String>) {
    let (mut end, mut stats, mut problems) = (EndCheck::default(), Stats::default(), Vec::new());
    files.sort_by_key(|f| std::cmp::Reverse(f.id));
    let url = ctx.file_url(&coord);
    for file in &files {
        let answer = ctx
            .send(&mut stats, Kind::Verify, Method::GET, &url, None)
            .await;
        let Some(answer) = answer.filter(|a| a.status == 200) else {
            problems.push(format!(
                "lost: GET {coord:?} did not serve file {}",
                file.id
            ));
            break;
        };
        let sha256 = sha256_hex(&answer.body);
        if sha256 != file.file_sha256 {
            problems.push(format!(
                "corrupted: GET {coord:?} served {sha256} for file {} ({})",
                file.id, file.file_sha256
            ));
            break;
        }
        end.files_verified += 1;
        end.bytes_verified += answer.body.len() as u64;
        let delete = ctx.url(&format!(
            "packages/{}/package_files/{}",
            file.package_id, file.id
        ));
        let deleted = ctx
            .send(&mut stats, Kind::Verify, Method::DELETE, &delete, None)
            .await;
        if deleted.is_none_or(|a| a.status != 204) {
            problems.push(format!("end check: DELETE of file {} failed", file.id));
            break;
        }
    }
    let gone = ctx
        .send(&mut stats, Kind::Verify, Method::GET, &url, None)
        .await;
    match gone.map(|a| a.status) {
        Some(404) => end.gone_coordinates += u64::from(end.files_verified == 0),
        other => problems.push(format!(
            "GET {coord:?} answered {other:?} once every file was deleted"
        )),
    }
    (end, stats, problems)
}

/// Packages deleted during the load answer 404; returns how many did.
async fn deleted_packages_gone(ctx: &Arc<Ctx>, stats: &mut Stats, out: &mut Vec<String>) -> u64 {
    let deleted: Vec<i64> = {
        let model = ctx.model();
        let gone = model.packages.iter().filter(|(_, p)| p.deleted.is_some());
        gone.map(|(id, _)| *id).collect()
    };
    let answers = futures::stream::iter(deleted)
        .map(|id| {
            let ctx = ctx.clone();
            async move {
                let mut stats = Stats::default();
                let url = ctx.url(&format!("packages/{id}"));
                let answer = ctx
                    .send(&mut stats, Kind::Verify, Method::GET, &url, None)
                    .await;
                (id, answer.map(|a| a.status), stats)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    let mut count = 0;
    for (id, status, answer_stats) in answers {
        stats.merge(answer_stats);
        match status {
            Some(404) => count += 1,
            other => out.push(format!("deleted package {id} answered {other:?}")),
        }
    }
    count
}
