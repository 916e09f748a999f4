//! Mirror items for records written before mirrors existed: a table deployed by an older build
//! holds groups, projects, memberships, tokens and packages without their directory entries,
//! member mirrors, owner entries and rank entries (`latest`), so lists over HTTP and `latest`
//! would miss them. One Scan (an operator's
//! one-off, by `depot admin init` on a table that exists) writes what is missing; writing a
//! mirror again is harmless, so it can run any number of times, and alongside traffic: a
//! member's mirror is written only while the membership it mirrors still stands as read (a
//! membership changed or removed meanwhile wrote or removed its own mirror).

use super::DynamoMetaStore;
use super::items::{
    directory_item, member_item, membership_from, owned_token_item, package_from, rank_item,
    token_from,
};
use super::keys::{Directory, Key};
use super::schema::{Item, s};
use super::transaction::Condition;
use crate::store::StoreResult;
use crate::store::aws::sdk_failure;

/// The mirror items one stored item needs (none for most items).
fn mirrors_of(item: &Item) -> StoreResult<Vec<Item>> {
    let key = Key::of(item)?;
    let id_of = |prefix: &str| {
        key.pk
            .strip_prefix(prefix)
            .and_then(|id| id.parse::<i64>().ok())
    };
    Ok(match key.sk.as_str() {
        "META" if key.pk.starts_with("GROUP#") => id_of("GROUP#")
            .map(|id| vec![directory_item(item, &Key::listed(Directory::Groups, id))])
            .unwrap_or_default(),
        "META" if key.pk.starts_with("PROJECT#") => id_of("PROJECT#")
            .map(|id| vec![directory_item(item, &Key::listed(Directory::Projects, id))])
            .unwrap_or_default(),
        "META" if key.pk.starts_with("USER#") => id_of("USER#")
            .map(|id| vec![directory_item(item, &Key::listed(Directory::Users, id))])
            .unwrap_or_default(),
        "TOKEN" if key.pk.starts_with("TOKEN#") => {
            let token = token_from(item)?;
            let owned = Key::owned_token(&token.grant.owner(), token.id);
            vec![owned_token_item(&owned, &token.sha256)]
        }
        sk if sk.starts_with("MEMBER#") => vec![member_item(&membership_from(item)?)],
        // A live package's rank entry for `latest` (written with each package since
        // 2026-11-30).
        sk if sk.starts_with("PKG#") && key.pk.starts_with("PROJECT#") => {
            vec![rank_item(&package_from(item)?)]
        }
        _ => Vec::new(),
    })
}

impl DynamoMetaStore {
    /// Write the mirrors of `item`; how many. A member's mirror goes in a transaction that
    /// checks its membership is still what was read.
    async fn write_mirrors(&self, item: &Item) -> StoreResult<usize> {
        let mirrors = mirrors_of(item)?;
        let key = Key::of(item)?;
        if key.sk.starts_with("MEMBER#") {
            let Some(level) = item.get("access_level").cloned() else {
                return Ok(0);
            };
            let mut tx = self.transaction();
            let same = Condition::new("access_level = :level").value(":level", level);
            tx.check((), &key, same)?;
            for mirror in mirrors {
                tx.put((), mirror, None)?;
            }
            return Ok(match self.run(tx).await? {
                Ok(()) => 1,
                Err(cancelled) if cancelled.any_condition_failed() => 0,
                Err(cancelled) => return Err(cancelled.into_error()),
            });
        }
        let count = mirrors.len();
        for mirror in mirrors {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(mirror))
                .send()
                .await
                .map_err(sdk_failure)?;
        }
        Ok(count)
    }

    /// Write every missing mirror item; how many mirror items were written.
    pub async fn backfill_mirrors(&self) -> StoreResult<usize> {
        let mut written = 0;
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "(SK = :meta AND (begins_with(PK, :group) OR begins_with(PK, :project) \
                     OR begins_with(PK, :user))) OR (SK = :token AND begins_with(PK, :token_pk)) \
                     OR begins_with(SK, :member) \
                     OR (begins_with(PK, :project) AND begins_with(SK, :package))",
                )
                .expression_attribute_values(":meta", s("META"))
                .expression_attribute_values(":group", s("GROUP#"))
                .expression_attribute_values(":project", s("PROJECT#"))
                .expression_attribute_values(":user", s("USER#"))
                .expression_attribute_values(":token", s("TOKEN"))
                .expression_attribute_values(":token_pk", s("TOKEN#"))
                .expression_attribute_values(":member", s("MEMBER#"))
                .expression_attribute_values(":package", s("PKG#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_failure)?;
            for item in page.items.unwrap_or_default() {
                written += self.write_mirrors(&item).await?;
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(written);
            }
        }
    }
}
