//! `PackageStore` on SQLite: publishing (find-or-create the package and add the file in one
//! immediate transaction), finding, listing and deleting packages and files.

use super::events::{record, with_event};
use super::rows::{
    DOOMED, FILE_COLS, PACKAGE_COLS, file_row, package_and_file_row, package_row, qualified,
};
use super::{Cached, SqliteMetaStore, db_err};
use crate::domain::{
    COUNT_LIMIT, Downloads, Event, FileName, Listed, NewFile, Package, PackageFile, PackageName,
    PackageOrder, PackageQuery, PackageStatus, PackageVersion, Project, Timestamp, VersionRef,
};
use crate::store::{PackageStore, Record, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::LazyLock;

/// The largest file kept in its row: SQLite reads and writes blobs of this size about as fast
/// as the file system (or faster), and the WAL holds each until its checkpoint.
const INLINE_FILE_MAX: u64 = 1 << 20;

/// The live package (project, name, version), if there is one.
fn live_package(
    conn: &Connection,
    project_id: i64,
    name: &str,
    version: &str,
) -> rusqlite::Result<Option<Package>> {
    conn.query_row_cached(
        &format!(
            "SELECT {PACKAGE_COLS} FROM packages WHERE project_id = ?1 AND name = ?2 \
             AND version = ?3 AND status != '{DOOMED}'"
        ),
        params![project_id, name, version],
        package_row,
    )
    .optional()
}

/// The newest live file `file_name` of package `package_id`.
fn newest_live_file(
    conn: &Connection,
    package_id: i64,
    file_name: &str,
) -> rusqlite::Result<Option<PackageFile>> {
    conn.query_row_cached(
        &format!(
            "SELECT {FILE_COLS} FROM package_files WHERE package_id = ?1 AND file_name = ?2 \
             AND status != '{DOOMED}' ORDER BY id DESC LIMIT 1"
        ),
        params![package_id, file_name],
        file_row,
    )
    .optional()
}

/// Save `f`: its package found (and touched) or created, then its file added.
/// The rows of one publish, written in the transaction (or savepoint) `tx` is in; on an error
/// the caller rolls them back.
/// The live package `f` publishes into, as the publish leaves it (its status changed if `f`
/// asks for another), or a new one: written, its id the row's.
fn package_for(tx: &Connection, f: &NewFile) -> StoreResult<(Package, bool)> {
    let live =
        live_package(tx, f.project_id, f.name.as_str(), f.version.as_str()).map_err(db_err)?;
    Ok(match live {
        Some(live) => {
            if f.refuse_duplicate
                && newest_live_file(tx, live.id, f.file_name.as_str())
                    .map_err(db_err)?
                    .is_some()
            {
                return Err(StoreError::already_exists(
                    Record::File,
                    format!("{}/{}", live.id, f.file_name.as_str()),
                ));
            }
            let package = f.touch_package(live.clone());
            if package != live {
                tx.execute_cached(
                    "UPDATE packages SET status = ?2, updated_at = ?3 WHERE id = ?1",
                    params![
                        package.id,
                        package.status.as_str(),
                        package.updated_at.millis()
                    ],
                )
                .map_err(db_err)?;
            }
            (package, false)
        }
        None => {
            // The id is the row's, given by the insert.
            let package = f.new_package(0);
            tx.execute_cached(
                "INSERT INTO packages (project_id, name, version, status, created_at, \
                 updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    package.project_id,
                    package.name.as_str(),
                    package.version.as_str(),
                    package.status.as_str(),
                    package.created_at.millis(),
                    package.updated_at.millis()
                ],
            )
            .map_err(db_err)?;
            let id = tx.last_insert_rowid();
            (Package { id, ..package }, true)
        }
    })
}

pub(super) fn publish_rows(tx: &Connection, f: NewFile) -> StoreResult<(Package, PackageFile)> {
    let (package, created) = package_for(tx, &f)?;
    tx.execute_cached(
        "INSERT INTO package_files (package_id, file_name, size, sha256, blob_key, \
         created_at, updated_at, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
        params![
            package.id,
            f.file_name.as_str(),
            f.size as i64,
            f.sha256,
            f.blob_key,
            f.now.millis(),
            f.content.as_deref()
        ],
    )
    .map_err(db_err)?;
    let file = f.file_record(tx.last_insert_rowid(), package.id);
    if let Some(claim) = &f.commits {
        let settled = tx
            .execute_cached(
                "UPDATE upload_sessions SET state = 'committed', package_id = ?2, file_id = ?3, \
                 claim_until = NULL WHERE id = ?1 AND state = 'committing' AND claim_until = ?4",
                params![claim.session_id, package.id, file.id, claim.until.millis()],
            )
            .map_err(db_err)?;
        if settled == 0 {
            // Dropping the transaction rolls the publish back.
            return Err(StoreError::claim_lost(&claim.session_id));
        }
    }
    record(tx, &Event::published(&f.event, created, &package, &file))?;
    Ok((package, file))
}

/// The SQL of one page of a package list, the SQL counting its rows, and the values both
/// bind (`?1`, `?2`, ...).
fn list_sql(project_ids: &[i64], query: &PackageQuery) -> (String, String, Vec<Value>) {
    let mut args: Vec<Value> = Vec::new();
    let mut arg = |v: Value| {
        args.push(v);
        format!("?{}", args.len())
    };
    let ids = project_ids
        .iter()
        .map(|id| arg((*id).into()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut conditions = vec![
        format!("p.project_id IN ({ids})"),
        format!(
            "p.status = {}",
            arg(query.status.as_str().to_string().into())
        ),
    ];
    for word in &query.name_words {
        conditions.push(format!(
            "instr(lower(p.name), {}) > 0",
            arg(word.clone().into())
        ));
    }
    if let Some(version) = &query.version {
        conditions.push(format!("p.version = {}", arg(version.clone().into())));
    }
    let filter = conditions.join(" AND ");
    let dir = if query.descending { "DESC" } else { "ASC" };
    let order = match query.order {
        PackageOrder::CreatedAt | PackageOrder::Type => format!("p.created_at {dir}, p.id {dir}"),
        PackageOrder::Name => format!("p.name {dir}, p.version {dir}, p.id {dir}"),
        PackageOrder::Version => format!("p.version {dir}, p.id {dir}"),
        // GitLab orders a project's own packages newest id first, whichever the direction.
        PackageOrder::ProjectPath => format!("pr.path {dir}, p.id DESC"),
    };
    let cols = PACKAGE_COLS
        .split(", ")
        .map(|col| format!("p.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    let from = format!("FROM packages p JOIN projects pr ON pr.id = p.project_id WHERE {filter}");
    // One row past the page says whether a next page exists.
    let page = format!(
        "SELECT {cols} {from} ORDER BY {order} LIMIT {} OFFSET {}",
        query.page.per_page + 1,
        query.page.offset()
    );
    let count = format!(
        "SELECT COUNT(*) FROM (SELECT 1 {from} LIMIT {})",
        COUNT_LIMIT + 1
    );
    (page, count, args)
}

/// One page of the list `list_sql` made, counted up to [`COUNT_LIMIT`].
fn list_in(
    c: &Connection,
    query: &PackageQuery,
    sql: (String, String, Vec<Value>),
) -> StoreResult<Listed<Package>> {
    let (page, count, args) = sql;
    let args = || rusqlite::params_from_iter(args.iter());
    let mut items: Vec<Package> = c
        .prepare(&page)
        .and_then(|mut stmt| stmt.query_map(args(), package_row)?.collect())
        .map_err(db_err)?;
    let has_next = items.len() as u64 > query.page.per_page;
    items.truncate(query.page.per_page as usize);
    let counted: i64 = c.query_row(&count, args(), |r| r.get(0)).map_err(db_err)?;
    let counted = counted as u64;
    Ok(Listed {
        items,
        total: (counted <= COUNT_LIMIT).then_some(counted),
        has_next,
    })
}

impl SqliteMetaStore {
    /// Mark row `id` of `table` (`packages` or `package_files`, holding `what`) pending
    /// destruction; `NotFound` unless it was live.
    async fn mark_doomed(
        &self,
        (table, what): (&'static str, Record),
        id: i64,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<()> {
        let event = event.clone();
        self.call(move |c| {
            with_event(c, &event, |c| {
                let changed = c
                    .execute_cached(
                        &format!(
                            "UPDATE {table} SET status = ?3, updated_at = ?2 \
                         WHERE id = ?1 AND status != '{DOOMED}'"
                        ),
                        params![id, now.millis(), PackageStatus::PendingDestruction.as_str()],
                    )
                    .map_err(db_err)?;
                if changed == 0 {
                    return Err(StoreError::not_found(what, id));
                }
                Ok(())
            })
        })
        .await
    }
}

#[async_trait]
impl PackageStore for SqliteMetaStore {
    async fn live_file_exists(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<bool> {
        Ok(self
            .newest_file(project_id, name, version, file_name)
            .await?
            .is_some())
    }

    fn inline_file_max(&self) -> u64 {
        INLINE_FILE_MAX
    }

    async fn publish(&self, f: NewFile) -> StoreResult<(Package, PackageFile)> {
        let started = std::time::Instant::now();
        let published = self.publish_grouped(f).await;
        crate::telemetry::store_call(started.elapsed());
        published
    }

    async fn newest_file(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<Option<(Package, PackageFile)>> {
        let (name, version, file_name) = (
            name.as_str().to_string(),
            version.as_str().to_string(),
            file_name.as_str().to_string(),
        );
        // One statement, so one read transaction: each takes and drops SQLite's file locks,
        // which `perf` found among a download's costliest steps. Built once: every download
        // runs it.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}, {}, f.content FROM packages p JOIN package_files f \
                 ON f.package_id = p.id \
                 WHERE p.project_id = ?1 AND p.name = ?2 AND p.version = ?3 \
                 AND p.status != '{DOOMED}' AND f.file_name = ?4 AND f.status != '{DOOMED}' \
                 ORDER BY f.id DESC LIMIT 1",
                qualified("p", PACKAGE_COLS),
                qualified("f", FILE_COLS)
            )
        });
        self.read(move |c| {
            c.query_row_cached(
                &SQL,
                params![project_id, name, version, file_name],
                package_and_file_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn package_at(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
    ) -> StoreResult<Option<Package>> {
        let (name, version) = (name.as_str().to_string(), version.as_str().to_string());
        self.read(move |c| live_package(c, project_id, &name, &version).map_err(db_err))
            .await
    }

    /// All of them: one indexed query.
    async fn versions_of(
        &self,
        project_id: i64,
        name: &PackageName,
        _best: Option<usize>,
    ) -> StoreResult<Vec<VersionRef>> {
        let name = name.as_str().to_string();
        self.read(move |c| {
            let sql = format!(
                "SELECT {PACKAGE_COLS} FROM packages WHERE project_id = ?1 AND name = ?2 \
                 AND status != '{DOOMED}'"
            );
            let mut statement = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = statement
                .query_map(params![project_id, name], |r| {
                    package_row(r).map(|p| VersionRef::of(&p))
                })
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db_err)
        })
        .await
    }

    /// One transaction: the package's row, then each file's.
    async fn record_downloads(
        &self,
        package: &Package,
        at: Timestamp,
        counted: &Downloads,
    ) -> StoreResult<()> {
        let package_id = package.id;
        let counted = counted.clone();
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            tx.execute_cached(
                "UPDATE packages SET last_downloaded_at = ?2, \
                 download_count = download_count + ?3 WHERE id = ?1",
                params![package_id, at.millis(), counted.package as i64],
            )
            .map_err(db_err)?;
            for (file_id, _, count) in &counted.files {
                tx.execute_cached(
                    "UPDATE package_files SET download_count = download_count + ?2 WHERE id = ?1",
                    params![file_id, *count as i64],
                )
                .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn package_by_id(&self, id: i64) -> StoreResult<Option<Package>> {
        let sql = format!("SELECT {PACKAGE_COLS} FROM packages WHERE id = ?1");
        self.read_one(sql, id, package_row).await
    }

    async fn list_packages(
        &self,
        projects: &[Project],
        query: &PackageQuery,
    ) -> StoreResult<Listed<Package>> {
        if projects.is_empty() || !query.satisfiable {
            return Ok(Listed::empty());
        }
        let project_ids: Vec<i64> = projects.iter().map(|p| p.id).collect();
        let query = query.clone();
        self.call(move |c| list_in(c, &query, list_sql(&project_ids, &query)))
            .await
    }

    async fn files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>> {
        self.read(move |c| {
            c.query_all_cached(
                &format!(
                    "SELECT {FILE_COLS} FROM package_files WHERE package_id = ?1 \
                     AND status != '{DOOMED}'"
                ),
                [package_id],
                file_row,
            )
            .map_err(db_err)
        })
        .await
    }

    /// One grouped query for the whole page.
    async fn file_totals(&self, package_ids: &[i64]) -> StoreResult<Vec<(u64, u64)>> {
        if package_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = package_ids.to_vec();
        let found: std::collections::HashMap<i64, (u64, u64)> = self
            .read(move |c| {
                let list = vec!["?"; ids.len()].join(", ");
                let sql = format!(
                    "SELECT package_id, COUNT(*), COALESCE(SUM(size), 0) FROM package_files \
                     WHERE package_id IN ({list}) AND status != '{DOOMED}' GROUP BY package_id"
                );
                let mut statement = c.prepare(&sql).map_err(db_err)?;
                let rows = statement
                    .query_map(rusqlite::params_from_iter(ids.iter()), |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64),
                        ))
                    })
                    .map_err(db_err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(db_err)
            })
            .await?;
        Ok(package_ids
            .iter()
            .map(|id| found.get(id).copied().unwrap_or((0, 0)))
            .collect())
    }

    async fn delete_package(
        &self,
        package: &Package,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<()> {
        self.mark_doomed(("packages", Record::Package), package.id, now, event)
            .await
    }

    async fn delete_file(
        &self,
        _package: &Package,
        file: &PackageFile,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<()> {
        self.mark_doomed(("package_files", Record::File), file.id, now, event)
            .await
    }
}
