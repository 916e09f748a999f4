//! Package lists on DynamoDB: one Query of a list index per project (the status is part of
//! the partition key, the order is the sort key), merged across projects, then the page's
//! items, eventually consistent (a list trails the table by a moment either way).
//!
//! The page's items are read the cheaper of two ways. A `BatchGetItem` bills each item as a
//! read unit of its own (4 KB), so 20 packages cost 10 units. A Query of the project's range
//! of package items bills their sizes summed, so a project of up to a few hundred packages
//! is read whole for less: 20 of 20 packages cost 1 unit. The index read counts the range
//! (`ScannedCount`), which decides; the Query is bounded by that count, and what it does not
//! reach is read by key.
//!
//! Name words (a case-insensitive substring match) and the version cannot be key conditions,
//! so they are a `FilterExpression` on the projected `name_lc` and `version`: a filtered list
//! reads the project's index rows (about 100 bytes each, so about 10,000 per 1 MB request)
//! until it has enough matches, which bounds it by the size of one project, never the
//! registry's.

use super::items::{NAME_LC, file_totals_of, package_from};
use super::keys::{self, BY_CREATED, BY_NAME, BY_VERSION, Key, LIST_PK, Partition};
use super::limits::BATCH_GET_KEYS;
use super::schema::{Fields, Item, s};
use super::{BY_CREATED_INDEX, BY_NAME_INDEX, BY_VERSION_INDEX, DynamoMetaStore};
use crate::domain::{
    COUNT_LIMIT, Listed, Package, PackageOrder, PackageQuery, PackageStatus, Project,
};
use crate::store::StoreResult;
use crate::store::aws::sdk_failure;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use std::collections::HashMap;

/// Reads of a list page at most, when rows changed under the first (see
/// [`DynamoMetaStore::list_page`]).
const LIST_ATTEMPTS: usize = 3;

/// A package item's size, about (bytes; most are 300 to 400), and DynamoDB's read unit: a
/// range is read whole when its items, so estimated, take no more units than reading the
/// page's items one by one would.
const PACKAGE_ITEM_BYTES: usize = 512;
const READ_UNIT_BYTES: usize = 4096;

/// Items a range read may meet beyond those the index counted (packages of other statuses,
/// packages published since); past that it stops, and the rest is read by key.
const RANGE_SLACK: usize = 16;

/// Which index serves an order, and the attribute it sorts by (name order: deleted packages
/// only, see [`by_slot`]).
fn index_for(order: PackageOrder) -> (&'static str, &'static str) {
    match order {
        PackageOrder::CreatedAt | PackageOrder::Type | PackageOrder::ProjectPath => {
            (BY_CREATED_INDEX, BY_CREATED)
        }
        PackageOrder::Name => (BY_NAME_INDEX, BY_NAME),
        PackageOrder::Version => (BY_VERSION_INDEX, BY_VERSION),
    }
}

/// Is `query` listed from the project's own range of live package items rather than an
/// index? Their sort keys (`PKG#<name>#<version>`) are in name order already, so a live
/// package needs no name index entry: one write unit less for every new package. Deleted
/// packages (each in a slot of its own, by id) keep theirs.
fn by_slot(query: &PackageQuery) -> bool {
    query.order == PackageOrder::Name && query.status != PackageStatus::PendingDestruction
}

/// A listed package, with its live files' count and bytes if its item keeps them.
pub(super) type Totalled = (Package, Option<(u64, u64)>);

/// One row of an index read: its sort key, with the project's path first (for
/// `project_path` order), the table key of the package item, and the item itself when the
/// read was of the table (so the page needs no second read).
struct IndexRow {
    sort: (String, String),
    table_key: Key,
    item: Option<Item>,
}

impl DynamoMetaStore {
    /// Up to `want` index rows of `project`'s packages that match `query`, in the query's
    /// order, and, if the index has no more, how many rows it holds (matching or not).
    async fn index_rows(
        &self,
        project: &Project,
        query: &PackageQuery,
        want: usize,
    ) -> StoreResult<(Vec<IndexRow>, Option<usize>)> {
        let (_, sort_attr) = index_for(query.order);
        let request = self.list_request(project, query);
        let path = match query.order {
            PackageOrder::ProjectPath => project.path_with_namespace.clone(),
            _ => String::new(),
        };
        let mut rows = Vec::new();
        let mut scanned = 0;
        let mut start = None;
        loop {
            let page = request
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_failure)?;
            scanned += page.scanned_count().max(0) as usize;
            for item in page.items() {
                if rows.len() == want {
                    return Ok((rows, None));
                }
                rows.push(match by_slot(query) {
                    true => {
                        let p = package_from(item)?;
                        IndexRow {
                            sort: (path.clone(), keys::by_name(&p.name, &p.version, p.id)),
                            table_key: Key::of(item)?,
                            item: Some(item.clone()),
                        }
                    }
                    false => IndexRow {
                        sort: (path.clone(), Fields::of(item)?.s(sort_attr)?),
                        table_key: Key::of(item)?,
                        item: None,
                    },
                });
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok((rows, Some(scanned)));
            }
            if rows.len() == want {
                return Ok((rows, None));
            }
        }
    }

    /// The Query that reads `project`'s rows for `query`: its list index, or its own range of
    /// live packages ([`by_slot`]); the name words and version as a filter.
    fn list_request(&self, project: &Project, query: &PackageQuery) -> QueryFluentBuilder {
        let (index, _) = index_for(query.order);
        let list_pk = s(keys::list_pk(project.id, query.status));
        let mut filters = Vec::new();
        let mut request = if by_slot(query) {
            // The status is the list partition's: the live range holds every live status.
            filters.push(format!("{LIST_PK} = :list"));
            self.query(&Partition::live_packages(project.id))
                .consistent_read(false)
                .expression_attribute_values(":list", list_pk)
        } else {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("LIST_PK = :pk")
                .expression_attribute_values(":pk", list_pk)
        };
        // GitLab orders a project's own packages newest first in a project_path list,
        // whichever the direction.
        request = request
            .scan_index_forward(!query.descending && query.order != PackageOrder::ProjectPath);
        for (i, word) in query.name_words.iter().enumerate() {
            filters.push(format!("contains({NAME_LC}, :w{i})"));
            request = request.expression_attribute_values(format!(":w{i}"), s(word));
        }
        if let Some(version) = &query.version {
            filters.push("#ver = :ver".to_string());
            request = request
                .expression_attribute_names("#ver", "version")
                .expression_attribute_values(":ver", s(version));
        }
        if !filters.is_empty() {
            request = request.filter_expression(filters.join(" AND "));
        }
        request
    }

    /// One page of the packages of `projects` that match `query` (see
    /// [`crate::store::PackageStore::list_packages`]).
    ///
    /// A row whose package changed between the index read and the page read (deleted, purged,
    /// moved) is dropped, which leaves the page short of a package that is there: the list is
    /// read again, up to [`LIST_ATTEMPTS`] times. (A purge forgetting packages while a client
    /// polled `status=pending_destruction` answered `[]` with dozens still pending.)
    pub(super) async fn list_page(
        &self,
        projects: &[Project],
        query: &PackageQuery,
    ) -> StoreResult<Listed<Totalled>> {
        if projects.is_empty() || !query.satisfiable {
            return Ok(Listed::empty());
        }
        let mut attempt = 1;
        loop {
            let (listed, dropped) = self.list_page_once(projects, query).await?;
            if !dropped || attempt == LIST_ATTEMPTS {
                return Ok(listed);
            }
            attempt += 1;
        }
    }

    /// [`Self::list_page`] once; `true` if a row was dropped.
    async fn list_page_once(
        &self,
        projects: &[Project],
        query: &PackageQuery,
    ) -> StoreResult<(Listed<Totalled>, bool)> {
        let offset = query.page.offset() as usize;
        let per_page = query.page.per_page as usize;
        // Enough rows for this page plus one (is there a next page?), and enough to count up
        // to the limit. Each project's index is read in order, so the page is among the first
        // `page_need` rows of each; a group list merges one read per project.
        let page_need = offset + per_page + 1;
        let count_need = COUNT_LIMIT as usize + 1;
        let mut rows = Vec::new();
        let mut every_row_read = true;
        // Index rows per project partition, where the index was read to its end.
        let mut ranges = HashMap::new();
        for project in projects {
            let want = page_need.max(count_need.saturating_sub(rows.len()));
            let (more, scanned) = self.index_rows(project, query, want).await?;
            if let (Some(scanned), Some(row)) = (scanned, more.first()) {
                ranges.insert(row.table_key.pk.clone(), scanned);
            }
            rows.extend(more);
            every_row_read &= scanned.is_some();
        }
        if projects.len() > 1 {
            rows.sort_by(|a, b| {
                let order = match query.order {
                    // Projects in the list's direction, each one's packages newest first.
                    PackageOrder::ProjectPath => {
                        let by_path = a.sort.0.cmp(&b.sort.0);
                        let by_path = if query.descending {
                            by_path.reverse()
                        } else {
                            by_path
                        };
                        return by_path.then_with(|| b.sort.1.cmp(&a.sort.1));
                    }
                    _ => a.sort.cmp(&b.sort),
                };
                if query.descending {
                    order.reverse()
                } else {
                    order
                }
            });
        }
        let counted = rows.len();
        let mut read = HashMap::new();
        let keys: Vec<Key> = rows
            .into_iter()
            .skip(offset)
            .take(per_page)
            .map(|r| {
                if let Some(item) = r.item {
                    read.insert(r.table_key.clone(), item);
                }
                r.table_key
            })
            .collect();
        let wanted = keys.len();
        let mut items = Vec::with_capacity(wanted);
        for item in self.page_items(keys, &ranges, read).await? {
            let package = package_from(&item)?;
            // Indexes trail the table by a moment: drop a row whose package changed since.
            if query.matches(&package) {
                items.push((package, file_totals_of(&item)));
            }
        }
        let dropped = items.len() < wanted;
        let listed = Listed {
            items,
            total: (every_row_read && counted <= COUNT_LIMIT as usize).then_some(counted as u64),
            has_next: counted > offset + per_page,
        };
        Ok((listed, dropped))
    }
}

impl DynamoMetaStore {
    /// The items at `keys` (a page, at most [`BATCH_GET_KEYS`]), in their order; missing ones
    /// left out. Eventually consistent, as the index rows are: a list is a moment behind the
    /// table either way, and reading its page so costs half. `ranges` holds how many index
    /// rows each project partition has, where known; a range small enough is read whole.
    /// `found`: items read already (with the rows).
    async fn page_items(
        &self,
        keys: Vec<Key>,
        ranges: &HashMap<String, usize>,
        mut found: HashMap<Key, Item>,
    ) -> StoreResult<Vec<Item>> {
        let mut wanted_in: HashMap<Partition, usize> = HashMap::new();
        for key in keys.iter().filter(|k| !found.contains_key(k)) {
            if let Some(range) = Partition::package_range_of(key) {
                *wanted_in.entry(range).or_default() += 1;
            }
        }
        let mut settled: Vec<Partition> = Vec::new();
        for (range, wanted) in wanted_in {
            let Some(&rows) = ranges.get(&range.pk) else {
                continue;
            };
            if rows * PACKAGE_ITEM_BYTES > wanted * READ_UNIT_BYTES {
                continue;
            }
            if self
                .read_range(&range, rows + RANGE_SLACK, &mut found)
                .await?
            {
                settled.push(range);
            }
        }
        // What no whole range read answered for (absent there means gone) is read by key.
        let rest: Vec<Key> = keys
            .iter()
            .filter(|k| !found.contains_key(k))
            .filter(|k| !Partition::package_range_of(k).is_some_and(|r| settled.contains(&r)))
            .cloned()
            .collect();
        debug_assert!(rest.len() <= BATCH_GET_KEYS);
        for item in self.batch_get_with(rest, false).await? {
            found.insert(Key::of(&item)?, item);
        }
        Ok(keys.iter().filter_map(|k| found.remove(k)).collect())
    }

    /// One eventually consistent Query of `range`, of at most `limit` items, into `found`;
    /// `true` if it read the range to its end.
    async fn read_range(
        &self,
        range: &Partition,
        limit: usize,
        found: &mut HashMap<Key, Item>,
    ) -> StoreResult<bool> {
        let out = self
            .query(range)
            .consistent_read(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_failure)?;
        for item in out.items.unwrap_or_default() {
            found.insert(Key::of(&item)?, item);
        }
        Ok(out.last_evaluated_key.is_none())
    }
}
