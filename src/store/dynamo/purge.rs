//! `PurgeStore` on DynamoDB: the purge queue under `PURGE`, blob references counted per blob,
//! and forgetting purged records in transactions of up to [`TRANSACTION_ITEMS`] deletes; a pass
//! reads and forgets [`PURGE_IN_FLIGHT`] records at once.

use super::DynamoMetaStore;
use super::items::{
    blob_ref_of, file_from, purge_entry_of, purged_file_key, purged_package_id, rank_key,
};
use super::keys::{Key, Partition};
use super::limits::{BATCH_GET_KEYS, PURGE_PAGE_ITEMS, TRANSACTION_ITEMS};
use super::schema::Item;
use crate::domain::{Package, PackageFile};
use crate::store::aws::sdk_failure;
use crate::store::{PackageStore, PurgeStore, StoreResult};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashSet;

/// Reads or deletes of one purge pass in flight at once: one after another, a pass of 100
/// packages took 10 to 25 s under the soak's load and fell behind the deletes.
const PURGE_IN_FLIGHT: usize = 8;

impl DynamoMetaStore {
    /// The queue entries of `queue` (packages or files), at most `limit`.
    async fn purge_queue(&self, queue: Partition, limit: usize) -> StoreResult<Vec<Item>> {
        let out = self
            .query(&queue)
            .limit(limit.clamp(1, PURGE_PAGE_ITEMS) as i32)
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(out.items.unwrap_or_default())
    }

    /// Delete `keys` in transactions of up to [`TRANSACTION_ITEMS`] items.
    async fn delete_all(&self, keys: Vec<Key>) -> StoreResult<()> {
        for batch in keys.chunks(TRANSACTION_ITEMS) {
            let mut tx = self.transaction();
            for key in batch {
                tx.delete((), key, None)?;
            }
            // Deletes carry no condition: a cancellation is a conflict or throttling.
            self.run(tx).await?.map_err(|c| c.into_error())?;
        }
        Ok(())
    }
}

#[async_trait]
impl PurgeStore for DynamoMetaStore {
    async fn doomed(&self, limit: usize) -> StoreResult<(Vec<Package>, Vec<PackageFile>)> {
        let mut packages = Vec::new();
        for entry in self.purge_queue(Partition::purge_packages(), limit).await? {
            match self.package_by_id(purged_package_id(&entry)?).await? {
                Some(p) => packages.push(p),
                // Already forgotten: only the queue entry is left.
                None => self.delete_all(vec![Key::of(&entry)?]).await?,
            }
        }
        let entries = self
            .purge_queue(Partition::purge_files(), limit.min(BATCH_GET_KEYS))
            .await?;
        let keys = entries
            .iter()
            .map(purged_file_key)
            .collect::<StoreResult<Vec<_>>>()?;
        let items = self.batch_get(keys.clone()).await?;
        let found = items
            .iter()
            .map(Key::of)
            .collect::<StoreResult<HashSet<_>>>()?;
        // A file forgotten with its package leaves its entry behind; left, such entries
        // would fill the head of the queue and stop every later file's purge.
        let spent: Vec<Key> = entries
            .iter()
            .zip(&keys)
            .filter(|(_, key)| !found.contains(*key))
            .map(|(entry, _)| Key::of(entry))
            .collect::<StoreResult<_>>()?;
        if !spent.is_empty() {
            self.delete_all(spent).await?;
        }
        let files = items
            .iter()
            .map(file_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((packages, files))
    }

    async fn all_files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>> {
        let mut files = self
            .files_newest_first(package_id, None, true, None)
            .await?;
        files.sort_by_key(|f| f.id);
        Ok(files)
    }

    async fn blob_shared(&self, file: &PackageFile) -> StoreResult<bool> {
        let own = Key::blob_ref(&file.blob_key, file.id);
        // Its own reference and at most one other tell.
        let out = self
            .query(&Partition::blob_refs(&file.blob_key))
            .limit(2)
            .send()
            .await
            .map_err(sdk_failure)?;
        for item in out.items() {
            if Key::of(item)? != own {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn forget_file(&self, file: &PackageFile) -> StoreResult<()> {
        self.delete_all(vec![
            Key::file(file.package_id, &file.file_name, file.id),
            Key::file_downloads(file.package_id, file.id),
            Key::blob_ref(&file.blob_key, file.id),
            Key::purge_file(file.id),
        ])
        .await
    }

    async fn forget_package(&self, package: &Package) -> StoreResult<()> {
        // Whatever is left under the package (file items, name guards), then the package.
        let request = self
            .query(&Partition::package_contents(package.id))
            .projection_expression("PK, SK, blob_key, id");
        let mut keys = Vec::new();
        for item in self.query_all(request).await? {
            keys.push(Key::of(&item)?);
            keys.extend(blob_ref_of(&item)?);
            // A file deleted before its package was queued on its own too.
            if let Some(file) = purge_entry_of(&item)? {
                keys.push(file);
            }
        }
        keys.push(rank_key(package));
        keys.push(Key::deleted_package(package.project_id, package.id));
        keys.push(Key::package_id(package.id));
        keys.push(Key::purge_package(package.id));
        self.delete_all(keys).await
    }

    async fn all_files_of_packages(&self, package_ids: &[i64]) -> StoreResult<Vec<PackageFile>> {
        let reads: Vec<_> = package_ids
            .iter()
            .map(|&id| self.all_files_of(id))
            .collect();
        let lists: Vec<Vec<PackageFile>> = futures::stream::iter(reads)
            .buffered(PURGE_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(lists.into_iter().flatten().collect())
    }

    async fn shared_blobs(&self, files: &[PackageFile]) -> StoreResult<HashSet<i64>> {
        let reads: Vec<_> = files.iter().map(|f| self.blob_shared(f)).collect();
        let shared: Vec<bool> = futures::stream::iter(reads)
            .buffered(PURGE_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(files
            .iter()
            .zip(shared)
            .filter(|(_, shared)| *shared)
            .map(|(f, _)| f.id)
            .collect())
    }

    async fn forget(&self, packages: &[Package], files: &[PackageFile]) -> StoreResult<()> {
        let files: Vec<_> = files.iter().map(|f| self.forget_file(f)).collect();
        in_flight(files).await?;
        let packages: Vec<_> = packages.iter().map(|p| self.forget_package(p)).collect();
        in_flight(packages).await
    }
}

/// Run `writes`, [`PURGE_IN_FLIGHT`] at a time; the first failure ends it.
async fn in_flight<F>(writes: Vec<F>) -> StoreResult<()>
where
    F: std::future::Future<Output = StoreResult<()>>,
{
    futures::stream::iter(writes)
        .buffer_unordered(PURGE_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
