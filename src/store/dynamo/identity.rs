//! `IdentityStore` on DynamoDB: groups, projects and users (each an item plus a unique alias
//! by path or name), memberships under their user, tokens by hash with an id alias.

use super::items::{
    EVENT, alias_id, alias_item, directory_item, event_item, group_from, group_item, member_from,
    member_item, membership_from, membership_item, owned_token_item, owned_token_sha256,
    project_from, project_item, token_alias_item, token_alias_sha256, token_from, token_item,
    user_from, user_item, with_event,
};
use super::keys::{self, Counter, Directory, Key, Partition};
use super::limits::BATCH_GET_KEYS;
use super::schema::{Item, s};
use super::transaction::Condition;
use super::{BY_NAMESPACE_INDEX, DynamoMetaStore, conditional_failed};
use crate::domain::{
    Event, Group, Membership, MembershipTarget, NewGroup, NewToken, NewUser, Project, Role,
    Timestamp, Token, TokenOwner, User, Visibility,
};
use crate::store::aws::sdk_failure;
use crate::store::{IdentityStore, Record, StoreError, StoreResult};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

/// The items of an entity created under a unique alias, and its mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unique {
    Alias,
    Entity,
    Mirror,
}

impl DynamoMetaStore {
    /// Put an item, its unique alias and its `mirrors` together; `AlreadyExists` (`what` at
    /// `name`) if the alias is taken.
    async fn put_with_alias(
        &self,
        item: Item,
        alias: Item,
        mirrors: Vec<Item>,
        what: Record,
        name: &str,
    ) -> StoreResult<()> {
        let mut tx = self.transaction();
        tx.put(Unique::Alias, alias, Some(Condition::item_is_new()))?;
        tx.put(Unique::Entity, item, Some(Condition::item_is_new()))?;
        for mirror in mirrors {
            tx.put(Unique::Mirror, mirror, None)?;
        }
        self.run(tx).await?.map_err(|cancelled| {
            if cancelled.any_condition_failed() {
                StoreError::already_exists(what, name)
            } else {
                cancelled.into_error()
            }
        })
    }

    /// Create the record `record(id)` with a fresh id drawn from `counter`, unique under its
    /// `alias` (and copied into the `directory`, if given). `AlreadyExists` if the alias is
    /// taken (checked first, so no id is spent, and again atomically when the items are
    /// written).
    async fn create_unique<T>(
        &self,
        unique: (Record, Key, Counter),
        directory: Option<Directory>,
        (record, encode): (impl FnOnce(i64) -> T, fn(&T) -> Item),
        event: impl FnOnce(&T) -> Event,
    ) -> StoreResult<T> {
        self.create_unique_with(unique, directory, Vec::new(), (record, encode), event)
            .await
    }

    /// [`Self::create_unique`], with `extra` items written in the same transaction; the
    /// entity's item carries `event(&record)` (its directory copy does not).
    async fn create_unique_with<T>(
        &self,
        (what, alias, counter): (Record, Key, Counter),
        directory: Option<Directory>,
        extra: Vec<Item>,
        (record, encode): (impl FnOnce(i64) -> T, fn(&T) -> Item),
        event: impl FnOnce(&T) -> Event,
    ) -> StoreResult<T> {
        if self.get(&alias).await?.is_some() {
            return Err(StoreError::already_exists(what, &alias.pk));
        }
        let id = self.next_id(counter).await?;
        let created = record(id);
        let item = encode(&created);
        let mirrors = directory
            .map(|d| directory_item(&item, &Key::listed(d, id)))
            .into_iter()
            .chain(extra)
            .collect();
        let item = with_event(item, &event(&created));
        self.put_with_alias(item, alias_item(&alias, id), mirrors, what, &alias.pk)
            .await?;
        Ok(created)
    }

    /// Every item of the directory `kind`, decoded by `decode`.
    async fn directory<T>(
        &self,
        kind: Directory,
        decode: fn(&Item) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let request = self.query(&Partition::directory(kind));
        self.query_all(request).await?.iter().map(decode).collect()
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

    async fn create_group(&self, group: NewGroup, event: &Event) -> StoreResult<Group> {
        let alias = Key::group_path(&group.path);
        let path = group.path.clone();
        // Its first owner's membership (both ways) is written with it, all or nothing.
        let owner = group.owner.map(|user_id| Membership {
            user_id,
            target: MembershipTarget::Group(path),
            role: Role::Owner,
        });
        let record = |id| Group {
            id,
            path: group.path,
            parent_id: group.parent_id,
            created_at: group.created_at,
        };
        let unique = (Record::Group, alias, Counter::Group);
        let extra = owner
            .map(|m| vec![membership_item(&m), member_item(&m)])
            .unwrap_or_default();
        let event = |g: &Group| event.clone().in_group(g.id, &g.path);
        let groups = Some(Directory::Groups);
        self.create_unique_with(unique, groups, extra, (record, group_item), event)
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
        event: &Event,
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
        let unique = (Record::Project, alias, Counter::Project);
        let event = |p: &Project| event.clone().in_project(p);
        let projects = Some(Directory::Projects);
        self.create_unique(unique, projects, (record, project_item), event)
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

    async fn groups(&self) -> StoreResult<Vec<Group>> {
        self.directory(Directory::Groups, group_from).await
    }

    async fn projects(&self) -> StoreResult<Vec<Project>> {
        self.directory(Directory::Projects, project_from).await
    }

    async fn create_user(&self, user: NewUser, event: &Event) -> StoreResult<User> {
        let unique = (Record::User, Key::username(&user.username), Counter::User);
        let directory = Some(Directory::Users);
        let event = |u: &User| event.clone().with_detail_field("user_id", u.id);
        let record = |id| user.into_user(id);
        self.create_unique(unique, directory, (record, user_item), event)
            .await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        self.directory(Directory::Users, user_from).await
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        self.get(&Key::user(id))
            .await?
            .map(|i| user_from(&i))
            .transpose()
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
        event: &Event,
    ) -> StoreResult<Membership> {
        let membership = Membership {
            user_id,
            target: target.clone(),
            role,
        };
        let mut tx = self.transaction();
        tx.put((), with_event(membership_item(&membership), event), None)?;
        tx.put((), member_item(&membership), None)?;
        self.run(tx).await?.map_err(|c| c.into_error())?;
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

    async fn create_token(
        &self,
        token: NewToken,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<Token> {
        let id = self.next_id(Counter::Token).await?;
        let token = token.into_token(id, now);
        let alias = token_alias_item(id, &token.sha256);
        let owned = Key::owned_token(&token.grant.owner(), id);
        let mirrors = vec![owned_token_item(&owned, &token.sha256)];
        let name = Key::token_id(id).pk;
        let event = event.clone().with_detail_field("token_id", id);
        let item = with_event(token_item(&token), &event);
        self.put_with_alias(item, alias, mirrors, Record::Token, &name)
            .await?;
        Ok(token)
    }

    /// Read strongly: a token revoked by another function instance is refused from the next
    /// request on (an eventually consistent read could still find it valid for a moment).
    async fn token_by_sha256(&self, sha256: &[u8; 32]) -> StoreResult<Option<Token>> {
        self.get(&Key::token(sha256))
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

    async fn revoke_token(&self, id: i64, event: &Event) -> StoreResult<Token> {
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
            .update_expression(format!("SET revoked = :t, {EVENT} = :ev"))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":ev", s(event.to_json()))
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

    async fn members_of(&self, target: &MembershipTarget) -> StoreResult<Vec<Membership>> {
        let request = self.query(&Partition::members(target));
        let items = self.query_all(request).await?;
        items.iter().map(|i| member_from(target, i)).collect()
    }

    async fn remove_membership(
        &self,
        user_id: i64,
        target: &MembershipTarget,
        event: &Event,
    ) -> StoreResult<()> {
        let mut tx = self.transaction();
        tx.put(false, event_item(event), None)?;
        let exists = Condition::new("attribute_exists(PK)");
        tx.delete(true, &Key::membership(user_id, target), Some(exists))?;
        tx.delete(false, &Key::member(target, user_id), None)?;
        self.run(tx).await?.map_err(|cancelled| {
            if cancelled.failed(true) {
                let (kind, value) = target.to_parts();
                StoreError::not_found(
                    Record::Membership,
                    format!("user {user_id} in {kind} {value}"),
                )
            } else {
                cancelled.into_error()
            }
        })
    }

    async fn replace_token(
        &self,
        old: i64,
        new: NewToken,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<Token> {
        let sha256 = self
            .token_sha256(old)
            .await?
            .ok_or_else(|| StoreError::not_found(Record::Token, old))?;
        let id = self.next_id(Counter::Token).await?;
        let token = new.into_token(id, now);
        let owned = Key::owned_token(&token.grant.owner(), id);
        let mut tx = self.transaction();
        tx.update(true, &Key::token(&sha256), |u| {
            u.update_expression("SET revoked = :t")
                .condition_expression("attribute_exists(PK) AND revoked <> :t")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
        })?;
        let event = event.clone().with_detail_field("new_token_id", id);
        let item = with_event(token_item(&token), &event);
        tx.put(false, item, Some(Condition::item_is_new()))?;
        tx.put(
            false,
            token_alias_item(id, &token.sha256),
            Some(Condition::item_is_new()),
        )?;
        tx.put(false, owned_token_item(&owned, &token.sha256), None)?;
        self.run(tx).await?.map_err(|cancelled| {
            if cancelled.failed(true) {
                StoreError::not_found(Record::Token, old)
            } else {
                cancelled.into_error()
            }
        })?;
        Ok(token)
    }

    async fn tokens_of(&self, owner: &TokenOwner) -> StoreResult<Vec<Token>> {
        let request = self.query(&Partition::owned_tokens(owner));
        let keys = self
            .query_all(request)
            .await?
            .iter()
            .map(|i| owned_token_sha256(i).map(|sha| Key::token(&sha)))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut tokens = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            for item in self.batch_get(chunk.to_vec()).await? {
                tokens.push(token_from(&item)?);
            }
        }
        tokens.sort_by_key(|t| t.id);
        Ok(tokens)
    }

    async fn record_token_use(&self, token: &Token, at: Timestamp) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::token(&token.sha256).item()))
            .update_expression("SET last_used_at = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":at", AttributeValue::N(at.millis().to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Gone meanwhile: nothing to write down.
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(sdk_failure(e)),
        }
    }
}
