//! Use cases of GitLab's user and personal-access-token APIs: who is signed in, the tokens a
//! user holds (list, show, rotate, revoke) and an administrator's users and tokens. The roles a
//! signed-in user holds on projects and groups (administrators: owner everywhere) are decided
//! here for every people API.

use super::events::{event, token_detail};
use super::{Error, Missing, Registry};
use crate::auth::{self, Denied, Principal, hash_secret, new_secret};
use crate::domain::{
    EventType, Group, NewToken, NewUser, Project, Role, Scope, Timestamp, Token, TokenGrant,
    TokenKind, TokenOwner, User, valid_segment,
};
use crate::store::StoreError;

/// A token a route names: the one presented (`self`) or one by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRef {
    Current,
    Id(i64),
}

/// A personal token to make.
pub struct TokenRequest {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<Timestamp>,
}

/// Midnight UTC today, plus `days`.
fn days_from_today(days: i64) -> Timestamp {
    Timestamp::now().start_of_day().plus_seconds(days * 86_400)
}

/// A rotated token lives a week unless asked otherwise (GitLab's default).
const ROTATED_DAYS: i64 = 7;
/// A token an administrator makes lives a year unless asked otherwise, and no longer (GitLab's
/// maximum).
const CREATED_DAYS: i64 = 365;

/// A personal token's expiry as asked (`None`: in `default_days`): after today, and within a
/// year.
fn personal_expiry(asked: Option<Timestamp>, default_days: i64) -> Result<Timestamp, Error> {
    let Some(at) = asked else {
        return Ok(days_from_today(default_days));
    };
    if at <= days_from_today(0) {
        return Err(Error::BadRequest(
            "Expiration date must be in the future".into(),
        ));
    }
    let latest = days_from_today(CREATED_DAYS);
    if at > latest {
        return Err(Error::BadRequest(format!(
            "Expiration date must be before {}",
            latest.to_date()
        )));
    }
    Ok(at)
}

/// `scopes` as a kind of token may carry them, or Grape's refusal.
pub(crate) fn scopes_for(kind: TokenKind, scopes: &[String]) -> Result<Vec<Scope>, Error> {
    let refused = || super::invalid("scopes does not have a valid value");
    let parsed = Scope::parse_list(&scopes.join(",")).map_err(|_| refused())?;
    if parsed.iter().any(|s| !Scope::allowed_for(kind).contains(s)) {
        return Err(refused());
    }
    Ok(parsed)
}

/// Signed in with something other than a personal token (a job, deploy or federated one)?
fn not_personal(principal: &Principal) -> bool {
    !matches!(principal, Principal::Anonymous) && principal.personal_user().is_none()
}

impl Registry {
    /// The user a personal token acts for: the people APIs act for users only.
    pub async fn signed_in(&self, principal: &Principal) -> Result<User, Error> {
        let Some(user_id) = principal.personal_user() else {
            return Err(Denied::Unauthorized.into());
        };
        self.meta
            .user_by_id(user_id)
            .await?
            .ok_or_else(|| Denied::Unauthorized.into())
    }

    /// The role `user` holds on `project` (its own, or a group's above it).
    pub(crate) async fn project_role(
        &self,
        user: &User,
        project: &Project,
    ) -> Result<Option<Role>, Error> {
        if user.admin {
            return Ok(Some(Role::Owner));
        }
        let memberships = self.identities.memberships_of(user.id).await?;
        Ok(auth::effective_role(&memberships, project))
    }

    /// The role `user` holds on `group` (its own, or a group's above it).
    pub(crate) async fn group_role(
        &self,
        user: &User,
        group: &Group,
    ) -> Result<Option<Role>, Error> {
        if user.admin {
            return Ok(Some(Role::Owner));
        }
        let memberships = self.identities.memberships_of(user.id).await?;
        Ok(memberships
            .iter()
            .filter(|m| m.target.covers_group(&group.path))
            .map(|m| m.role)
            .max())
    }

    /// `GET /users?username=` and `GET /users/:id`: a user by name or id, for anyone signed in.
    pub async fn find_user(
        &self,
        principal: &Principal,
        by: Result<i64, &str>,
    ) -> Result<Option<User>, Error> {
        self.signed_in(principal).await?;
        Ok(match by {
            Ok(id) => self.meta.user_by_id(id).await?,
            Err(name) => self.meta.user_by_name(name).await?,
        })
    }

    /// `GET /users`: every user, for anyone signed in (GitLab lists active users to them).
    pub async fn users(&self, principal: &Principal) -> Result<Vec<User>, Error> {
        self.signed_in(principal).await?;
        Ok(self.meta.users().await?)
    }

    /// `POST /users`: an administrator makes a user.
    pub async fn create_user(
        &self,
        principal: &Principal,
        username: &str,
        admin: bool,
    ) -> Result<User, Error> {
        self.administrator(principal).await?;
        if !valid_segment(username) {
            return Err(Error::Validation {
                field: "username",
                message: "is invalid".into(),
            });
        }
        let user = NewUser {
            username: username.to_string(),
            admin,
            created_at: Timestamp::now(),
        };
        let event = event(EventType::UserCreated, principal)
            .with_detail(serde_json::json!({ "username": username, "admin": admin }));
        match self.meta.create_user(user, &event).await {
            Err(StoreError::AlreadyExists { .. }) => {
                Err(Error::Conflict("Username has already been taken".into()))
            }
            other => Ok(other?),
        }
    }

    /// The signed-in administrator: anyone else is refused (403; 401 when not signed in).
    pub(crate) async fn administrator(&self, principal: &Principal) -> Result<User, Error> {
        let user = self.signed_in(principal).await?;
        if user.admin {
            Ok(user)
        } else {
            Err(Denied::Forbidden.into())
        }
    }

    /// `GET /personal_access_tokens`: the caller's own, or (an administrator) `user_id`'s.
    pub async fn personal_tokens(
        &self,
        principal: &Principal,
        user_id: Option<i64>,
    ) -> Result<Vec<Token>, Error> {
        let user = self.signed_in(principal).await?;
        let owner = match user_id {
            Some(id) if id != user.id && !user.admin => return Err(Denied::Unauthorized.into()),
            Some(id) if id != user.id => {
                self.meta
                    .user_by_id(id)
                    .await?
                    .ok_or(Error::NotFound(Missing::Resource))?
                    .id
            }
            _ => user.id,
        };
        let tokens = self.meta.tokens_of(&TokenOwner::User(owner)).await?;
        Ok(tokens
            .into_iter()
            .filter(|t| t.kind() == TokenKind::Personal)
            .collect())
    }

    /// A personal token the caller may manage: the one presented, their own, or (an
    /// administrator) anyone's. Another's or a missing one: 404 to an administrator, 401 to
    /// anyone else (as GitLab answers).
    pub async fn personal_token(
        &self,
        principal: &Principal,
        which: TokenRef,
    ) -> Result<(User, Token), Error> {
        if which == TokenRef::Current && not_personal(principal) {
            return Err(Error::BadRequest(
                "This endpoint requires token type to be a personal access token".into(),
            ));
        }
        let user = self.signed_in(principal).await?;
        let id = match which {
            TokenRef::Current => principal.token_id().ok_or(Denied::Unauthorized)?,
            TokenRef::Id(id) => id,
        };
        let token = self.meta.token_by_id(id).await?;
        let mine = |t: &Token| matches!(t.grant, TokenGrant::Personal { user_id, .. } if user_id == user.id);
        match token {
            Some(t) if t.kind() == TokenKind::Personal && (user.admin || mine(&t)) => Ok((user, t)),
            _ if user.admin => Err(Error::NotFound(Missing::Token)),
            _ => Err(Denied::Unauthorized.into()),
        }
    }

    /// Rotate a personal token: a new one with the same name, scopes and owner (expiring on
    /// `expires_at`, or in a week), and the old one revoked at once. The new secret is in the
    /// answer and nowhere else.
    pub async fn rotate_token(
        &self,
        principal: &Principal,
        which: TokenRef,
        expires_at: Option<Timestamp>,
    ) -> Result<(Token, String), Error> {
        if which == TokenRef::Current && not_personal(principal) {
            return Err(Error::NotAllowed);
        }
        let (_, old) = self.personal_token(principal, which).await?;
        let already = || Error::BadRequest("Token already revoked".into());
        if old.revoked {
            return Err(already());
        }
        let now = Timestamp::now();
        if old.expired(now) {
            return Err(Error::BadRequest("Token is expired".into()));
        }
        let secret = new_secret(TokenKind::Personal);
        let new = NewToken {
            name: old.name.clone(),
            sha256: hash_secret(&secret),
            grant: old.grant.clone(),
            expires_at: Some(personal_expiry(expires_at, ROTATED_DAYS)?),
        };
        // One step: the old revoked and the new saved, or neither (a second rotation of the
        // same token finds it revoked).
        let event = event(EventType::TokenRotated, principal)
            .with_detail(token_detail(&new))
            .with_detail_field("token_id", old.id);
        match self.meta.replace_token(old.id, new, now, &event).await {
            Err(StoreError::NotFound { .. }) => Err(already()),
            made => Ok((made?, secret)),
        }
    }

    /// Revoke a personal token: the one presented or one the caller may manage (another's, to
    /// anyone but an administrator, is GitLab's 400; a missing one 404).
    pub async fn revoke_personal_token(
        &self,
        principal: &Principal,
        which: TokenRef,
    ) -> Result<(), Error> {
        match (self.personal_token(principal, which).await, which) {
            (Ok((_, token)), _) => {
                let event = event(EventType::TokenRevoked, principal).with_detail(
                    serde_json::json!({ "token_id": token.id, "token_name": token.name }),
                );
                self.meta.revoke_token(token.id, &event).await?;
                Ok(())
            }
            (Err(Error::Denied(Denied::Unauthorized)), TokenRef::Id(id)) => {
                self.signed_in(principal).await?;
                match self.meta.token_by_id(id).await? {
                    Some(_) => Err(Error::BadRequest(String::new())),
                    None => Err(Error::NotFound(Missing::Token)),
                }
            }
            (Err(e), _) => Err(e),
        }
    }

    /// A signed-in user makes a personal token of their own (the web UI's tokens page).
    pub async fn create_own_token(
        &self,
        principal: &Principal,
        request: TokenRequest,
    ) -> Result<(Token, String), Error> {
        let user = self.signed_in(principal).await?;
        self.make_personal_token(principal, &user, request).await
    }

    /// `POST /users/:id/personal_access_tokens`: an administrator makes a user's token.
    pub async fn create_personal_token(
        &self,
        principal: &Principal,
        user_id: i64,
        request: TokenRequest,
    ) -> Result<(Token, String), Error> {
        self.administrator(principal).await?;
        let user = self
            .meta
            .user_by_id(user_id)
            .await?
            .ok_or(Error::NotFound(Missing::User))?;
        self.make_personal_token(principal, &user, request).await
    }

    /// A personal token of `user` as `request` asks (scopes checked, expiry within a year):
    /// its record and its secret, shown this once.
    async fn make_personal_token(
        &self,
        principal: &Principal,
        user: &User,
        request: TokenRequest,
    ) -> Result<(Token, String), Error> {
        let scopes = scopes_for(TokenKind::Personal, &request.scopes)?;
        let secret = new_secret(TokenKind::Personal);
        let new = NewToken {
            name: request.name,
            sha256: hash_secret(&secret),
            grant: TokenGrant::Personal {
                user_id: user.id,
                scopes,
            },
            expires_at: Some(personal_expiry(request.expires_at, CREATED_DAYS)?),
        };
        let event = event(EventType::TokenCreated, principal)
            .with_detail(token_detail(&new))
            .with_detail_field("user_id", user.id);
        let made = self
            .meta
            .create_token(new, Timestamp::now(), &event)
            .await?;
        Ok((made, secret))
    }
}
