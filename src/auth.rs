//! Authentication and authorization: which credential a request carries (every header and
//! query form GitLab clients use), who it belongs to, and what that principal may do.
//!
//! Secrets are only ever hashed (SHA-256) and compared in constant time; they are never logged.

use crate::domain::{Membership, Visibility};
use crate::domain::{
    MembershipTarget, Project, Role, Scope, Timestamp, Token, TokenGrant, TokenKind,
};
use crate::registry::Error;
use crate::store::{MetaStore, StoreError};
use axum::http::{HeaderMap, Method, header};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The credential a request presented, in GitLab's order of precedence.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `PRIVATE-TOKEN` header or `private_token` query.
    PrivateToken(String),
    /// `JOB-TOKEN` header or `job_token` query.
    JobToken(String),
    /// `DEPLOY-TOKEN` header.
    DeployToken(String),
    /// `Authorization: Bearer` (a personal or job token).
    Bearer(String),
    /// `Authorization: Basic` (user and token as password).
    Basic { user: String, password: String },
    /// `Authorization: Basic` as `gitlab-ci-token` on a download (`GET`/`HEAD`): the one Basic
    /// form in which GitLab also accepts a job token.
    CiJobBasic(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        let kind = match self {
            Credential::PrivateToken(_) => "PrivateToken",
            Credential::JobToken(_) => "JobToken",
            Credential::DeployToken(_) => "DeployToken",
            Credential::Bearer(_) => "Bearer",
            Credential::Basic { .. } => "Basic",
            Credential::CiJobBasic(_) => "CiJobBasic",
        };
        write!(f, "Credential::{kind}(<redacted>)")
    }
}

impl Credential {
    /// The credential in `headers` or the query pairs of a `method` request, if any.
    pub fn from_request(
        headers: &HeaderMap,
        query: &[(String, String)],
        method: &Method,
    ) -> Option<Self> {
        let header_value = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let query_value = |name: &str| {
            query
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        if let Some(t) = header_value("private-token").or_else(|| query_value("private_token")) {
            return Some(Credential::PrivateToken(t.to_string()));
        }
        if let Some(t) = header_value("job-token").or_else(|| query_value("job_token")) {
            return Some(Credential::JobToken(t.to_string()));
        }
        if let Some(t) = header_value("deploy-token") {
            return Some(Credential::DeployToken(t.to_string()));
        }
        let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
        let (scheme, rest) = auth.split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Some(Credential::Bearer(rest.to_string()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, password) = decoded.split_once(':')?;
            let download = matches!(*method, Method::GET | Method::HEAD);
            if download && user == "gitlab-ci-token" {
                return Some(Credential::CiJobBasic(password.to_string()));
            }
            return Some(Credential::Basic {
                user: user.to_string(),
                password: password.to_string(),
            });
        }
        None
    }
}

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
}

/// Resolve a credential to a principal: who it is, or why it is refused (`Error::Denied`).
pub async fn authenticate(
    meta: &dyn MetaStore,
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
    let token = lookup(meta, secret).await?;
    let fallback = if strict {
        Err(Denied::Unauthorized)
    } else {
        Ok(Principal::Anonymous)
    };
    let Some(token) = token else {
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
    let expired = token.expires_at.is_some_and(|at| at <= now);
    match token.kind() {
        TokenKind::Personal if token.revoked => Err(Denied::Revoked.into()),
        TokenKind::Personal if expired => Err(Denied::Expired.into()),
        TokenKind::Job if token.revoked || expired => Err(Denied::Unauthorized.into()),
        TokenKind::Deploy if token.revoked || expired => Ok(Principal::Anonymous),
        _ => Ok(principal_of(token)),
    }
}

async fn lookup(meta: &dyn MetaStore, secret: &str) -> Result<Option<Token>, StoreError> {
    let sha = hash_secret(secret);
    let token = meta.token_by_sha256(&sha).await?;
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
    if token.expires_at.is_some_and(|at| at <= now) {
        return Err(Denied::Expired);
    }
    Ok(principal_of(token))
}

impl Principal {
    /// The id of the token presented, if any.
    pub fn token_id(&self) -> Option<i64> {
        match self {
            Principal::Anonymous => None,
            Principal::User { token_id, .. } | Principal::Deploy { token_id, .. } => {
                Some(*token_id)
            }
        }
    }

    /// The token-scope check GitLab makes while authenticating: `api` for writes, `api` or
    /// `read_api` for reads. Deploy-token scopes are checked against the project instead.
    pub fn check_scope(&self, action: Action) -> Result<(), Denied> {
        let Principal::User { scopes, .. } = self else {
            return Ok(());
        };
        let ok = scopes.contains(&Scope::Api)
            || (action == Action::Read && scopes.contains(&Scope::ReadApi));
        if ok {
            Ok(())
        } else {
            Err(Denied::InsufficientScope)
        }
    }
}

/// The highest role any of `memberships` gives on `project` (its own, its group's, or any
/// ancestor group's).
pub fn effective_role(memberships: &[Membership], project: &Project) -> Option<Role> {
    memberships
        .iter()
        .filter(|m| m.target.covers(project.id, project.namespace_path()))
        .map(|m| m.role)
        .max()
}

/// May `principal` (with `memberships`, for users) do `action` on `project`?
pub fn decide(
    principal: &Principal,
    action: Action,
    project: &Project,
    memberships: &[Membership],
) -> Result<(), Denied> {
    let public = project.visibility == Visibility::Public;
    match principal {
        Principal::Anonymous => {
            if public && action == Action::Read {
                Ok(())
            } else {
                Err(Denied::Unauthorized)
            }
        }
        Principal::User { job_project, .. } => {
            principal.check_scope(action)?;
            let in_scope = job_project.is_none_or(|p| p == project.id);
            let role = if in_scope {
                effective_role(memberships, project)
            } else {
                None
            };
            if !public && role.is_none() {
                return Err(Denied::ProjectNotFound);
            }
            let needed = match action {
                Action::Read => return Ok(()),
                Action::Write => Role::Developer,
                Action::Delete => Role::Maintainer,
            };
            if role.is_some_and(|r| r >= needed) {
                Ok(())
            } else {
                Err(Denied::Forbidden)
            }
        }
        Principal::Deploy { target, scopes, .. } => {
            if !target.covers(project.id, project.namespace_path()) {
                return match (public, action) {
                    (true, Action::Read) => Ok(()),
                    (true, _) => Err(Denied::Forbidden),
                    (false, _) => Err(Denied::ProjectNotFound),
                };
            }
            let write = scopes.contains(&Scope::WritePackageRegistry);
            let ok = match action {
                Action::Read => write || scopes.contains(&Scope::ReadPackageRegistry),
                Action::Write | Action::Delete => write,
            };
            if ok { Ok(()) } else { Err(Denied::Forbidden) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[test]
    fn every_credential_form_is_recognised() {
        let q = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        type Case = (HeaderMap, Vec<(String, String)>, Option<Credential>);
        let cases: Vec<Case> = vec![
            (
                headers(&[("private-token", "p")]),
                vec![],
                Some(Credential::PrivateToken("p".into())),
            ),
            (
                headers(&[]),
                q("private_token", "p"),
                Some(Credential::PrivateToken("p".into())),
            ),
            (
                headers(&[("job-token", "j")]),
                vec![],
                Some(Credential::JobToken("j".into())),
            ),
            (
                headers(&[]),
                q("job_token", "j"),
                Some(Credential::JobToken("j".into())),
            ),
            (
                headers(&[("deploy-token", "d")]),
                vec![],
                Some(Credential::DeployToken("d".into())),
            ),
            (
                headers(&[("authorization", "Bearer b")]),
                vec![],
                Some(Credential::Bearer("b".into())),
            ),
            (
                headers(&[("authorization", &basic("u", "s:x"))]),
                vec![],
                Some(Credential::Basic {
                    user: "u".into(),
                    password: "s:x".into(),
                }),
            ),
            (headers(&[("authorization", "Basic !!!")]), vec![], None),
            (headers(&[("authorization", "Digest x")]), vec![], None),
            (headers(&[("private-token", "")]), vec![], None),
            (headers(&[]), q("other", "x"), None),
            (
                headers(&[("private-token", "p"), ("job-token", "j")]),
                vec![],
                Some(Credential::PrivateToken("p".into())),
            ),
        ];
        for (h, query, expected) in cases {
            assert_eq!(
                Credential::from_request(&h, &query, &Method::PUT),
                expected,
                "{h:?} {query:?}"
            );
        }
    }

    #[test]
    fn ci_job_basic_is_recognised_on_downloads_only() {
        let h = headers(&[("authorization", &basic("gitlab-ci-token", "djt-x"))]);
        for method in [Method::GET, Method::HEAD] {
            assert_eq!(
                Credential::from_request(&h, &[], &method),
                Some(Credential::CiJobBasic("djt-x".into()))
            );
        }
        for method in [Method::PUT, Method::POST, Method::DELETE] {
            assert_eq!(
                Credential::from_request(&h, &[], &method),
                Some(Credential::Basic {
                    user: "gitlab-ci-token".into(),
                    password: "djt-x".into(),
                })
            );
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credential::Basic {
            user: "u".into(),
            password: "dpat-secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
        assert!(!format!("{:?}", Credential::PrivateToken("dpat-s3".into())).contains("s3"));
    }

    #[test]
    fn secrets_are_prefixed_and_hashed() {
        let s = new_secret(TokenKind::Personal);
        assert!(s.starts_with("dpat-") && s.len() == 45);
        assert_ne!(s, new_secret(TokenKind::Personal));
        assert_eq!(hash_secret(&s), hash_secret(&s));
        assert_ne!(hash_secret(&s), hash_secret("dpat-other"));
    }

    fn project(visibility: Visibility) -> Project {
        Project {
            id: 10,
            name: "app".into(),
            path_with_namespace: "grp/sub/app".into(),
            namespace_id: 2,
            visibility,
            created_at: Timestamp::from_millis(0),
        }
    }

    fn member(target: MembershipTarget, role: Role) -> Vec<Membership> {
        vec![Membership {
            user_id: 1,
            target,
            role,
        }]
    }

    fn user(scopes: &[Scope]) -> Principal {
        Principal::User {
            user_id: 1,
            scopes: scopes.to_vec(),
            job_project: None,
            token_id: 1,
        }
    }

    #[test]
    fn role_table_for_users() {
        use Action::*;
        use Denied::*;
        use Visibility::*;
        let g = |role| member(MembershipTarget::Group("grp".into()), role);
        let none: Vec<Membership> = vec![];
        let api = user(&[Scope::Api]);
        #[rustfmt::skip]
        type Row = (Visibility, Vec<Membership>, Action, Result<(), Denied>);
        let table: Vec<Row> = vec![
            (Public, none.clone(), Read, Ok(())),
            (Public, none.clone(), Write, Err(Forbidden)),
            (Private, none.clone(), Read, Err(ProjectNotFound)),
            (Private, none.clone(), Write, Err(ProjectNotFound)),
            (Private, g(Role::Guest), Read, Ok(())),
            (Private, g(Role::Guest), Write, Err(Forbidden)),
            (Private, g(Role::Reporter), Write, Err(Forbidden)),
            (Private, g(Role::Developer), Write, Ok(())),
            (Private, g(Role::Developer), Delete, Err(Forbidden)),
            (Private, g(Role::Maintainer), Delete, Ok(())),
            (Private, g(Role::Owner), Delete, Ok(())),
            (
                Private,
                member(MembershipTarget::Project(10), Role::Developer),
                Write,
                Ok(()),
            ),
            (
                Private,
                member(MembershipTarget::Project(11), Role::Owner),
                Read,
                Err(ProjectNotFound),
            ),
            (
                Private,
                member(MembershipTarget::Group("grp/sub".into()), Role::Developer),
                Write,
                Ok(()),
            ),
            (
                Private,
                member(MembershipTarget::Group("other".into()), Role::Owner),
                Read,
                Err(ProjectNotFound),
            ),
        ];
        for (vis, memberships, action, expected) in table {
            assert_eq!(
                decide(&api, action, &project(vis), &memberships),
                expected,
                "{vis:?} {memberships:?} {action:?}"
            );
        }
    }

    #[test]
    fn highest_role_wins() {
        let ms = vec![
            Membership {
                user_id: 1,
                target: MembershipTarget::Group("grp".into()),
                role: Role::Guest,
            },
            Membership {
                user_id: 1,
                target: MembershipTarget::Project(10),
                role: Role::Maintainer,
            },
        ];
        assert_eq!(
            effective_role(&ms, &project(Visibility::Private)),
            Some(Role::Maintainer)
        );
    }

    #[test]
    fn anonymous_and_scopes() {
        let p = project(Visibility::Public);
        assert_eq!(decide(&Principal::Anonymous, Action::Read, &p, &[]), Ok(()));
        assert_eq!(
            decide(&Principal::Anonymous, Action::Write, &p, &[]),
            Err(Denied::Unauthorized)
        );
        let private = project(Visibility::Private);
        assert_eq!(
            decide(&Principal::Anonymous, Action::Read, &private, &[]),
            Err(Denied::Unauthorized)
        );
        let read_api = user(&[Scope::ReadApi]);
        let dev = member(MembershipTarget::Project(10), Role::Developer);
        assert_eq!(decide(&read_api, Action::Read, &private, &dev), Ok(()));
        assert_eq!(
            decide(&read_api, Action::Write, &private, &dev),
            Err(Denied::InsufficientScope)
        );
    }

    #[test]
    fn job_tokens_only_act_in_their_project() {
        let dev = member(MembershipTarget::Group("grp".into()), Role::Developer);
        let job = |p| Principal::User {
            user_id: 1,
            scopes: vec![Scope::Api],
            job_project: Some(p),
            token_id: 1,
        };
        let private = project(Visibility::Private);
        assert_eq!(decide(&job(10), Action::Write, &private, &dev), Ok(()));
        assert_eq!(
            decide(&job(11), Action::Read, &private, &dev),
            Err(Denied::ProjectNotFound)
        );
        assert_eq!(
            decide(&job(11), Action::Read, &project(Visibility::Public), &dev),
            Ok(())
        );
    }

    #[test]
    fn deploy_tokens() {
        use Action::*;
        let dt = |target, scopes: &[Scope]| Principal::Deploy {
            target,
            scopes: scopes.to_vec(),
            token_id: 1,
        };
        let read = &[Scope::ReadPackageRegistry][..];
        let write = &[Scope::WritePackageRegistry][..];
        let private = project(Visibility::Private);
        let public = project(Visibility::Public);
        let own = MembershipTarget::Project(10);
        let grp = MembershipTarget::Group("grp".into());
        let other = MembershipTarget::Project(99);
        #[rustfmt::skip]
        let table = vec![
            (dt(own.clone(), read), Read, &private, Ok(())),
            (dt(own.clone(), read), Write, &private, Err(Denied::Forbidden)),
            (dt(own.clone(), write), Write, &private, Ok(())),
            (dt(own.clone(), write), Read, &private, Ok(())),
            (dt(own.clone(), write), Delete, &private, Ok(())),
            (dt(grp.clone(), write), Write, &private, Ok(())),
            (dt(other.clone(), write), Read, &private, Err(Denied::ProjectNotFound)),
            (dt(other.clone(), write), Read, &public, Ok(())),
            (dt(other.clone(), write), Write, &public, Err(Denied::Forbidden)),
        ];
        for (principal, action, project, expected) in table {
            assert_eq!(
                decide(&principal, action, project, &[]),
                expected,
                "{principal:?} {action:?}"
            );
        }
    }
}
