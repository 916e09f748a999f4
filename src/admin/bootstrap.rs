//! `depot admin bootstrap`: the one command a freshly deployed registry needs. It makes an
//! administrator and a personal `api` token for them; everything else (users, groups,
//! projects, members, tokens, trust rules) is then possible over HTTP with that token, without
//! AWS credentials.

use super::{Admin, AdminError, CreatedToken, Result, TokenSpec};
use crate::domain::{Scope, Timestamp, User};

impl Admin {
    /// The administrator `username` (made if missing; an existing user must be one already)
    /// and a new personal token of theirs named `bootstrap`, expiring at `expires_at`.
    pub async fn bootstrap(
        &self,
        username: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(User, CreatedToken)> {
        let existing = self
            .meta
            .user_by_name(username)
            .await
            .map_err(AdminError::Store)?;
        let user = match existing {
            Some(user) if user.admin => user,
            Some(_) => {
                return Err(AdminError::Invalid(format!(
                    "user {username:?} exists and is not an administrator: choose another name"
                )));
            }
            None => self.create_user_as(username, true).await?,
        };
        let spec = TokenSpec::Personal {
            user: username.to_string(),
            scopes: vec![Scope::Api],
            expires_at,
        };
        let token = self.create_named_token("bootstrap", spec).await?;
        Ok((user, token))
    }
}
