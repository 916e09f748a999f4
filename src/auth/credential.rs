//! The credential a request presents, in every header and query form GitLab clients use, in
//! GitLab's order of precedence. Extracting it decides nothing; `auth::authenticate` does.

use axum::http::{HeaderMap, Method, header};
use base64::Engine;

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
}
