//! The soak's load: workers that each, until the deadline, publish (random bytes of 1 KiB to
//! 2 MiB, log-uniform, to a small space of names, versions and file names, so packages fill up
//! and duplicates happen; now and then the very bytes of an earlier publish), download (a live
//! file, or any coordinate ever sent to, checking the SHA-256 of the body), list (every page
//! of the project's packages, then one package's files) and delete (a file or a whole
//! package), telling the model what each answer means.

use crate::model::{Coord, Fate, FileRec, Model, Target};
use crate::report::{Kind, Stats};
use bytes::Bytes;
use depot::wire::{PackageEntity, PackageFileEntity, PackageFileRecord};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use reqwest::{Method, StatusCode};
use sha2::Digest;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The publish space: packages `soak-0..NAMES` at versions `1.0.0..VERSIONS`, files
/// `f0..FILES.bin` in each.
const NAMES: u32 = 16;
const VERSIONS: u32 = 4;
const FILES: u32 = 8;
const MIN_SIZE: f64 = 1024.0;
/// 2 MiB = 1 KiB × 2^11.
const SIZE_DOUBLINGS: f64 = 11.0;
/// Random bytes files are cut from (each file starts with 16 fresh random bytes of its own).
const POOL: usize = 4 << 20;
/// Pages of the package list one list walks at most.
const MAX_PAGES: u32 = 50;

/// What every worker shares.
pub struct Ctx {
    pub client: reqwest::Client,
    pub base: String,
    pub project: i64,
    pub token: String,
    pub model: Mutex<Model>,
    pool: Vec<u8>,
    requests: AtomicU64,
}

/// An answer: status and body, or why there was none.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

impl Ctx {
    pub fn new(base: String, project: i64, token: String) -> Self {
        let mut pool = vec![0u8; POOL];
        rand::thread_rng().fill_bytes(&mut pool);
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .unwrap();
        Self {
            client,
            base,
            project,
            token,
            model: Mutex::new(Model::new()),
            pool,
            requests: AtomicU64::new(0),
        }
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap()
    }

    /// `/api/v4/projects/:id/<rest>` on the server.
    pub fn url(&self, rest: &str) -> String {
        format!("{}/api/v4/projects/{}/{rest}", self.base, self.project)
    }

    pub fn file_url(&self, (name, version, file): &Coord) -> String {
        self.url(&format!("packages/generic/{name}/{version}/{file}"))
    }

    /// Send one request with the token, read the whole answer, record it in `stats`.
    pub async fn send(
        &self,
        stats: &mut Stats,
        kind: Kind,
        method: Method,
        url: &str,
        body: Option<Bytes>,
    ) -> Option<Answer> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let mut request = self
            .client
            .request(method, url)
            .header("PRIVATE-TOKEN", &self.token);
        if let Some(body) = body {
            request = request.body(body);
        }
        let answer = async {
            let response = request.send().await?;
            let (status, headers) = (response.status().as_u16(), response.headers().clone());
            Ok::<_, reqwest::Error>(Answer {
                status,
                headers,
                body: response.bytes().await?,
            })
        }
        .await;
        let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        match answer {
            Ok(a) => {
                stats.record(kind, micros, Ok(a.status));
                Some(a)
            }
            Err(e) => {
                stats.record(kind, micros, Err(format!("{url}: {e}")));
                None
            }
        }
    }

    /// A file's bytes: 16 random bytes, then a random cut of the pool; log-uniform size.
    fn fresh_bytes(&self, rng: &mut StdRng) -> Bytes {
        let size = (MIN_SIZE * (rng.r#gen::<f64>() * SIZE_DOUBLINGS).exp2()) as usize;
        let size = size.clamp(1024, 2 << 20);
        let offset = rng.gen_range(0..=POOL - size);
        let mut bytes = Vec::with_capacity(size);
        bytes.extend_from_slice(&rng.r#gen::<[u8; 16]>());
        bytes.extend_from_slice(&self.pool[offset + 16..offset + size]);
        bytes.into()
    }
}

/// One worker's loop until `deadline`; returns what it sent and got.
pub async fn worker(ctx: Arc<Ctx>, seed: u64, deadline: Instant) -> Stats {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut stats = Stats::default();
    let mut last: Option<Bytes> = None;
    while Instant::now() < deadline {
        match rng.gen_range(0..100) {
            0..40 => {
                // One publish in twenty sends the bytes of this worker's previous one again.
                let body = match last.take() {
                    Some(b) if rng.gen_bool(0.05) => b,
                    _ => ctx.fresh_bytes(&mut rng),
                };
                publish(&ctx, &mut stats, &mut rng, body.clone()).await;
                last = Some(body);
            }
            40..75 => download(&ctx, &mut stats, &mut rng).await,
            75..87 => list(&ctx, &mut stats, &mut rng).await,
            87..95 => delete_file(&ctx, &mut stats, &mut rng).await,
            _ => delete_package(&ctx, &mut stats, &mut rng).await,
        }
    }
    stats
}

async fn publish(ctx: &Ctx, stats: &mut Stats, rng: &mut StdRng, body: Bytes) {
    let coord = (
        format!("soak-{}", rng.gen_range(0..NAMES)),
        format!("1.0.{}", rng.gen_range(0..VERSIONS)),
        format!("f{}.bin", rng.gen_range(0..FILES)),
    );
    let sha256 = sha256_hex(&body);
    let size = body.len() as u64;
    ctx.model().sending(&coord, &sha256);
    let url = format!("{}?select=package_file", ctx.file_url(&coord));
    let sent = Instant::now();
    let Some(answer) = ctx
        .send(stats, Kind::Publish, Method::PUT, &url, Some(body))
        .await
    else {
        return;
    };
    if answer.status != StatusCode::OK.as_u16() {
        return;
    }
    let answered = Instant::now();
    let record: PackageFileRecord = match serde_json::from_slice(&answer.body) {
        Ok(r) => r,
        Err(e) => {
            let what = format!("publish of {coord:?}: 201 with a body that is no record: {e}");
            return ctx.model().violation(what);
        }
    };
    let mut model = ctx.model();
    if (record.file_sha256.as_str(), record.size) != (sha256.as_str(), size) {
        let what = format!(
            "publish of {coord:?} recorded {} ({} B), sent {sha256} ({size} B)",
            record.file_sha256, record.size
        );
        model.violation(what);
    }
    model.published(FileRec {
        id: record.id,
        package_id: record.package_id,
        coord,
        sha256,
        size,
        published: (sent, answered),
        fate: Fate::Live,
    });
}

async fn download(ctx: &Ctx, stats: &mut Stats, rng: &mut StdRng) {
    let coord = {
        let model = ctx.model();
        let live = rng.gen_bool(0.9).then(|| model.pick_live_file(rng));
        match live.flatten() {
            Some(file) => file.coord,
            None => match model.pick_coord(rng) {
                Some(coord) => coord,
                None => return,
            },
        }
    };
    let sent = Instant::now();
    let url = ctx.file_url(&coord);
    let Some(answer) = ctx
        .send(stats, Kind::Download, Method::GET, &url, None)
        .await
    else {
        return;
    };
    let answered = Instant::now();
    match answer.status {
        200 => {
            let sha256 = sha256_hex(&answer.body);
            let mut model = ctx.model();
            let said = answer.headers.get("x-checksum-sha256");
            if said.and_then(|v| v.to_str().ok()) != Some(sha256.as_str()) {
                let what = format!("GET {coord:?}: body {sha256}, X-Checksum-SHA256 {said:?}");
                model.violation(what);
            }
            model.check_body(&coord, &sha256);
        }
        404 => ctx.model().check_not_found(&coord, sent, answered),
        _ => {}
    }
}

/// Every page of the project's packages (20 a page), then one listed package's files.
async fn list(ctx: &Ctx, stats: &mut Stats, rng: &mut StdRng) {
    let mut listed = Vec::new();
    let mut page = 1;
    while page <= MAX_PAGES {
        let url = ctx.url(&format!("packages?per_page=20&page={page}"));
        let Some(answer) = ctx.send(stats, Kind::List, Method::GET, &url, None).await else {
            return;
        };
        if answer.status != 200 {
            return;
        }
        let Ok(packages) = serde_json::from_slice::<Vec<PackageEntity>>(&answer.body) else {
            return ctx
                .model()
                .violation(format!("{url}: not a list of packages"));
        };
        check_packages(ctx, &packages);
        listed.extend(packages.iter().map(|p| p.id));
        let next = answer
            .headers
            .get("x-next-page")
            .and_then(|v| v.to_str().ok());
        match next.and_then(|n| n.parse().ok()) {
            Some(n) if n > page => page = n,
            _ => break,
        }
    }
    if listed.is_empty() {
        return;
    }
    let id = listed[rng.gen_range(0..listed.len())];
    let url = ctx.url(&format!("packages/{id}/package_files?per_page=100"));
    let Some(answer) = ctx.send(stats, Kind::Files, Method::GET, &url, None).await else {
        return;
    };
    if answer.status == 200 {
        check_files(ctx, &answer.body, &url);
    }
}

/// Listed packages have the name and version their files were published under.
fn check_packages(ctx: &Ctx, packages: &[PackageEntity]) {
    let mut model = ctx.model();
    for p in packages {
        let known = model.packages.get(&p.id).map(|k| (&k.name, &k.version));
        if let Some((name, version)) = known
            && (name, version) != (&p.name, &p.version)
        {
            let what = format!(
                "package {} listed as {}/{}, published as {name}/{version}",
                p.id, p.name, p.version
            );
            model.violation(what);
        }
    }
}

fn check_files(ctx: &Ctx, body: &[u8], url: &str) {
    let Ok(files) = serde_json::from_slice::<Vec<PackageFileEntity>>(body) else {
        return ctx.model().violation(format!("{url}: not a list of files"));
    };
    let mut model = ctx.model();
    for f in files {
        model.check_listed(f.id, f.package_id, &f.file_sha256, f.size);
    }
}

async fn delete_file(ctx: &Ctx, stats: &mut Stats, rng: &mut StdRng) {
    let Some(file) = ctx.model().pick_live_file(rng) else {
        return;
    };
    let sent = Instant::now();
    ctx.model().deleting(Target::File(file.id), sent);
    let url = ctx.url(&format!(
        "packages/{}/package_files/{}",
        file.package_id, file.id
    ));
    let answer = ctx
        .send(stats, Kind::DeleteFile, Method::DELETE, &url, None)
        .await;
    if answer.is_some_and(|a| a.status == 204) {
        ctx.model().file_deleted(file.id);
    }
}

async fn delete_package(ctx: &Ctx, stats: &mut Stats, rng: &mut StdRng) {
    let Some(id) = ctx.model().pick_live_package(rng) else {
        return;
    };
    let sent = Instant::now();
    ctx.model().deleting(Target::Package(id), sent);
    let url = ctx.url(&format!("packages/{id}"));
    let answer = ctx
        .send(stats, Kind::DeletePackage, Method::DELETE, &url, None)
        .await;
    if answer.is_some_and(|a| a.status == 204) {
        ctx.model().package_deleted(id, sent, Instant::now());
    }
}
