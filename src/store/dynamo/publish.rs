//! Publishing on DynamoDB, in as few write units as each case allows (a transaction bills two
//! units per item-KB, a plain write one):
//!
//! - **Direct** (the common case: duplicates allowed, no upload session to settle): a file of an
//!   existing package is one `PutItem` and the package's count; a new package is four `PutItem`s
//!   (its id alias, its rank entry for `latest`, the file, then the package itself, conditional
//!   on its name/version slot being free), in the order that leaves nothing visible if it stops
//!   halfway: a file, alias or rank entry without its package is seen by no read.
//! - **In one transaction** where a rule needs one: the duplicate rule (the file-name guard
//!   decides which of two racing publishes wins) and an upload session's commit (settled with
//!   the publish, or not at all).
//!
//! A file published while its package is deleted goes with the package, as in the transaction;
//! the purge lists a package's files again before it forgets the package, so such a file is
//! never left behind. A file that lands after the package was forgotten is taken back and
//! published into a new package.

use super::items::{
    FILE_BYTES, FILE_COUNT, NEWEST_FILE_ID, counted_package_item, file_item, name_guard_item,
    package_alias_item, rank_item, rank_key, with_event,
};
use super::keys::{self, Counter, Key};
use super::limits::{self, TRANSACTION_ATTEMPTS};
use super::schema::{Item, n, s};
use super::transaction::{Condition, ITEM_IS_NEW, Transaction};
use super::uploads::state_update;
use super::{DynamoMetaStore, conditional_failed};
use crate::domain::{Event, NewFile, Package, PackageFile, SessionState};
use crate::store::aws::sdk_failure;
use crate::store::{PackageStore, Record, StoreError, StoreResult};

/// The items of a publish in a transaction.
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
    /// The package's entry in its name's rank (a new package only).
    Rank,
    /// The upload session the publish commits: its condition fails when the claim is gone.
    Session,
}

/// What one try of a direct publish came to.
enum Try {
    Published(Box<(Package, PackageFile)>),
    /// Another publish or a delete changed the package meanwhile: read it again.
    Again,
}

impl DynamoMetaStore {
    pub(super) async fn publish_file(&self, f: NewFile) -> StoreResult<(Package, PackageFile)> {
        let file_id = self.next_id(Counter::File).await?;
        let direct = !f.refuse_duplicate && f.commits.is_none();
        // A concurrent publish may create the package between our read and our write; the
        // write's condition catches that and we go round again with the package it made.
        for _ in 0..TRANSACTION_ATTEMPTS {
            let live = self.live_slot(f.project_id, &f.name, &f.version).await?;
            let tried = match (direct, live) {
                (true, Some((live, counted))) => self.add_file(&f, live, counted, file_id).await?,
                (true, None) => self.create_package(&f, file_id).await?,
                (false, live) => self.publish_in_transaction(&f, live, file_id).await?,
            };
            match tried {
                Try::Published(published) => return Ok(*published),
                // Transactions touching the same items at once are cancelled with a conflict;
                // go round again, after a pause so the racers spread out.
                Try::Again => tokio::time::sleep(limits::conflict_pause()).await,
            }
        }
        Err(StoreError::Contention {
            what: "publish kept conflicting with concurrent writes".into(),
            attempts: TRANSACTION_ATTEMPTS,
        })
    }

    /// A file of the live package `live`: the file's write, then the package's update that
    /// counts it (`counted`: the package keeps totals) and checks it is still the live one,
    /// setting its status if the publish asks. A package without totals keeps the older way:
    /// its status first if asked, then the file, then a read to check.
    async fn add_file(
        &self,
        f: &NewFile,
        live: Package,
        counted: bool,
        file_id: i64,
    ) -> StoreResult<Try> {
        let package = f.touch_package(live.clone());
        let touch = package.status != live.status;
        if !counted && touch && !self.set_status(&package).await? {
            return Ok(Try::Again);
        }
        let file = f.file_record(file_id, package.id);
        // The file's write is the publish (a file of a live package is found at once): it
        // carries the event.
        let event = Event::published(&f.event, false, &package, &file);
        self.put(with_event(file_item(&file), &event), None).await?;
        let still_live = if counted {
            self.count_file(&package, touch, &file).await?
        } else {
            let slot = self.live_package(f.project_id, &f.name, &f.version).await?;
            slot.is_some_and(|p| p.id == package.id)
        };
        if still_live || self.package_by_id(package.id).await?.is_some() {
            // Live, or deleted and not yet purged (the file goes with it).
            return Ok(Try::Published(Box::new((package, file))));
        }
        // Forgotten by the purge before the file landed: the purge never saw it.
        self.delete(&Key::file(package.id, &file.file_name, file.id))
            .await?;
        Ok(Try::Again)
    }

    /// Count `file` into its live package (and set the status when `touch`); `false` if the
    /// package is no longer the live one. A publish that stops between the file's write and
    /// this leaves the file published and the count one short (the package page lists the
    /// files themselves); see BENCHMARKS.md.
    async fn count_file(
        &self,
        package: &Package,
        touch: bool,
        file: &PackageFile,
    ) -> StoreResult<bool> {
        let slot = Key::package(package.project_id, &package.name, &package.version);
        let (expression, values) = package_update(package, touch, Some((1, file.size as i64)));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(slot.item()))
            .update_expression(expression)
            .condition_expression(STILL_LIVE)
            .set_expression_attribute_names(touch.then(status_name))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        written(out)
    }

    /// A new package with its first file: alias, file, then the package (conditional).
    async fn create_package(&self, f: &NewFile, file_id: i64) -> StoreResult<Try> {
        let package = f.new_package(self.next_id(Counter::Package).await?);
        let file = f.file_record(file_id, package.id);
        let alias = package_alias_item(&package);
        self.put(alias, Some(ITEM_IS_NEW)).await?;
        // Its entry in its name's rank (`latest`): one without a package is passed over.
        self.put(rank_item(&package), None).await?;
        self.put(file_item(&file), None).await?;
        // The package's write is the publish: it carries the event.
        let event = Event::published(&f.event, true, &package, &file);
        let item = with_event(counted_package_item(&package, &file), &event);
        let put = self.put(item, Some(ITEM_IS_NEW)).await?;
        // Refused: another publish created the package first, or an attempt of ours landed
        // and its answer was lost (then the slot holds our id).
        let ours = || async {
            let slot = self.live_package(f.project_id, &f.name, &f.version).await?;
            StoreResult::Ok(slot.is_some_and(|p| p.id == package.id))
        };
        if put || ours().await? {
            return Ok(Try::Published(Box::new((package, file))));
        }
        // Another publish created the package first: take ours back and join it.
        self.delete(&Key::file(package.id, &file.file_name, file.id))
            .await?;
        self.delete(&rank_key(&package)).await?;
        self.delete(&Key::package_id(package.id)).await?;
        Ok(Try::Again)
    }

    /// Set a live package's status (and its list index) as a publish asks; `false` if the
    /// package is no longer the live one.
    async fn set_status(&self, package: &Package) -> StoreResult<bool> {
        let slot = Key::package(package.project_id, &package.name, &package.version);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(slot.item()))
            .update_expression(TOUCH)
            .condition_expression(STILL_LIVE)
            .set_expression_attribute_names(Some(status_name()))
            .set_expression_attribute_values(Some(package_update(package, true, None).1))
            .send()
            .await;
        written(out)
    }

    /// Put `item`, under `condition` if any; `false` if the condition failed.
    async fn put(&self, item: Item, condition: Option<&str>) -> StoreResult<bool> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(String::from))
            .send()
            .await;
        written(out)
    }

    async fn delete(&self, key: &Key) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(())
    }

    /// A publish under the duplicate rule or settling an upload session: one transaction.
    async fn publish_in_transaction(
        &self,
        f: &NewFile,
        live: Option<(Package, bool)>,
        file_id: i64,
    ) -> StoreResult<Try> {
        let (package, created, counted) = match live {
            Some((live, counted)) => (f.touch_package(live), false, counted),
            None => (
                f.new_package(self.next_id(Counter::Package).await?),
                true,
                true,
            ),
        };
        let file = f.file_record(file_id, package.id);
        let guard = if f.refuse_duplicate && created {
            // A new package has no files and no guard yet.
            Some(Condition::item_is_new())
        } else if f.refuse_duplicate {
            // Live files of the name are a duplicate, whoever wrote them (direct publishes
            // write no guard); a guard no live file stands behind is stale and may be taken.
            let same_name = self
                .files_newest_first(package.id, Some(&file.file_name), false, Some(1))
                .await?;
            if !same_name.is_empty() {
                return Err(duplicate(&package, &file));
            }
            let key = Key::file_name_guard(package.id, &file.file_name);
            Some(guard_unchanged(&self.get(&key).await?))
        } else {
            None
        };
        let tx = self.publish_transaction(f, (&package, created, counted), &file, guard)?;
        match self.run(tx).await? {
            Ok(()) => Ok(Try::Published(Box::new((package, file)))),
            Err(c) if c.failed(Publish::NameGuard) => Err(duplicate(&package, &file)),
            Err(c) if c.failed(Publish::Session) => {
                let claim = f.commits.as_ref().map(|c| c.session_id.as_str());
                Err(StoreError::claim_lost(claim.unwrap_or_default()))
            }
            Err(_) => Ok(Try::Again),
        }
    }

    /// The transaction that publishes `file` into `package` (`created`: a new one; `counted`:
    /// it keeps file totals), the file-name guard written under `guard` when the duplicate
    /// rule applies.
    fn publish_transaction(
        &self,
        f: &NewFile,
        (package, created, counted): (&Package, bool, bool),
        file: &PackageFile,
        guard: Option<Condition>,
    ) -> StoreResult<Transaction<Publish>> {
        let mut tx = self.transaction();
        let event = Event::published(&f.event, created, package, file);
        if created {
            let item = with_event(counted_package_item(package, file), &event);
            tx.put(Publish::Package, item, Some(Condition::item_is_new()))?;
            tx.put(Publish::Alias, package_alias_item(package), None)?;
            tx.put(Publish::Rank, rank_item(package), None)?;
        } else {
            let slot = Key::package(f.project_id, &f.name, &f.version);
            let count = counted.then_some((1, file.size as i64));
            let (expression, values) = package_update(package, true, count);
            tx.update(Publish::Package, &slot, |u| {
                u.update_expression(expression)
                    .condition_expression(STILL_LIVE)
                    .set_expression_attribute_names(Some(status_name()))
                    .set_expression_attribute_values(Some(values))
            })?;
        }
        let item = file_item(file);
        tx.put(
            Publish::File,
            if created {
                item
            } else {
                with_event(item, &event)
            },
            None,
        )?;
        if let Some(guard) = guard {
            tx.put(Publish::NameGuard, name_guard_item(file), Some(guard))?;
        }
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
                    .expression_attribute_names("#st", super::items::STATE)
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

/// A publish's update of its live package: the status it asks for (and the list index that
/// goes with it), touched now; see [`package_update`].
const TOUCH: &str = "SET #s = :s, updated_at = :u, LIST_PK = :l";
pub(super) const STILL_LIVE: &str = "attribute_exists(PK) AND id = :id";

/// The update of a live package (under [`STILL_LIVE`]): its status as the publish asks (and
/// the list index that goes with it) when `touch`, and `count` files of so many bytes added
/// to its totals. Only the values the expression names: DynamoDB refuses unused ones.
pub(super) fn package_update(
    package: &Package,
    touch: bool,
    count: Option<(i64, i64)>,
) -> (String, Item) {
    let mut values = Item::from([(":id".to_string(), n(package.id))]);
    let mut expression = String::new();
    if touch {
        expression.push_str(TOUCH);
        values.insert(":s".into(), s(package.status.as_str()));
        let list = keys::list_pk(package.project_id, package.status);
        values.insert(":l".into(), s(list));
        values.insert(":u".into(), n(package.updated_at.millis()));
    }
    if let Some((files, bytes)) = count {
        expression.push_str(&format!(" ADD {FILE_COUNT} :files, {FILE_BYTES} :bytes"));
        values.insert(":files".into(), n(files));
        values.insert(":bytes".into(), n(bytes));
    }
    (expression.trim_start().to_string(), values)
}

fn status_name() -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([("#s".to_string(), "status".to_string())])
}

/// A single conditional write's outcome: `true` if written, `false` if its condition failed.
fn written<O, E>(out: Result<O, aws_sdk_dynamodb::error::SdkError<E>>) -> StoreResult<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match out {
        Ok(_) => Ok(true),
        Err(e) if conditional_failed(&e) => Ok(false),
        Err(e) => Err(sdk_failure(e)),
    }
}

fn duplicate(package: &Package, file: &PackageFile) -> StoreError {
    let name = format!("{}/{}", package.id, file.file_name.as_str());
    StoreError::already_exists(Record::File, name)
}

/// The condition that the file-name guard is still as `read` (its newest file id the same, or
/// still absent): a racing publish of the same name rewrites it, and loses.
pub(super) fn guard_unchanged(read: &Option<Item>) -> Condition {
    match read.as_ref().and_then(|g| g.get(NEWEST_FILE_ID)) {
        Some(newest) => {
            Condition::new(format!("{NEWEST_FILE_ID} = :n")).value(":n", newest.clone())
        }
        None if read.is_some() => Condition::new(format!(
            "attribute_exists(PK) AND attribute_not_exists({NEWEST_FILE_ID})"
        )),
        None => Condition::item_is_new(),
    }
}
