//! Authentication and authorization: which credential a request carries (`credential`), who
//! it belongs to (here), and what that principal may do (`decide`).
//!
//! Secrets are only ever hashed (SHA-256) and compared in constant time; they are never logged.

mod cache;
mod credential;
mod decide;
mod federated;
pub mod oidc;
mod trusted;
pub mod upstream;

pub use cache::{DEFAULT_TTL as IDENTITY_CACHE_TTL, Identities, IdentityCache};
pub use credential::Credential;
pub use decide::{decide, effective_role};
pub use federated::{Federated, Grant, Source};

use crate::domain::{MembershipTarget, Scope, Timestamp, Token, TokenGrant, TokenKind};
use crate::registry::Error;
use crate::store::StoreError;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// SHA-256 of a token secret: the only form in which secrets are stored.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A fresh secret of `kind`: its prefix plus 160 random bits in hex.
pub fn new_secret(kind: TokenKind) -> String {
    format!(
        "{}{}",
        kind.secret_prefix(),
        hex::encode(rand::random::<[u8; 20]>())
    )
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    /// A user through a personal token (`job_project: None`) or a job token (`Some(project)`).
    User {
        user_id: i64,
        scopes: Vec<Scope>,
        job_project: Option<i64>,
        /// The token presented (upload sessions re-check it at commit).
        token_id: i64,
    },
    /// A deploy token of a project or group.
    Deploy {
        target: MembershipTarget,
        scopes: Vec<Scope>,
        token_id: i64,
    },
    /// Someone another service vouched for, for this request only: a CI job's OIDC ID token
    /// that trust rules accept, or a GitLab job token its GitLab confirmed.
    Federated(std::sync::Arc<Federated>),
}

/// What a request wants to do to a project's packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
    Delete,
}

/// Why a request is refused, in the order GitLab decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// 401, no usable credential.
    Unauthorized,
    /// 401, a known token that has expired.
    Expired,
    /// 401, a known token that was revoked.
    Revoked,
    /// 403, the token's scopes do not allow the action.
    InsufficientScope,
    /// 403, authenticated but the role is too low.
    Forbidden,
    /// 404, the project is not visible to this principal.
    ProjectNotFound,
    /// 403, a CI job's token reaching for a project it may not see: from the job's project
    /// to this one (each named by its own path segment, as GitLab names them).
    JobTokenNotAllowed { from: String, to: String },
    /// 503, the service that vouches for a federated credential (an OIDC issuer's keys, the
    /// upstream GitLab) could not be asked; trying again later may succeed.
    VouchUnavailable,
}

/// Resolve a credential to a principal: who it is, or why it is refused (`Error::Denied`).
/// Where a job token may stand (`JOB-TOKEN`, `job_token`, `Bearer`, CI Basic), an OIDC ID
/// token is checked against the trust rules of its issuer, and a token depot does not know is
/// asked of the upstream GitLab, when one is configured.
pub async fn authenticate(
    identities: &Identities,
    credential: Option<&Credential>,
    now: Timestamp,
) -> Result<Principal, Error> {
    let Some(credential) = credential else {
        return Ok(Principal::Anonymous);
    };
    // Unknown or unusable secrets in these forms are an error; in DEPLOY-TOKEN and Basic they
    // leave the request anonymous, as in GitLab.
    let (secret, strict) = match credential {
        Credential::PrivateToken(s) | Credential::JobToken(s) | Credential::Bearer(s) => (s, true),
        Credential::DeployToken(s) => (s, false),
        Credential::Basic { password, .. } | Credential::CiJobBasic(password) => (password, false),
    };
    let job_slot = matches!(
        credential,
        Credential::JobToken(_) | Credential::Bearer(_) | Credential::CiJobBasic(_)
    );
    if job_slot && oidc::OidcVerifier::looks_like_jwt(secret) {
        return trusted::authenticate(identities, secret, now).await;
    }
    let fallback = if strict {
        Err(Denied::Unauthorized)
    } else {
        Ok(Principal::Anonymous)
    };
    let Some(token) = lookup(identities, secret).await? else {
        if job_slot && let Some(upstream) = identities.upstream() {
            return upstream::authenticate(identities, upstream, secret).await;
        }
        return Ok(fallback?);
    };
    let accepted = match credential {
        Credential::PrivateToken(_) => token.kind() == TokenKind::Personal,
        Credential::JobToken(_) => token.kind() == TokenKind::Job,
        Credential::DeployToken(_) => token.kind() == TokenKind::Deploy,
        Credential::Bearer(_) => matches!(token.kind(), TokenKind::Personal | TokenKind::Job),
        Credential::Basic { .. } => {
            matches!(token.kind(), TokenKind::Personal | TokenKind::Deploy)
        }
        Credential::CiJobBasic(_) => true,
    };
    if !accepted {
        return Ok(fallback?);
    }
    let expired = token.expired(now);
    match token.kind() {
        TokenKind::Personal if token.revoked => Err(Denied::Revoked.into()),
        TokenKind::Personal if expired => Err(Denied::Expired.into()),
        TokenKind::Job if token.revoked || expired => Err(Denied::Unauthorized.into()),
        TokenKind::Deploy if token.revoked || expired => Ok(Principal::Anonymous),
        _ => {
            record_use(identities, &token, now).await;
            Ok(principal_of(token))
        }
    }
}

/// Write down a token's use, at most once per [`crate::domain::LAST_USED_RESOLUTION_MS`]. A
/// failure to write it does not fail the request it authenticated.
async fn record_use(identities: &Identities, token: &Token, now: Timestamp) {
    if !token.use_worth_recording(now) {
        return;
    }
    if let Err(e) = identities.record_token_use(token, now).await {
        tracing::warn!(token_id = token.id, error = %e, "could not record a token's last use");
    }
}

async fn lookup(identities: &Identities, secret: &str) -> Result<Option<Token>, StoreError> {
    let sha = hash_secret(secret);
    let token = identities.token_by_sha256(&sha).await?;
    // The store found it by hash; confirm in constant time all the same.
    Ok(token.filter(|t| bool::from(t.sha256.ct_eq(&sha))))
}

fn principal_of(token: Token) -> Principal {
    match token.grant {
        TokenGrant::Personal { user_id, scopes } => Principal::User {
            user_id,
            scopes,
            job_project: None,
            token_id: token.id,
        },
        TokenGrant::Job {
            user_id,
            project_id,
        } => Principal::User {
            user_id,
            scopes: vec![Scope::Api],
            job_project: Some(project_id),
            token_id: token.id,
        },
        TokenGrant::Deploy { target, scopes } => Principal::Deploy {
            target,
            scopes,
            token_id: token.id,
        },
    }
}

/// The principal a stored token stands for now, or why it no longer stands for anyone
/// (revoked, expired): for work done later on a request's behalf (committing an upload).
pub fn principal_of_token(token: Token, now: Timestamp) -> Result<Principal, Denied> {
    if token.revoked {
        return Err(Denied::Revoked);
    }
    if token.expired(now) {
        return Err(Denied::Expired);
    }
    Ok(principal_of(token))
}

impl Principal {
    /// The user acting through a personal token (not a job's, not a deploy token).
    pub fn personal_user(&self) -> Option<i64> {
        match self {
            Principal::User {
                user_id,
                job_project: None,
                ..
            } => Some(*user_id),
            _ => None,
        }
    }

    /// The id of the token presented, if any.
    pub fn token_id(&self) -> Option<i64> {
        match self {
            Principal::Anonymous | Principal::Federated(_) => None,
            Principal::User { token_id, .. } | Principal::Deploy { token_id, .. } => {
                Some(*token_id)
            }
        }
    }

    /// A federated principal written down for an upload session it opens.
    pub fn delegation(&self) -> Option<String> {
        match self {
            Principal::Federated(f) => Some(f.to_delegation()),
            _ => None,
        }
    }

    /// The token-scope check GitLab makes while authenticating: `api` for writes, `api` or
    /// `read_api` for reads. Deploy-token scopes are checked against the project instead.
    pub fn check_scope(&self, action: Action) -> Result<(), Denied> {
        let ok = match self {
            Principal::User { scopes, .. } => scopes_allow(scopes, action),
            Principal::Federated(f) => f.grants.iter().any(|g| scopes_allow(&g.scopes, action)),
            Principal::Anonymous | Principal::Deploy { .. } => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Denied::InsufficientScope)
        }
    }
}

/// Do API scopes allow `action`: `api` anything, `read_api` reads.
pub fn scopes_allow(scopes: &[Scope], action: Action) -> bool {
    scopes.contains(&Scope::Api) || (action == Action::Read && scopes.contains(&Scope::ReadApi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_and_hashed() {
        let s = new_secret(TokenKind::Personal);
        assert!(s.starts_with("dpat-") && s.len() == 45);
        assert_ne!(s, new_secret(TokenKind::Personal));
        assert_eq!(hash_secret(&s), hash_secret(&s));
        assert_ne!(hash_secret(&s), hash_secret("dpat-other"));
    }
}
