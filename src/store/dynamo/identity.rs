//! `IdentityStore` on DynamoDB: groups, projects and users (each an item plus a unique alias
//! by path or name), memberships under their user, tokens by hash with an id alias.

use super::items::{
    alias_id, alias_item, group_from, group_item, membership_from, membership_item, project_from,
    project_item, token_alias_item, token_alias_sha256, token_from, token_item, user_from,
    user_item,
};
use super::keys::{self, Counter, Key, Partition};
use super::schema::{Item, s};
use super::transaction::Condition;
use super::{BY_NAMESPACE_INDEX, DynamoMetaStore, conditional_failed};
use crate::domain::{
    Group, Membership, MembershipTarget, NewGroup, NewToken, Project, Role, Timestamp, Token, User,
    Visibility,
};
use crate::store::aws::sdk_failure;
use crate::store::{IdentityStore, Record, StoreError, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

/// The two items of an entity created under a unique alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unique {
    Alias,
    Entity,
}

impl DynamoMetaStore {
    /// Put an item and its unique alias together; `AlreadyExists` (`what` at `name`) if the
    /// alias is taken.
    async fn put_with_alias(
        &self,
        item: Item,
        alias: Item,
        what: Record,
        name: &str,
    ) -> StoreResult<()> {
        let mut tx = self.transaction();
        tx.put(Unique::Alias, alias, Some(Condition::item_is_new()))?;
        tx.put(Unique::Entity, item, Some(Condition::item_is_new()))?;
        self.run(tx).await?.map_err(|cancelled| {
            if cancelled.any_condition_failed() {
                StoreError::already_exists(what, name)
            } else {
                cancelled.into_error()
            }
        })
    }

    /// Create the record `record(id)` with a fresh id drawn from `counter`, unique under its
    /// `alias`. `AlreadyExists` if the alias is taken (checked first, so no id is spent, and
    /// again atomically when both items are written).
    async fn create_unique<T>(
        &self,
        what: Record,
        alias: Key,
        counter: Counter,
        record: impl FnOnce(i64) -> T,
        encode: fn(&T) -> Item,
    ) -> StoreResult<T> {
        if self.get(&alias).await?.is_some() {
            return Err(StoreError::already_exists(what, &alias.pk));
        }
        let id = self.next_id(counter).await?;
        let created = record(id);
        self.put_with_alias(encode(&created), alias_item(&alias, id), what, &alias.pk)
            .await?;
        Ok(created)
    }

    /// The entity an alias names: `entity(id)` is its key.
    async fn by_alias(&self, alias: &Key, entity: fn(i64) -> Key) -> StoreResult<Option<Item>> {
        let Some(alias) = self.get(alias).await? else {
            return Ok(None);
        };
        self.get(&entity(alias_id(&alias)?)).await
    }

    /// [`Self::by_alias`] read as [`Self::get_cheaply`] reads.
    async fn by_alias_cheaply(
        &self,
        alias: &Key,
        entity: fn(i64) -> Key,
    ) -> StoreResult<Option<Item>> {
        let Some(alias) = self.get_cheaply(alias).await? else {
            return Ok(None);
        };
        self.get_cheaply(&entity(alias_id(&alias)?)).await
    }

    /// The hash a token id names.
    async fn token_sha256(&self, id: i64) -> StoreResult<Option<[u8; 32]>> {
        let alias = self.get(&Key::token_id(id)).await?;
        alias.map(|a| token_alias_sha256(&a)).transpose()
    }
}

#[async_trait]
impl IdentityStore for DynamoMetaStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        let out = self
            .query(&Partition::counters())
            .limit(1)
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(out.items().is_empty())
    }

    async fn create_group(&self, group: NewGroup) -> StoreResult<Group> {
        let alias = Key::group_path(&group.path);
        let record = |id| Group {
            id,
            path: group.path,
            parent_id: group.parent_id,
            created_at: group.created_at,
        };
        self.create_unique(Record::Group, alias, Counter::Group, record, group_item)
            .await
    }

    async fn group_by_path(&self, path: &str) -> StoreResult<Option<Group>> {
        self.by_alias(&Key::group_path(path), Key::group)
            .await?
            .map(|i| group_from(&i))
            .transpose()
    }

    async fn group_by_id(&self, id: i64) -> StoreResult<Option<Group>> {
        self.get(&Key::group(id))
            .await?
            .map(|i| group_from(&i))
            .transpose()
    }

    async fn create_project(
        &self,
        group: &Group,
        name: &str,
        visibility: Visibility,
        now: Timestamp,
    ) -> StoreResult<Project> {
        let full_path = format!("{}/{}", group.path, name);
        let alias = Key::project_path(&full_path);
        let record = |id| Project {
            id,
            name: name.to_string(),
            path_with_namespace: full_path,
            namespace_id: group.id,
            visibility,
            created_at: now,
        };
        self.create_unique(
            Record::Project,
            alias,
            Counter::Project,
            record,
            project_item,
        )
        .await
    }

    async fn project_by_id(&self, id: i64) -> StoreResult<Option<Project>> {
        self.get_cheaply(&Key::project(id))
            .await?
            .map(|i| project_from(&i))
            .transpose()
    }

    async fn project_by_path(&self, path: &str) -> StoreResult<Option<Project>> {
        self.by_alias_cheaply(&Key::project_path(path), Key::project)
            .await?
            .map(|i| project_from(&i))
            .transpose()
    }

    async fn projects_in_group(&self, group: &Group, subgroups: bool) -> StoreResult<Vec<Project>> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_NAMESPACE_INDEX)
            .key_condition_expression("NS_PK = :pk AND begins_with(NS_SK, :prefix)")
            .expression_attribute_values(":pk", s(keys::namespace_pk(&group.path)))
            .expression_attribute_values(":prefix", s(keys::namespace_prefix(&group.path)));
        let mut projects = Vec::new();
        for item in self.query_all(request).await? {
            let project = project_from(&item)?;
            if subgroups || project.namespace_id == group.id {
                projects.push(project);
            }
        }
        projects.sort_by_key(|p| p.id);
        Ok(projects)
    }

    async fn create_user(&self, username: &str, now: Timestamp) -> StoreResult<User> {
        let alias = Key::username(username);
        let record = |id| User {
            id,
            username: username.to_string(),
            created_at: now,
        };
        self.create_unique(Record::User, alias, Counter::User, record, user_item)
            .await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        self.by_alias(&Key::username(username), Key::user)
            .await?
            .map(|i| user_from(&i))
            .transpose()
    }

    async fn set_membership(
        &self,
        user_id: i64,
        target: &MembershipTarget,
        role: Role,
    ) -> StoreResult<Membership> {
        let membership = Membership {
            user_id,
            target: target.clone(),
            role,
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(membership_item(&membership)))
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(membership)
    }

    async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<Membership>> {
        let request = self.query(&Partition::memberships(user_id));
        self.query_all(request)
            .await?
            .iter()
            .map(membership_from)
            .collect()
    }

    async fn create_token(&self, token: NewToken, now: Timestamp) -> StoreResult<Token> {
        let id = self.next_id(Counter::Token).await?;
        let token = token.into_token(id, now);
        let alias = token_alias_item(id, &token.sha256);
        let name = Key::token_id(id).pk;
        self.put_with_alias(token_item(&token), alias, Record::Token, &name)
            .await?;
        Ok(token)
    }

    async fn token_by_sha256(&self, sha256: &[u8; 32]) -> StoreResult<Option<Token>> {
        self.get_cheaply(&Key::token(sha256))
            .await?
            .map(|i| token_from(&i))
            .transpose()
    }

    /// Read strongly: a session's commit re-checks its opener's token by id.
    async fn token_by_id(&self, id: i64) -> StoreResult<Option<Token>> {
        let Some(sha256) = self.token_sha256(id).await? else {
            return Ok(None);
        };
        self.get(&Key::token(&sha256))
            .await?
            .map(|i| token_from(&i))
            .transpose()
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<Token> {
        let sha256 = self
            .token_sha256(id)
            .await?
            .ok_or_else(|| StoreError::not_found(Record::Token, id))?;
        let key = Key::token(&sha256);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .update_expression("SET revoked = :t")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| {
                if conditional_failed(&e) {
                    StoreError::not_found(Record::Token, id)
                } else {
                    sdk_failure(e)
                }
            })?;
        let item = out
            .attributes
            .ok_or_else(|| StoreError::corrupt(&key, "the update returned no item"))?;
        token_from(&item)
    }
}
