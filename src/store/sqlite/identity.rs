//! `IdentityStore` on SQLite: groups, projects, users, memberships and tokens.

use super::events::record;
use super::rows::{
    GROUP_COLS, MEMBERSHIP_COLS, PROJECT_COLS, TOKEN_COLS, USER_COLS, corrupt_key, group_row,
    membership_row, project_row, target_columns, token_row, user_row,
};
use super::{Cached, SqliteMetaStore, db_err, exists_as};
use crate::domain::{
    Event, Group, Membership, MembershipTarget, NewGroup, NewToken, NewUser, Project, Role, Scope,
    Timestamp, Token, TokenOwner, User, Visibility,
};
use crate::store::{IdentityStore, Record, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl IdentityStore for SqliteMetaStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        self.read(|c| {
            let n: i64 = c
                .query_row_cached(
                    "SELECT (SELECT COUNT(*) FROM groups) + (SELECT COUNT(*) FROM users) \
                     + (SELECT COUNT(*) FROM tokens)",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(n == 0)
        })
        .await
    }

    async fn create_group(&self, group: NewGroup, event: &Event) -> StoreResult<Group> {
        let event = event.clone();
        self.call(move |c| {
            let NewGroup {
                path,
                parent_id,
                created_at,
                owner,
            } = group;
            let tx = c.transaction().map_err(db_err)?;
            tx.execute(
                "INSERT INTO groups (path, parent_id, created_at) VALUES (?1, ?2, ?3)",
                params![path, parent_id, created_at.millis()],
            )
            .map_err(exists_as(Record::Group, &path))?;
            let id = tx.last_insert_rowid();
            record(&tx, &event.in_group(id, &path))?;
            if let Some(user_id) = owner {
                tx.execute(
                    "INSERT INTO memberships (user_id, target_kind, target, access_level) \
                     VALUES (?1, 'group', ?2, ?3)",
                    params![user_id, path, Role::Owner.access_level()],
                )
                .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(Group {
                id,
                path,
                parent_id,
                created_at,
            })
        })
        .await
    }

    async fn group_by_path(&self, path: &str) -> StoreResult<Option<Group>> {
        let sql = format!("SELECT {GROUP_COLS} FROM groups WHERE path = ?1");
        self.read_one(sql, path.to_string(), group_row).await
    }

    async fn group_by_id(&self, id: i64) -> StoreResult<Option<Group>> {
        let sql = format!("SELECT {GROUP_COLS} FROM groups WHERE id = ?1");
        self.read_one(sql, id, group_row).await
    }

    async fn create_project(
        &self,
        group: &Group,
        name: &str,
        visibility: Visibility,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<Project> {
        let (group_id, full_path, name) = (
            group.id,
            format!("{}/{}", group.path, name),
            name.to_string(),
        );
        let event = event.clone();
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            tx.execute_cached(
                "INSERT INTO projects (namespace_id, name, path, visibility, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![group_id, name, full_path, visibility.as_str(), now.millis()],
            )
            .map_err(exists_as(Record::Project, &full_path))?;
            let project = Project {
                id: tx.last_insert_rowid(),
                name,
                path_with_namespace: full_path,
                namespace_id: group_id,
                visibility,
                created_at: now,
            };
            record(&tx, &event.in_project(&project))?;
            tx.commit().map_err(db_err)?;
            Ok(project)
        })
        .await
    }

    async fn project_by_id(&self, id: i64) -> StoreResult<Option<Project>> {
        let sql = format!("SELECT {PROJECT_COLS} FROM projects WHERE id = ?1");
        self.read_one(sql, id, project_row).await
    }

    async fn project_by_path(&self, path: &str) -> StoreResult<Option<Project>> {
        let sql = format!("SELECT {PROJECT_COLS} FROM projects WHERE path = ?1");
        self.read_one(sql, path.to_string(), project_row).await
    }

    async fn projects_in_group(&self, group: &Group, subgroups: bool) -> StoreResult<Vec<Project>> {
        let (group_id, prefix) = (group.id, format!("{}/", group.path));
        self.read(move |c| {
            if subgroups {
                // Paths of projects below the group start with `<group path>/`; compared with
                // substr rather than LIKE, whose wildcards `_` and `%` could occur in a path.
                c.query_all_cached(
                    &format!(
                        "SELECT {PROJECT_COLS} FROM projects \
                         WHERE substr(path, 1, length(?1)) = ?1 ORDER BY id"
                    ),
                    [prefix],
                    project_row,
                )
            } else {
                c.query_all_cached(
                    &format!(
                        "SELECT {PROJECT_COLS} FROM projects WHERE namespace_id = ?1 ORDER BY id"
                    ),
                    [group_id],
                    project_row,
                )
            }
            .map_err(db_err)
        })
        .await
    }

    async fn groups(&self) -> StoreResult<Vec<Group>> {
        let sql = format!("SELECT {GROUP_COLS} FROM groups ORDER BY id");
        self.read_all(sql, [], group_row).await
    }

    async fn projects(&self) -> StoreResult<Vec<Project>> {
        let sql = format!("SELECT {PROJECT_COLS} FROM projects ORDER BY id");
        self.read_all(sql, [], project_row).await
    }

    async fn create_user(&self, user: NewUser, event: &Event) -> StoreResult<User> {
        let event = event.clone();
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            tx.execute_cached(
                "INSERT INTO users (username, admin, created_at) VALUES (?1, ?2, ?3)",
                params![user.username, user.admin, user.created_at.millis()],
            )
            .map_err(exists_as(Record::User, &user.username))?;
            let user = user.into_user(tx.last_insert_rowid());
            record(&tx, &event.with_detail_field("user_id", user.id))?;
            tx.commit().map_err(db_err)?;
            Ok(user)
        })
        .await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE username = ?1");
        self.read_one(sql, username.to_string(), user_row).await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users ORDER BY id");
        self.read_all(sql, [], user_row).await
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
        self.read_one(sql, id, user_row).await
    }

    async fn set_membership(
        &self,
        user_id: i64,
        target: &MembershipTarget,
        role: Role,
        event: &Event,
    ) -> StoreResult<Membership> {
        let (target, event) = (target.clone(), event.clone());
        self.call(move |c| {
            let (kind, value) = target.to_parts();
            let tx = c.transaction().map_err(db_err)?;
            tx.execute_cached(
                "INSERT INTO memberships (user_id, target_kind, target, access_level) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id, target_kind, target) \
                 DO UPDATE SET access_level = excluded.access_level",
                params![user_id, kind, value, role.access_level()],
            )
            .map_err(db_err)?;
            record(&tx, &event)?;
            tx.commit().map_err(db_err)?;
            Ok(Membership {
                user_id,
                target,
                role,
            })
        })
        .await
    }

    async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<Membership>> {
        self.read(move |c| {
            c.query_all_cached(
                &format!("SELECT {MEMBERSHIP_COLS} FROM memberships WHERE user_id = ?1"),
                [user_id],
                |r| membership_row(user_id, r),
            )
            .map_err(db_err)
        })
        .await
    }

    async fn members_of(&self, target: &MembershipTarget) -> StoreResult<Vec<Membership>> {
        let (kind, value) = target.to_parts();
        self.read(move |c| {
            c.query_all_cached(
                "SELECT user_id, target_kind, target, access_level FROM memberships \
                 WHERE target_kind = ?1 AND target = ?2 ORDER BY user_id",
                params![kind, value],
                |r| {
                    let user_id: i64 = r.get(0)?;
                    let (kind, value): (String, String) = (r.get(1)?, r.get(2)?);
                    let level: i64 = r.get(3)?;
                    let key = || format!("memberships row of user {user_id}");
                    Ok(Membership {
                        user_id,
                        target: MembershipTarget::from_parts(&kind, &value)
                            .ok_or_else(|| corrupt_key(key(), format!("target {value:?}")))?,
                        role: Role::from_access_level(level)
                            .ok_or_else(|| corrupt_key(key(), format!("access level {level}")))?,
                    })
                },
            )
            .map_err(db_err)
        })
        .await
    }

    async fn remove_membership(
        &self,
        user_id: i64,
        target: &MembershipTarget,
        event: &Event,
    ) -> StoreResult<()> {
        let (kind, value) = target.to_parts();
        let event = event.clone();
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let n = tx
                .execute_cached(
                    "DELETE FROM memberships WHERE user_id = ?1 AND target_kind = ?2 \
                     AND target = ?3",
                    params![user_id, kind, value],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::not_found(
                    Record::Membership,
                    format!("user {user_id} in {kind} {value}"),
                ));
            }
            record(&tx, &event)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn create_token(
        &self,
        token: NewToken,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<Token> {
        let event = event.clone();
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let id = insert_token(&tx, &token, now)?;
            record(&tx, &event.with_detail_field("token_id", id))?;
            tx.commit().map_err(db_err)?;
            Ok(token.into_token(id, now))
        })
        .await
    }

    async fn token_by_sha256(&self, sha256: &[u8; 32]) -> StoreResult<Option<Token>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE sha256 = ?1");
        self.read_one(sql, sha256.to_vec(), token_row).await
    }

    async fn token_by_id(&self, id: i64) -> StoreResult<Option<Token>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = ?1");
        self.read_one(sql, id, token_row).await
    }

    async fn revoke_token(&self, id: i64, event: &Event) -> StoreResult<Token> {
        let event = event.clone();
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let n = tx
                .execute_cached("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::not_found(Record::Token, id));
            }
            record(&tx, &event)?;
            let token = tx
                .query_row_cached(
                    &format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = ?1"),
                    [id],
                    token_row,
                )
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(token)
        })
        .await
    }

    async fn replace_token(
        &self,
        old: i64,
        new: NewToken,
        now: Timestamp,
        event: &Event,
    ) -> StoreResult<Token> {
        let event = event.clone();
        self.call(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let revoked = tx
                .execute(
                    "UPDATE tokens SET revoked = 1 WHERE id = ?1 AND revoked = 0",
                    [old],
                )
                .map_err(db_err)?;
            if revoked == 0 {
                return Err(StoreError::not_found(Record::Token, old));
            }
            let id = insert_token(&tx, &new, now)?;
            record(&tx, &event.with_detail_field("new_token_id", id))?;
            tx.commit().map_err(db_err)?;
            Ok(new.into_token(id, now))
        })
        .await
    }

    async fn tokens_of(&self, owner: &TokenOwner) -> StoreResult<Vec<Token>> {
        match owner {
            TokenOwner::User(user_id) => {
                let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE user_id = ?1 ORDER BY id");
                self.read_all(sql, [*user_id], token_row).await
            }
            TokenOwner::Target(target) => {
                let (kind, value) = target.to_parts();
                let sql = format!(
                    "SELECT {TOKEN_COLS} FROM tokens WHERE target_kind = ?1 AND target = ?2 \
                     AND kind = 'deploy' ORDER BY id"
                );
                self.read_all(sql, (kind, value), token_row).await
            }
        }
    }

    async fn record_token_use(&self, token: &Token, at: Timestamp) -> StoreResult<()> {
        let id = token.id;
        self.call(move |c| {
            c.execute_cached(
                "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
                params![id, at.millis()],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

/// Insert `token` (made at `now`); its id. `AlreadyExists` if its hash is taken.
fn insert_token(c: &rusqlite::Connection, token: &NewToken, now: Timestamp) -> StoreResult<i64> {
    let parts = token.grant.to_parts();
    let (kind, value) = target_columns(parts.target.as_ref());
    c.execute_cached(
        "INSERT INTO tokens (kind, sha256, scopes, user_id, target_kind, target, \
         expires_at, created_at, name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            parts.kind.as_str(),
            token.sha256.as_slice(),
            Scope::join(&parts.scopes),
            parts.user_id,
            kind,
            value,
            token.expires_at.map(Timestamp::millis),
            now.millis(),
            token.name,
        ],
    )
    .map_err(exists_as(
        Record::Token,
        format!("sha256 {}...", hex::encode(&token.sha256[..4])),
    ))?;
    Ok(c.last_insert_rowid())
}
