//! Use cases of the web UI's sign-in: a personal token is exchanged for a session (its id in a
//! cookie, its hash in the store, with the form token that guards its writes), which acts as
//! the token's user until it expires or is signed out.

use super::{Error, Registry};
use crate::auth::{Denied, Principal, hash_secret};
use crate::domain::{Scope, Timestamp, TokenGrant, User, WebSession};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// How long a sign-in lasts unless configured.
pub const DEFAULT_WEB_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// A signed-in viewer: the user, what they act as, and their session's form token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub principal: Principal,
    pub csrf: String,
    pub expires_at: Timestamp,
}

impl SignedIn {
    /// Does a form's token match this session's (in constant time)?
    pub fn form_token_matches(&self, token: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// A fresh random secret, hex.
fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

impl Registry {
    /// How long a web sign-in lasts.
    pub fn with_web_session_ttl(mut self, ttl: Duration) -> Self {
        self.web_session_ttl = ttl.max(Duration::from_secs(60));
        self
    }

    /// Sign in with a personal token of the `api` scope (a session acts as its user in full; a
    /// `read_api` token cannot sign in): the new session's id (for the cookie; kept nowhere)
    /// and how long it lasts.
    pub async fn sign_in(&self, personal_token: &str) -> Result<(String, Duration), Error> {
        let now = Timestamp::now();
        let token = self
            .identities
            .token_by_sha256(&hash_secret(personal_token.trim()))
            .await?
            .filter(|t| !t.revoked && !t.expired(now))
            .ok_or(Denied::Unauthorized)?;
        let TokenGrant::Personal { user_id, scopes } = &token.grant else {
            return Err(Denied::Unauthorized.into());
        };
        if !scopes.contains(&Scope::Api) {
            return Err(Denied::InsufficientScope.into());
        }
        let id = random_hex();
        // A session never outlives the token it was signed in with.
        let mut expires_at = now.plus_seconds(self.web_session_ttl.as_secs() as i64);
        if let Some(token_expiry) = token.expires_at {
            expires_at = expires_at.min(token_expiry);
        }
        let session = WebSession {
            sha256: hash_secret(&id),
            user_id: *user_id,
            token_id: token.id,
            csrf: random_hex(),
            created_at: now,
            expires_at,
        };
        self.meta.create_web_session(&session).await?;
        let ttl = Duration::from_millis((expires_at.millis() - now.millis()).max(0) as u64);
        Ok((id, ttl))
    }

    /// The viewer a session cookie names, if it is signed in still.
    pub async fn signed_in_by(&self, session_id: &str) -> Result<Option<SignedIn>, Error> {
        let Some(session) = self.meta.web_session(&hash_secret(session_id)).await? else {
            return Ok(None);
        };
        let now = Timestamp::now();
        if session.expired(now) {
            return Ok(None);
        }
        // Its token revoked (or gone): the session ends with it, everywhere, at once.
        let token = self.meta.token_by_id(session.token_id).await?;
        if !token.is_some_and(|t| !t.revoked && !t.expired(now)) {
            return Ok(None);
        }
        let Some(user) = self.meta.user_by_id(session.user_id).await? else {
            return Ok(None);
        };
        // A session acts as its user with the `api` scope, as no token: nothing it opens is
        // tied to a token of the user's.
        let principal = Principal::User {
            user_id: user.id,
            scopes: vec![Scope::Api],
            job_project: None,
            token_id: 0,
        };
        Ok(Some(SignedIn {
            user,
            principal,
            csrf: session.csrf,
            expires_at: session.expires_at,
        }))
    }

    /// Sign out: the session is gone at once, wherever it is used.
    pub async fn sign_out(&self, session_id: &str) -> Result<(), Error> {
        self.meta
            .delete_web_session(&hash_secret(session_id))
            .await?;
        Ok(())
    }
}

/// A project on the start page: what the viewer sees of it, and how many packages it holds.
pub struct ProjectSummary {
    pub seen: super::SeenProject,
    /// Live packages (`None`: more than GitLab's count limit).
    pub packages: Option<u64>,
}

/// The start page's content: the viewer's groups (and whether they own each), and one page of
/// the projects they may read.
pub struct Overview {
    pub groups: Vec<(crate::domain::Group, bool)>,
    pub projects: Vec<ProjectSummary>,
    pub has_next: bool,
}

/// Projects per start page: each is counted, so a page's work stays bounded.
pub const OVERVIEW_PAGE: usize = 20;

impl Registry {
    /// The start page `page` (1-based): the groups the viewer belongs to, and a page of the
    /// projects they may read with their package counts (one counting query each).
    pub async fn overview(&self, principal: &Principal, page: usize) -> Result<Overview, Error> {
        let mut groups = Vec::new();
        let user = self.signed_in(principal).await.ok();
        for group in self.member_groups(principal).await? {
            let owner = match &user {
                Some(u) => self.group_role(u, &group).await? == Some(crate::domain::Role::Owner),
                None => false,
            };
            groups.push((group, owner));
        }
        let visible = self.visible_projects(principal).await?;
        let skip = page.saturating_sub(1) * OVERVIEW_PAGE;
        let has_next = visible.len() > skip + OVERVIEW_PAGE;
        let mut projects = Vec::new();
        for seen in visible.into_iter().skip(skip).take(OVERVIEW_PAGE) {
            let query = crate::domain::PackageQuery::parse([("per_page", "1")], false)?;
            let listed = self
                .meta
                .list_packages(std::slice::from_ref(&seen.project), &query)
                .await?;
            projects.push(ProjectSummary {
                packages: listed.total,
                seen,
            });
        }
        Ok(Overview {
            groups,
            projects,
            has_next,
        })
    }

    /// Packages whose name holds every word of `term`, in the projects the viewer may read
    /// (newest first, at most `limit`), with their projects.
    pub async fn search_packages(
        &self,
        principal: &Principal,
        term: &str,
        limit: u64,
    ) -> Result<Vec<(crate::domain::Package, crate::domain::Project)>, Error> {
        let projects: Vec<_> = self
            .visible_projects(principal)
            .await?
            .into_iter()
            .map(|s| s.project)
            .collect();
        if projects.is_empty() {
            return Ok(Vec::new());
        }
        let per_page = limit.clamp(1, 100).to_string();
        let pairs = [("package_name", term), ("per_page", per_page.as_str())];
        let query = crate::domain::PackageQuery::parse(pairs, true)?;
        let listed = self.meta.list_packages(&projects, &query).await?;
        Ok(listed
            .items
            .into_iter()
            .filter_map(|p| {
                let project = projects.iter().find(|x| x.id == p.project_id)?.clone();
                Some((p, project))
            })
            .collect())
    }
}
