//! `PurgeStore` on SQLite: what deletes left behind (rows pending destruction), whether a blob
//! is still named by another file, and forgetting purged rows for good; each of the purge's
//! questions and its forgetting asked once per pass, in one call.

use super::rows::{DOOMED, FILE_COLS, PACKAGE_COLS, file_row, package_row};
use super::{Cached, SqliteMetaStore, db_err};
use crate::domain::{Package, PackageFile};
use crate::store::{PurgeStore, StoreResult};
use async_trait::async_trait;
use rusqlite::{Connection, params};
use std::collections::HashSet;

#[async_trait]
impl PurgeStore for SqliteMetaStore {
    async fn doomed(&self, limit: usize) -> StoreResult<(Vec<Package>, Vec<PackageFile>)> {
        let limit = limit as i64;
        self.call(move |c| {
            let packages = c
                .query_all_cached(
                    &format!(
                        "SELECT {PACKAGE_COLS} FROM packages WHERE status = '{DOOMED}' \
                         ORDER BY id LIMIT ?1"
                    ),
                    [limit],
                    package_row,
                )
                .map_err(db_err)?;
            let files = c
                .query_all_cached(
                    &format!(
                        "SELECT {FILE_COLS} FROM package_files WHERE status = '{DOOMED}' \
                         ORDER BY id LIMIT ?1"
                    ),
                    [limit],
                    file_row,
                )
                .map_err(db_err)?;
            Ok((packages, files))
        })
        .await
    }

    async fn all_files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>> {
        self.read(move |c| {
            c.query_all_cached(
                &format!("SELECT {FILE_COLS} FROM package_files WHERE package_id = ?1 ORDER BY id"),
                [package_id],
                file_row,
            )
            .map_err(db_err)
        })
        .await
    }

    async fn blob_shared(&self, file: &PackageFile) -> StoreResult<bool> {
        let (id, key) = (file.id, file.blob_key.clone());
        self.read(move |c| {
            c.query_row_cached(SHARED, params![key, id], |r| r.get::<_, bool>(0))
                .map_err(db_err)
        })
        .await
    }

    async fn forget_file(&self, file: &PackageFile) -> StoreResult<()> {
        let id = file.id;
        self.call(move |c| {
            c.execute_cached("DELETE FROM package_files WHERE id = ?1", [id])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn all_files_of_packages(&self, package_ids: &[i64]) -> StoreResult<Vec<PackageFile>> {
        let ids = package_ids.to_vec();
        self.read(move |c| {
            let mut files = Vec::new();
            for id in ids {
                files.extend(
                    c.query_all_cached(
                        &format!(
                            "SELECT {FILE_COLS} FROM package_files WHERE package_id = ?1 \
                             ORDER BY id"
                        ),
                        [id],
                        file_row,
                    )
                    .map_err(db_err)?,
                );
            }
            Ok(files)
        })
        .await
    }

    async fn shared_blobs(&self, files: &[PackageFile]) -> StoreResult<HashSet<i64>> {
        let files: Vec<(i64, String)> = files.iter().map(|f| (f.id, f.blob_key.clone())).collect();
        self.read(move |c| {
            let mut shared = HashSet::new();
            for (id, key) in files {
                if c.query_row_cached(SHARED, params![key, id], |r| r.get::<_, bool>(0))
                    .map_err(db_err)?
                {
                    shared.insert(id);
                }
            }
            Ok(shared)
        })
        .await
    }

    /// One transaction for the whole pass.
    async fn forget(&self, packages: &[Package], files: &[PackageFile]) -> StoreResult<()> {
        let files: Vec<i64> = files.iter().map(|f| f.id).collect();
        let packages: Vec<i64> = packages.iter().map(|p| p.id).collect();
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            for id in files {
                tx.execute_cached("DELETE FROM package_files WHERE id = ?1", [id])
                    .map_err(db_err)?;
            }
            for id in packages {
                forget_package_in(&tx, id)?;
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn forget_package(&self, package: &Package) -> StoreResult<()> {
        let id = package.id;
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            forget_package_in(&tx, id)?;
            tx.commit().map_err(db_err)
        })
        .await
    }
}

/// Whether a record other than file `?2` names blob `?1` (never an inline key: the partial
/// index by blob key holds the others only, and this condition is what lets SQLite use it).
pub(super) const SHARED: &str = "SELECT EXISTS (SELECT 1 FROM package_files \
    WHERE blob_key = ?1 AND blob_key NOT LIKE 'inline/%' AND id != ?2)";

/// Remove package `id`'s record and every file record it holds.
fn forget_package_in(c: &Connection, id: i64) -> StoreResult<()> {
    c.execute_cached("DELETE FROM package_files WHERE package_id = ?1", [id])
        .map_err(db_err)?;
    c.execute_cached("DELETE FROM packages WHERE id = ?1", [id])
        .map_err(db_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::migrations::migrate;
    use super::super::rows::{DOOMED, PACKAGE_COLS};
    use super::SHARED;
    use rusqlite::Connection;

    /// SQLite's plan for `sql`, one line per step.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        steps.join("\n")
    }

    /// The partial indexes that spare a publish two index writes still serve the purge's
    /// questions: doomed packages and files in id order, and whether a blob is shared.
    #[test]
    fn the_purge_reads_by_the_partial_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("plan.sqlite3")).unwrap();
        migrate(&mut conn).unwrap();
        let doomed = format!(
            "SELECT {PACKAGE_COLS} FROM packages WHERE status = '{DOOMED}' ORDER BY id LIMIT 5"
        );
        assert!(
            plan(&conn, &doomed).contains("INDEX packages_doomed"),
            "{}",
            plan(&conn, &doomed)
        );
        let files =
            format!("SELECT id FROM package_files WHERE status = '{DOOMED}' ORDER BY id LIMIT 5");
        assert!(
            plan(&conn, &files).contains("INDEX package_files_doomed"),
            "{}",
            plan(&conn, &files)
        );
        let shared = SHARED.replace("?1", "'blobs/x'").replace("?2", "1");
        assert!(
            plan(&conn, &shared).contains("INDEX package_files_by_blob"),
            "{}",
            plan(&conn, &shared)
        );
        // Publishing a small file writes neither index.
        let indexed = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(
            indexed("SELECT count(*) FROM sqlite_master WHERE name LIKE '%by_status'"),
            0
        );
    }
}
