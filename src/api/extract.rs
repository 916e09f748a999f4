//! Typed extractors: what every handler reads of a request besides its body and path
//! parameters (credential, query pairs, headers), and the project a route's `{id}` names.

use super::project_path::ArrivedPath;
use crate::auth::Credential;
use crate::domain::{InvalidParams, ProjectRef};
use crate::registry::Error;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use std::convert::Infallible;

/// A request's parts that handlers read: owned, so nothing borrowed is held across an await.
pub struct Incoming {
    pub method: Method,
    /// The path as routed (a project or group id in one segment).
    pub path: String,
    /// The path as the client sent it (what links to other pages echo).
    pub arrived_path: String,
    pub headers: HeaderMap,
    /// The query string's pairs, decoded.
    pub query: Vec<(String, String)>,
    /// The credential presented, in any of GitLab's forms.
    pub credential: Option<Credential>,
}

impl Incoming {
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Who presents this request's credential, their token's scope checked for `action`.
    pub async fn principal(
        &self,
        registry: &crate::registry::Registry,
        action: crate::auth::Action,
    ) -> Result<crate::auth::Principal, Error> {
        registry
            .authenticate(self.credential.as_ref(), action)
            .await
    }

    /// The query pairs as `(&str, &str)`.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Incoming {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let credential = Credential::from_request(&parts.headers, &query, &parts.method);
        let path = parts.uri.path().to_string();
        let arrived_path = match parts.extensions.get::<ArrivedPath>() {
            Some(ArrivedPath(arrived)) => arrived.clone(),
            None => path.clone(),
        };
        Ok(Self {
            method: parts.method.clone(),
            path,
            arrived_path,
            headers: parts.headers.clone(),
            query,
            credential,
        })
    }
}

/// The project a route's (decoded) `{id}` names; a reference that names no project is looked
/// up as a path and not found.
pub fn project_ref(id: &str) -> ProjectRef {
    ProjectRef::parse(id).unwrap_or_else(|| ProjectRef::Path(id.to_string()))
}

/// Grape's Integer coercion of a path parameter.
pub fn integer_param(name: &str, value: &str) -> Result<i64, Error> {
    value.parse::<i64>().map_err(|_| {
        let mut errors = InvalidParams::default();
        errors.push(format!("{name} is invalid"));
        Error::Invalid(errors)
    })
}

/// One invalid-parameter message as an error.
pub fn invalid(message: &str) -> Error {
    let mut errors = InvalidParams::default();
    errors.push(message);
    Error::Invalid(errors)
}
