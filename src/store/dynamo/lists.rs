//! Package lists on DynamoDB: one Query of a list index per project (the status is part of
//! the partition key, the order is the sort key), merged across projects, then one eventually
//! consistent `BatchGetItem` for the page (a list trails the table by a moment either way).
//!
//! Name words (a case-insensitive substring match) and the version cannot be key conditions,
//! so they are a `FilterExpression` on the projected `name_lc` and `version`: a filtered list
//! reads the project's index rows (about 100 bytes each, so about 10,000 per 1 MB request)
//! until it has enough matches, which bounds it by the size of one project, never the
//! registry's.

use super::items::{NAME_LC, package_from};
use super::keys::{self, BY_CREATED, BY_NAME, BY_VERSION, Key};
use super::schema::{Fields, s};
use super::{BY_CREATED_INDEX, BY_NAME_INDEX, BY_VERSION_INDEX, DynamoMetaStore};
use crate::domain::{COUNT_LIMIT, Listed, Package, PackageOrder, PackageQuery, Project};
use crate::store::StoreResult;
use crate::store::aws::sdk_failure;

/// Reads of a list page at most, when rows changed under the first (see
/// [`DynamoMetaStore::list_page`]).
const LIST_ATTEMPTS: usize = 3;

/// Which index serves an order, and the attribute it sorts by.
fn index_for(order: PackageOrder) -> (&'static str, &'static str) {
    match order {
        PackageOrder::CreatedAt | PackageOrder::Type | PackageOrder::ProjectPath => {
            (BY_CREATED_INDEX, BY_CREATED)
        }
        PackageOrder::Name => (BY_NAME_INDEX, BY_NAME),
        PackageOrder::Version => (BY_VERSION_INDEX, BY_VERSION),
    }
}

/// One row of an index read: its sort key, with the project's path first (for
/// `project_path` order), and the table key of the package item.
struct IndexRow {
    sort: (String, String),
    table_key: Key,
}

impl DynamoMetaStore {
    /// Up to `want` index rows of `project`'s packages that match `query`, in the query's
    /// order, and whether the index has no more (`true`: every match was read).
    async fn index_rows(
        &self,
        project: &Project,
        query: &PackageQuery,
        want: usize,
    ) -> StoreResult<(Vec<IndexRow>, bool)> {
        let (index, sort_attr) = index_for(query.order);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("LIST_PK = :pk")
            .expression_attribute_values(":pk", s(keys::list_pk(project.id, query.status)))
            // GitLab orders a project's own packages newest first in a project_path list,
            // whichever the direction.
            .scan_index_forward(!query.descending && query.order != PackageOrder::ProjectPath);
        let mut filters = Vec::new();
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
        let path = match query.order {
            PackageOrder::ProjectPath => project.path_with_namespace.clone(),
            _ => String::new(),
        };
        let mut rows = Vec::new();
        let mut start = None;
        loop {
            let page = request
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_failure)?;
            for item in page.items() {
                if rows.len() == want {
                    return Ok((rows, false));
                }
                rows.push(IndexRow {
                    sort: (path.clone(), Fields::of(item)?.s(sort_attr)?),
                    table_key: Key::of(item)?,
                });
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok((rows, true));
            }
            if rows.len() == want {
                return Ok((rows, false));
            }
        }
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
    ) -> StoreResult<Listed<Package>> {
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
    ) -> StoreResult<(Listed<Package>, bool)> {
        let offset = query.page.offset() as usize;
        let per_page = query.page.per_page as usize;
        // Enough rows for this page plus one (is there a next page?), and enough to count up
        // to the limit. Each project's index is read in order, so the page is among the first
        // `page_need` rows of each; a group list merges one read per project.
        let page_need = offset + per_page + 1;
        let count_need = COUNT_LIMIT as usize + 1;
        let mut rows = Vec::new();
        let mut every_row_read = true;
        for project in projects {
            let want = page_need.max(count_need.saturating_sub(rows.len()));
            let (more, done) = self.index_rows(project, query, want).await?;
            rows.extend(more);
            every_row_read &= done;
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
        let keys: Vec<Key> = rows
            .into_iter()
            .skip(offset)
            .take(per_page)
            .map(|r| r.table_key)
            .collect();
        let wanted = keys.len();
        let mut items = Vec::with_capacity(wanted);
        // Eventually consistent, as the index rows are: a list is a moment behind the table
        // either way, and reading its page so costs half.
        for item in self.batch_get_with(keys, false).await? {
            let package = package_from(&item)?;
            // Indexes trail the table by a moment: drop a row whose package changed since.
            if query.matches(&package) {
                items.push(package);
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
