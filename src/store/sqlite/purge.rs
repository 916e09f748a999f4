//! `PurgeStore` on SQLite: what deletes left behind (rows pending destruction), whether a blob
//! is still named by another file, and forgetting purged rows for good.

use super::rows::{DOOMED, FILE_COLS, PACKAGE_COLS, file_row, package_row};
use super::{Cached, SqliteMetaStore, db_err};
use crate::domain::{Package, PackageFile};
use crate::store::{PurgeStore, StoreResult};
use async_trait::async_trait;
use rusqlite::params;

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
            c.query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM package_files WHERE blob_key = ?1 AND id != ?2)",
                params![key, id],
                |r| r.get::<_, bool>(0),
            )
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

    async fn forget_package(&self, package: &Package) -> StoreResult<()> {
        let id = package.id;
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            tx.execute_cached("DELETE FROM package_files WHERE package_id = ?1", [id])
                .map_err(db_err)?;
            tx.execute_cached("DELETE FROM packages WHERE id = ?1", [id])
                .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }
}
