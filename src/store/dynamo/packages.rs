//! `PackageStore` on DynamoDB: lookups, downloads and deletes. Publishing is in `publish`,
//! lists in `lists`.

use super::items::{
    ALIAS_SLOT, DOOMED, DOWNLOAD_COUNT, EVENT, FILE_COUNT, FILE_STATUS, PackageItem,
    file_downloads_from, file_from, file_is_doomed, file_totals_of, item_kind, package_alias_slot,
    package_from, package_item, package_key, purge_file_item, purge_package_item, rank_from,
    with_event,
};
use super::keys::{Key, Partition};
use super::limits::{self, FILE_PAGE_ITEMS, INLINE_FILE_MAX, TRANSACTION_ATTEMPTS};
use super::publish::{STILL_LIVE, guard_unchanged, package_update};
use super::schema::{n, s};
use super::transaction::Condition;
use super::{DynamoMetaStore, conditional_failed};
use crate::domain::{
    Downloads, Event, FileName, Listed, NewFile, Package, PackageFile, PackageName, PackageQuery,
    PackageStatus, PackageVersion, Project, RankClass, Timestamp, VersionRef,
};
use crate::store::aws::sdk_failure;
use crate::store::{PackageStore, Record, StoreError, StoreResult};
use async_trait::async_trait;
use std::ops::ControlFlow;

/// The items of a package delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PackageDelete {
    /// The live item leaves its slot: its condition fails when the package is not live.
    Live,
    Doomed,
    Alias,
    Queued,
}

/// The items of a file delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileDelete {
    /// The file is marked doomed: its condition fails when it is not live.
    Mark,
    Queued,
    NameGuard,
    /// The package's totals, less the file: its condition fails when the package is no
    /// longer the live one or keeps no totals.
    Totals,
}

impl DynamoMetaStore {
    /// A name's rank entries of `class` (all, if none), highest first, at most `limit`.
    async fn ranked(
        &self,
        project_id: i64,
        name: &PackageName,
        class: Option<RankClass>,
        limit: Option<usize>,
    ) -> StoreResult<Vec<VersionRef>> {
        let request = self
            .query(&Partition::version_ranks(project_id, name, class))
            .consistent_read(false)
            .scan_index_forward(false)
            .set_limit(limit.map(|l| l.clamp(1, 1000) as i32));
        let mut found = Vec::new();
        self.for_each_item(request, |item| {
            found.push(rank_from(&item)?);
            let full = limit.is_some_and(|l| found.len() >= l);
            Ok(if full {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .await?;
        Ok(found)
    }

    /// One counting update of the item at `key` (`:n` the count, `:t` a time if given) under
    /// `condition` on its `id`; an item gone meanwhile has nothing to count.
    async fn add_downloads(
        &self,
        key: Key,
        update: String,
        time: Option<aws_sdk_dynamodb::types::AttributeValue>,
        condition: Option<&str>,
        (id, count): (i64, u64),
    ) -> StoreResult<()> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .update_expression(update)
            .set_condition_expression(condition.map(String::from))
            .expression_attribute_values(":n", n(count as i64))
            .expression_attribute_values(":id", n(id));
        if let Some(time) = time {
            request = request.expression_attribute_values(":t", time);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(sdk_failure(e)),
        }
    }

    pub(super) async fn live_package(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
    ) -> StoreResult<Option<Package>> {
        let slot = self.live_slot(project_id, name, version).await?;
        Ok(slot.map(|(package, _)| package))
    }

    /// The live package of a name/version slot, and whether its item keeps file totals.
    pub(super) async fn live_slot(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
    ) -> StoreResult<Option<(Package, bool)>> {
        let item = self.get(&Key::package(project_id, name, version)).await?;
        item.map(|i| Ok((package_from(&i)?, file_totals_of(&i).is_some())))
            .transpose()
    }

    /// Files of a package, newest first; `name`: only those with that name; `doomed`: those
    /// pending destruction too; at most `limit`.
    pub(super) async fn files_newest_first(
        &self,
        package_id: i64,
        name: Option<&FileName>,
        doomed: bool,
        limit: Option<usize>,
    ) -> StoreResult<Vec<PackageFile>> {
        let request = self
            .query(&Partition::files(package_id, name))
            .scan_index_forward(false)
            .set_limit(limit.map(|l| l.clamp(1, FILE_PAGE_ITEMS) as i32));
        let mut files = Vec::new();
        self.for_each_item(request, |item| {
            if doomed || !file_is_doomed(&item)? {
                files.push(file_from(&item)?);
                if limit.is_some_and(|l| files.len() >= l) {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(files)
    }
}

#[async_trait]
impl PackageStore for DynamoMetaStore {
    fn inline_file_max(&self) -> u64 {
        INLINE_FILE_MAX
    }

    async fn live_file_exists(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<bool> {
        let Some(package) = self.live_package(project_id, name, version).await? else {
            return Ok(false);
        };
        // The files themselves, not the name guard: direct publishes write no guard.
        let live = self
            .files_newest_first(package.id, Some(file_name), false, Some(1))
            .await?;
        Ok(!live.is_empty())
    }

    async fn publish(&self, f: NewFile) -> StoreResult<(Package, PackageFile)> {
        self.publish_file(f).await
    }

    async fn newest_file(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<Option<(Package, PackageFile)>> {
        let Some(package) = self.live_package(project_id, name, version).await? else {
            return Ok(None);
        };
        let newest = self
            .files_newest_first(package.id, Some(file_name), false, Some(1))
            .await?;
        Ok(newest.into_iter().next().map(|f| (package, f)))
    }

    async fn package_at(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
    ) -> StoreResult<Option<Package>> {
        self.live_package(project_id, name, version).await
    }

    /// The name's rank entries (written with each new package), eventually consistent: with
    /// `best`, the best of the releases and of the other versions (two Queries), and of the
    /// pre-releases only when there is neither; without, all of them.
    async fn versions_of(
        &self,
        project_id: i64,
        name: &PackageName,
        best: Option<usize>,
    ) -> StoreResult<Vec<VersionRef>> {
        let Some(best) = best else {
            return self.ranked(project_id, name, None, None).await;
        };
        let (mut releases, others) = futures::try_join!(
            self.ranked(project_id, name, Some(RankClass::Release), Some(best)),
            self.ranked(project_id, name, Some(RankClass::Other), Some(best)),
        )?;
        if releases.is_empty() && others.is_empty() {
            return self
                .ranked(project_id, name, Some(RankClass::PreRelease), Some(best))
                .await;
        }
        releases.extend(others);
        Ok(releases)
    }

    /// The package item's update, then each file's count item's, at once: one write per
    /// package and per file downloaded, for every download a process counted since its last
    /// flush.
    async fn record_downloads(
        &self,
        package: &Package,
        at: Timestamp,
        counted: &Downloads,
    ) -> StoreResult<()> {
        let slot = Key::package(package.project_id, &package.name, &package.version);
        let package_write = self.add_downloads(
            slot,
            format!("SET last_downloaded_at = :t ADD {DOWNLOAD_COUNT} :n"),
            Some(n(at.millis())),
            Some("attribute_exists(PK) AND id = :id"),
            (package.id, counted.package),
        );
        let file_writes = counted.files.iter().map(|(id, _, count)| {
            let key = Key::file_downloads(package.id, *id);
            let update = format!("SET id = :id ADD {DOWNLOAD_COUNT} :n");
            self.add_downloads(key, update, None, None, (*id, *count))
        });
        // The package first: if it fails nothing was written and the counts are kept for a
        // later try. A file's count that fails after it is dropped (logged), never counted
        // twice.
        package_write.await?;
        for (done, (id, _, count)) in futures::future::join_all(file_writes)
            .await
            .into_iter()
            .zip(&counted.files)
        {
            if let Err(e) = done {
                tracing::warn!(file_id = id, count, error = %e, "a file's download count was not written");
            }
        }
        Ok(())
    }

    async fn package_by_id(&self, id: i64) -> StoreResult<Option<Package>> {
        let Some(alias) = self.get(&Key::package_id(id)).await? else {
            return Ok(None);
        };
        let item = self.get(&package_alias_slot(&alias)?).await?;
        // The slot may hold a newer package of the same name and version by now.
        Ok(item
            .map(|i| package_from(&i))
            .transpose()?
            .filter(|p| p.id == id))
    }

    async fn list_packages(
        &self,
        projects: &[Project],
        query: &PackageQuery,
    ) -> StoreResult<Listed<Package>> {
        Ok(self.list_page(projects, query).await?.map(|(p, _)| p))
    }

    /// The totals the package items keep; a package made before they were kept has its
    /// files read.
    async fn list_with_totals(
        &self,
        projects: &[Project],
        query: &PackageQuery,
    ) -> StoreResult<Listed<(Package, (u64, u64))>> {
        let listed = self.list_page(projects, query).await?;
        let mut items = Vec::with_capacity(listed.items.len());
        for (package, totals) in listed.items {
            let totals = match totals {
                Some(totals) => totals,
                None => {
                    let files = self.files_of(package.id).await?;
                    (files.len() as u64, files.iter().map(|f| f.size).sum())
                }
            };
            items.push((package, totals));
        }
        Ok(Listed {
            items,
            total: listed.total,
            has_next: listed.has_next,
        })
    }

    /// One Query of the package's partition: its live files, with the downloads counted of
    /// each (kept beside them).
    async fn files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>> {
        let mut files = Vec::new();
        let mut counts = std::collections::HashMap::new();
        let request = self.query(&Partition::package_contents(package_id));
        self.for_each_item(request, |item| {
            match item_kind(&item)? {
                PackageItem::File if !file_is_doomed(&item)? => files.push(file_from(&item)?),
                PackageItem::Downloads => {
                    let (file_id, count) = file_downloads_from(&item)?;
                    counts.insert(file_id, count);
                }
                _ => {}
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        for file in &mut files {
            file.download_count = counts.get(&file.id).copied().unwrap_or(0);
        }
        Ok(files)
    }

    async fn delete_package(
        &self,
        package: &Package,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<()> {
        // Move the package out of its name/version slot (so a new one may take it), keep it as
        // a deleted item (listed with status=pending_destruction) and queue it for the purge,
        // in one transaction.
        let doomed = Package {
            status: PackageStatus::PendingDestruction,
            updated_at: now,
            ..package.clone()
        };
        let live = Key::package(package.project_id, &package.name, &package.version);
        let only_this = Condition::new("id = :id").value(":id", n(package.id));
        let mut tx = self.transaction();
        tx.delete(PackageDelete::Live, &live, Some(only_this))?;
        let item = with_event(package_item(&doomed), event);
        tx.put(PackageDelete::Doomed, item, None)?;
        tx.update(PackageDelete::Alias, &Key::package_id(package.id), |u| {
            u.update_expression(format!("SET {ALIAS_SLOT} = :sk"))
                .expression_attribute_values(":sk", s(package_key(&doomed).sk))
        })?;
        tx.put(PackageDelete::Queued, purge_package_item(package.id), None)?;
        self.run(tx).await?.map_err(|c| {
            if c.any_condition_failed() {
                StoreError::not_found(Record::Package, package.id)
            } else {
                c.into_error()
            }
        })
    }

    async fn delete_file(
        &self,
        package: &Package,
        file: &PackageFile,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<()> {
        let file_key = Key::file(file.package_id, &file.file_name, file.id);
        let guard_key = Key::file_name_guard(file.package_id, &file.file_name);
        let slot = Key::package(package.project_id, &package.name, &package.version);
        // Until the package turns out to keep no totals (or to be no longer live).
        let mut counted = true;
        let size = file.size as i64;
        for _ in 0..TRANSACTION_ATTEMPTS {
            // The guard is read before the files: a publish of the name that lands between the
            // two reads is among the files; one that lands after them rewrites the guard.
            let guard = self.get(&guard_key).await?;
            let same_name = self
                .files_newest_first(file.package_id, Some(&file.file_name), false, None)
                .await?;
            if !same_name.iter().any(|f| f.id == file.id) {
                return Err(StoreError::not_found(Record::File, file.id));
            }
            let mut tx = self.transaction();
            tx.update(FileDelete::Mark, &file_key, |u| {
                u.update_expression(format!("SET #st = :pd, updated_at = :u, {EVENT} = :ev"))
                    .condition_expression(
                        "attribute_exists(PK) AND (attribute_not_exists(#st) OR #st <> :pd)",
                    )
                    .expression_attribute_names("#st", FILE_STATUS)
                    .expression_attribute_values(":pd", s(DOOMED))
                    .expression_attribute_values(":u", n(now.millis()))
                    .expression_attribute_values(":ev", s(event.to_json()))
            })?;
            tx.put(FileDelete::Queued, purge_file_item(file), None)?;
            // The last live file of its name frees the name (duplicate rule), unless a publish
            // of the same name slipped in meanwhile: then the guard is no longer the one read
            // (each publish writes its own file's id into it) and we go round again. The guard
            // may name a newer file deleted earlier, so it is compared with what was read, not
            // with this file.
            if same_name.len() == 1 {
                tx.delete(
                    FileDelete::NameGuard,
                    &guard_key,
                    Some(guard_unchanged(&guard)),
                )?;
            }
            if counted {
                let (expression, values) = package_update(package, false, Some((-1, -size)));
                tx.update(FileDelete::Totals, &slot, |u| {
                    u.update_expression(expression)
                        .condition_expression(format!(
                            "{STILL_LIVE} AND attribute_exists({FILE_COUNT})"
                        ))
                        .set_expression_attribute_values(Some(values))
                })?;
            }
            match self.run(tx).await? {
                Ok(()) => return Ok(()),
                Err(c) if c.failed(FileDelete::Mark) => {
                    return Err(StoreError::not_found(Record::File, file.id));
                }
                Err(c) if c.failed(FileDelete::Totals) => counted = false,
                Err(_) => tokio::time::sleep(limits::conflict_pause()).await,
            }
        }
        Err(StoreError::Contention {
            what: "file delete kept conflicting with concurrent writes".into(),
            attempts: TRANSACTION_ATTEMPTS,
        })
    }
}
