//! `PackageStore` on DynamoDB: publish (one transaction: package put-or-update, file, name
//! guard, id alias, blob reference, and the upload session it commits), lookups, downloads and
//! deletes. Lists are in `lists`.

use super::items::{
    ALIAS_SLOT, DOOMED, FILE_STATUS, NEWEST_FILE_ID, STATE, blob_ref_item, file_from,
    file_is_doomed, file_item, name_guard_item, package_alias_item, package_alias_slot,
    package_from, package_item, package_key, purge_file_item, purge_package_item,
};
use super::keys::{self, Counter, Key, Partition};
use super::limits::{self, FILE_PAGE_ITEMS, TRANSACTION_ATTEMPTS};
use super::schema::{n, s};
use super::transaction::{Condition, Transaction};
use super::uploads::state_update;
use super::{DynamoMetaStore, conditional_failed};
use crate::domain::{
    FileName, Listed, NewFile, Package, PackageFile, PackageName, PackageQuery, PackageStatus,
    PackageVersion, Project, SessionState, Timestamp,
};
use crate::store::aws::sdk_failure;
use crate::store::{PackageStore, Record, StoreError, StoreResult};
use async_trait::async_trait;
use std::ops::ControlFlow;

/// The items of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    /// The package, created or touched: its condition fails when another publish got there
    /// first.
    Package,
    File,
    /// The file-name guard: its condition fails on a refused duplicate.
    NameGuard,
    /// The package's id alias (a new package only).
    Alias,
    BlobRef,
    /// The upload session the publish commits: its condition fails when the claim is gone.
    Session,
}

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
}

impl DynamoMetaStore {
    pub(super) async fn live_package(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
    ) -> StoreResult<Option<Package>> {
        let item = self.get(&Key::package(project_id, name, version)).await?;
        item.map(|i| package_from(&i)).transpose()
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

    /// The package a publish adds to, as the publish leaves it, and whether it is new.
    async fn package_to_publish(&self, f: &NewFile) -> StoreResult<(Package, bool)> {
        Ok(
            match self.live_package(f.project_id, &f.name, &f.version).await? {
                Some(live) => (f.touch_package(live), false),
                None => (f.new_package(self.next_id(Counter::Package).await?), true),
            },
        )
    }

    /// The transaction that publishes `file` into `package` (`created`: a new one).
    fn publish_transaction(
        &self,
        f: &NewFile,
        package: &Package,
        created: bool,
        file: &PackageFile,
    ) -> StoreResult<Transaction<Publish>> {
        let mut tx = self.transaction();
        if created {
            let item = package_item(package);
            tx.put(Publish::Package, item, Some(Condition::item_is_new()))?;
        } else {
            let slot = Key::package(f.project_id, &f.name, &f.version);
            let list_pk = keys::list_pk(package.project_id, package.status);
            tx.update(Publish::Package, &slot, |u| {
                u.update_expression("SET #s = :s, updated_at = :u, LIST_PK = :l")
                    .condition_expression("attribute_exists(PK) AND id = :id")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":s", s(package.status.as_str()))
                    .expression_attribute_values(":l", s(list_pk))
                    .expression_attribute_values(":u", n(package.updated_at.millis()))
                    .expression_attribute_values(":id", n(package.id))
            })?;
        }
        tx.put(Publish::File, file_item(file), None)?;
        let guard = f.refuse_duplicate.then(Condition::item_is_new);
        tx.put(Publish::NameGuard, name_guard_item(file), guard)?;
        if created {
            tx.put(Publish::Alias, package_alias_item(package), None)?;
        }
        tx.put(Publish::BlobRef, blob_ref_item(file), None)?;
        if let Some(claim) = &f.commits {
            let committed = SessionState::Committed {
                package_id: package.id,
                file_id: file.id,
            };
            let (update, values) = state_update(&committed, None);
            tx.update(Publish::Session, &Key::session(&claim.session_id), |u| {
                let u = u
                    .update_expression(update)
                    .condition_expression("#st = :committing AND claim_until = :until")
                    .expression_attribute_names("#st", STATE)
                    .expression_attribute_values(":committing", s("committing"))
                    .expression_attribute_values(":until", n(claim.until.millis()));
                values.into_iter().fold(u, |u, (name, value)| {
                    u.expression_attribute_values(name, value)
                })
            })?;
        }
        Ok(tx)
    }
}

#[async_trait]
impl PackageStore for DynamoMetaStore {
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
        let guard = self
            .get(&Key::file_name_guard(package.id, file_name))
            .await?;
        Ok(guard.is_some())
    }

    async fn publish(&self, f: NewFile) -> StoreResult<(Package, PackageFile)> {
        let file_id = self.next_id(Counter::File).await?;
        // A concurrent publish may create the package between our read and our write; the
        // transaction's condition catches that and we go round again with the package it made.
        for _ in 0..TRANSACTION_ATTEMPTS {
            let (package, created) = self.package_to_publish(&f).await?;
            let file = f.file_record(file_id, package.id);
            let tx = self.publish_transaction(&f, &package, created, &file)?;
            match self.run(tx).await? {
                Ok(()) => return Ok((package, file)),
                Err(c) if c.failed(Publish::NameGuard) => {
                    let name = format!("{}/{}", package.id, file.file_name.as_str());
                    return Err(StoreError::already_exists(Record::File, name));
                }
                Err(c) if c.failed(Publish::Session) => {
                    let claim = f.commits.as_ref().map(|c| c.session_id.as_str());
                    return Err(StoreError::claim_lost(claim.unwrap_or_default()));
                }
                Err(c) if c.failed(Publish::Package) => continue,
                // Transactions touching the same items at once are cancelled with a conflict;
                // go round again, after a pause so the racers spread out.
                Err(_) => tokio::time::sleep(limits::conflict_pause()).await,
            }
        }
        Err(StoreError::Contention {
            what: "publish kept conflicting with concurrent writes".into(),
            attempts: TRANSACTION_ATTEMPTS,
        })
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

    async fn mark_downloaded(&self, package: &Package, at: Timestamp) -> StoreResult<()> {
        let slot = Key::package(package.project_id, &package.name, &package.version);
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(slot.item()))
            .update_expression("SET last_downloaded_at = :t")
            .condition_expression("attribute_exists(PK) AND id = :id")
            .expression_attribute_values(":t", n(at.millis()))
            .expression_attribute_values(":id", n(package.id))
            .send()
            .await
            .map(|_| ())
            // The package went away meanwhile: nothing to record.
            .or_else(|e| {
                if conditional_failed(&e) {
                    Ok(())
                } else {
                    Err(sdk_failure(e))
                }
            })
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
        self.list_page(projects, query).await
    }

    async fn files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>> {
        self.files_newest_first(package_id, None, false, None).await
    }

    async fn delete_package(&self, package: &Package, now: Timestamp) -> StoreResult<()> {
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
        tx.put(PackageDelete::Doomed, package_item(&doomed), None)?;
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

    async fn delete_file(&self, file: &PackageFile, now: Timestamp) -> StoreResult<()> {
        let file_key = Key::file(file.package_id, &file.file_name, file.id);
        let guard_key = Key::file_name_guard(file.package_id, &file.file_name);
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
                u.update_expression("SET #st = :pd, updated_at = :u")
                    .condition_expression(
                        "attribute_exists(PK) AND (attribute_not_exists(#st) OR #st <> :pd)",
                    )
                    .expression_attribute_names("#st", FILE_STATUS)
                    .expression_attribute_values(":pd", s(DOOMED))
                    .expression_attribute_values(":u", n(now.millis()))
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
                    Some(guard_as_read(&guard)),
                )?;
            }
            match self.run(tx).await? {
                Ok(()) => return Ok(()),
                Err(c) if c.failed(FileDelete::Mark) => {
                    return Err(StoreError::not_found(Record::File, file.id));
                }
                Err(_) => tokio::time::sleep(limits::conflict_pause()).await,
            }
        }
        Err(StoreError::Contention {
            what: "file delete kept conflicting with concurrent writes".into(),
            attempts: TRANSACTION_ATTEMPTS,
        })
    }
}

/// The condition that the name guard is still as `read` (its newest file id the same, or still
/// absent).
fn guard_as_read(read: &Option<super::schema::Item>) -> Condition {
    match read.as_ref().and_then(|g| g.get(NEWEST_FILE_ID)) {
        Some(newest) => {
            Condition::new(format!("{NEWEST_FILE_ID} = :n")).value(":n", newest.clone())
        }
        None if read.is_some() => Condition::new(format!(
            "attribute_exists(PK) AND attribute_not_exists({NEWEST_FILE_ID})"
        )),
        None => Condition::new("attribute_not_exists(PK)"),
    }
}
