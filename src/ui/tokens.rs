//! Tokens in the UI: the viewer's personal tokens (make one with scopes and an expiry, shown
//! once on the page that made it; revoke), and a project's deploy tokens for its maintainers.

use super::layout::{Frame, answer, page};
use crate::auth::Principal;
use crate::domain::{Timestamp, Token};
use crate::registry::{
    DeployTokenRequest, Error, Place, PlaceRef, Registry, TokenRef, TokenRequest,
};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

/// A token form as posted (checkboxes repeat `scopes`, which is why it is read by hand).
#[derive(Debug, Default)]
pub struct TokenForm {
    pub csrf: String,
    pub name: String,
    pub expires_at: String,
    pub scopes: Vec<String>,
}

impl TokenForm {
    pub fn parse(body: &[u8]) -> Self {
        let mut form = TokenForm::default();
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "csrf" => form.csrf = value.into_owned(),
                "name" => form.name = value.into_owned(),
                "expires_at" => form.expires_at = value.into_owned(),
                "scopes" => form.scopes.push(value.into_owned()),
                _ => {}
            }
        }
        form
    }
}

/// What the page says after a form: the secret of a token just made (shown this once, with
/// a copy button), or why none was made.
pub enum Said<'a> {
    Nothing,
    Made(&'a str),
    Refused(String),
}

fn made(said: &Said<'_>) -> Markup {
    html! {
        @if let Said::Refused(why) = said {
            p.notice.error role="alert" { (why) }
        }
        @if let Said::Made(secret) = said {
            div.notice.success role="status" {
                p { "Your new token. Copy it now: it will not be shown again." }
                p { code id="new-token" { (secret) } button.copy.secondary type="button" data-copy="new-token" hidden { "Copy" } }
            }
        }
    }
}

/// The scopes a token form offers: checkbox id, scope, what it says.
type Offered = [(&'static str, &'static str, &'static str); 2];

const PERSONAL_SCOPES: Offered = [
    ("scope-api", "api", "api: everything you may do"),
    ("scope-read", "read_api", "read_api: read only"),
];

const DEPLOY_SCOPES: Offered = [
    (
        "scope-read",
        "read_package_registry",
        "read_package_registry",
    ),
    (
        "scope-write",
        "write_package_registry",
        "write_package_registry",
    ),
];

/// The form that makes a token (personal or deploy): name, expiry, the `scopes` offered.
fn token_form(action: &str, csrf: &str, expiry: &str, scopes: &Offered, submit: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            label for="name" { "Name" }
            input type="text" id="name" name="name" required maxlength="255";
            label for="expires_at" { (expiry) }
            input type="date" id="expires_at" name="expires_at";
            fieldset { legend { "Scopes" }
                @for (id, scope, text) in scopes {
                    p { input type="checkbox" id=(id) name="scopes" value=(scope); " " label.inline for=(id) { (text) } }
                }
            }
            p { button type="submit" { (submit) } }
        }
    }
}

/// 201 for a page showing a token just made, 400 for one saying why none was, else 200.
fn status_of(said: &Said<'_>) -> StatusCode {
    match said {
        Said::Nothing => StatusCode::OK,
        Said::Made(_) => StatusCode::CREATED,
        Said::Refused(_) => StatusCode::BAD_REQUEST,
    }
}

/// A form's refusal in words the page can show (the input's fault), or `None` (a failure).
fn refusal(e: &Error) -> Option<String> {
    match e {
        Error::Invalid(params) => Some(params.to_string()),
        Error::BadRequest(why) => Some(why.clone()),
        _ => None,
    }
}

fn token_rows(tokens: &[Token], revoke: impl Fn(&Token) -> Option<String>, csrf: &str) -> Markup {
    let now = Timestamp::now();
    html! {
        table {
            thead { tr { th { "Name" } th { "Scopes" } th.wide { "Created" } th.wide { "Last used" } th { "Expires" } th { "" } } }
            tbody {
                @for token in tokens {
                    tr {
                        td { (token.name) }
                        td { (crate::domain::Scope::join(&token.grant.scopes())) }
                        td.wide { (token.created_at.to_date()) }
                        td.wide { @match token.last_used_at { Some(at) => (at.to_date()), None => span.muted { "never" } } }
                        td { @match token.expires_at { Some(at) => (at.to_date()), None => "never" } }
                        td {
                            @if token.revoked { span.muted { "revoked" } }
                            @else if token.expired(now) { span.muted { "expired" } }
                            @else if let Some(action) = revoke(token) {
                                form.inline method="post" action=(action) data-confirm="Revoke this token?" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The personal tokens page, with the secret of one just made.
pub async fn personal(
    registry: &Registry,
    frame: &Frame<'_>,
    principal: &Principal,
    said: Said<'_>,
) -> Result<Response, Error> {
    let tokens = registry.personal_tokens(principal, None).await?;
    let base = frame.base;
    let csrf = frame.csrf();
    let action = format!("{base}/-/user_settings/personal_access_tokens");
    let body = html! {
        h1 { "Personal access tokens" }
        (made(&said))
        h2 { "Add a token" }
        (token_form(&action, csrf, "Expires on", &PERSONAL_SCOPES, "Create token"))
        h2 { "Your tokens" }
        (token_rows(&tokens, |t| Some(format!("{action}/{}/revoke", t.id)), csrf))
    };
    Ok(answer(
        status_of(&said),
        page(frame, "Personal access tokens", body),
    ))
}

/// `POST` of the personal token form: the page again, showing the new secret once.
pub async fn create_personal(
    registry: &Registry,
    frame: &Frame<'_>,
    principal: &Principal,
    form: TokenForm,
) -> Result<Response, Error> {
    let made = match expiry(&form.expires_at) {
        Ok(expires_at) if !form.name.trim().is_empty() => {
            let request = TokenRequest {
                name: form.name.trim().to_string(),
                scopes: form.scopes,
                expires_at,
            };
            registry.create_own_token(principal, request).await
        }
        Ok(_) => Err(crate::registry::invalid("name is missing")),
        Err(e) => Err(e),
    };
    match made {
        Ok((_, secret)) => personal(registry, frame, principal, Said::Made(&secret)).await,
        Err(e) => match refusal(&e) {
            Some(why) => personal(registry, frame, principal, Said::Refused(why)).await,
            None => Err(e),
        },
    }
}

/// A form's expiry date (`YYYY-MM-DD`), if given.
fn expiry(text: &str) -> Result<Option<Timestamp>, Error> {
    match text.trim() {
        "" => Ok(None),
        text => Timestamp::parse_date(text)
            .map(Some)
            .ok_or_else(|| crate::registry::invalid("expires_at is invalid")),
    }
}

/// `POST …/<id>/revoke` of a personal token.
pub async fn revoke_personal(
    registry: &Registry,
    principal: &Principal,
    id: i64,
) -> Result<(), Error> {
    registry
        .revoke_personal_token(principal, TokenRef::Id(id))
        .await
}

/// A project as the deploy-token page acts on it.
async fn project_place(
    registry: &Registry,
    principal: &Principal,
    project: &str,
) -> Result<Place, Error> {
    let at = PlaceRef::Project(crate::domain::ProjectRef::Path(project.to_string()));
    registry.place(principal, &at).await
}

/// The project's deploy tokens (maintainers), with the secret of one just made.
pub async fn deploy(
    registry: &Registry,
    frame: &Frame<'_>,
    principal: &Principal,
    project: &str,
    said: Said<'_>,
) -> Result<Response, Error> {
    let place = project_place(registry, principal, project).await?;
    let tokens = registry.deploy_tokens(principal, &place).await?;
    let base = frame.base;
    let csrf = frame.csrf();
    let action = format!("{base}/{project}/-/settings/repository");
    let body = html! {
        h1 { (project) " · Deploy tokens" }
        (made(&said))
        (token_form(&action, csrf, "Expires on (empty: never)", &DEPLOY_SCOPES, "Create deploy token"))
        (token_rows(&tokens, |t| Some(format!("{action}/deploy_tokens/{}/revoke", t.id)), csrf))
    };
    Ok(answer(status_of(&said), page(frame, "Deploy tokens", body)))
}

/// `POST` of the deploy token form.
pub async fn create_deploy(
    registry: &Registry,
    frame: &Frame<'_>,
    principal: &Principal,
    project: &str,
    form: TokenForm,
) -> Result<Response, Error> {
    let place = project_place(registry, principal, project).await?;
    let expires_at = match expiry(&form.expires_at) {
        Ok(at) => at,
        Err(e) => {
            let why = refusal(&e).unwrap_or_default();
            return deploy(registry, frame, principal, project, Said::Refused(why)).await;
        }
    };
    let request = DeployTokenRequest {
        name: form.name.trim().to_string(),
        scopes: form.scopes,
        expires_at,
    };
    match registry
        .create_deploy_token(principal, &place, request)
        .await
    {
        Ok((_, secret)) => deploy(registry, frame, principal, project, Said::Made(&secret)).await,
        Err(e) => match refusal(&e) {
            Some(why) => deploy(registry, frame, principal, project, Said::Refused(why)).await,
            None => Err(e),
        },
    }
}

/// `POST …/deploy_tokens/<id>/revoke`.
pub async fn revoke_deploy(
    registry: &Registry,
    principal: &Principal,
    project: &str,
    id: i64,
) -> Result<(), Error> {
    let place = project_place(registry, principal, project).await?;
    registry.revoke_deploy_token(principal, &place, id).await
}
