//! A group's Settings → Packages & Registries: the "Reject duplicates" toggle and its
//! exceptions regex, GitLab's semantics (duplicates allowed unless rejected; a name or version
//! matching the regex is allowed regardless), for the group's owners; the regex is checked with
//! GitLab's wording before anything is saved.

use super::layout::{Frame, answer, page};
use crate::auth::Principal;
use crate::domain::{EXCEPTION_REGEX_MAX_CHARS, GroupSettings};
use crate::registry::{Error, Registry, SettingsRefused};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

/// The form as posted (a checkbox is absent when off).
#[derive(Deserialize)]
pub struct SettingsForm {
    pub csrf: String,
    pub reject_duplicates: Option<String>,
    #[serde(default)]
    pub exception_regex: String,
}

fn form_page(
    frame: &Frame<'_>,
    group: &str,
    settings: &GroupSettings,
    message: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    let base = frame.base;
    let csrf = frame.csrf();
    let body = html! {
        h1 { (group) " · Packages & Registries" }
        @if let Some((ok, text)) = &message {
            p.notice.success[*ok].error[!*ok] role=(if *ok { "status" } else { "alert" }) { (text) }
        }
        form method="post" action=(format!("{base}/groups/{group}/-/settings/packages_and_registries")) {
            input type="hidden" name="csrf" value=(csrf);
            h2 { "Duplicate packages" }
            p {
                input type="checkbox" id="reject_duplicates" name="reject_duplicates" value="on" checked[!settings.generic_duplicates_allowed];
                " " label.inline for="reject_duplicates" { "Reject duplicates" }
            }
            p.muted { "When on, a generic package file whose name is already in that package version is refused." }
            label for="exception_regex" { "Exceptions" }
            input type="text" id="exception_regex" name="exception_regex" value=(settings.generic_duplicate_exception_regex) maxlength=(EXCEPTION_REGEX_MAX_CHARS);
            p.muted { "Packages whose name or version matches this regex may be duplicated even so (RE2 syntax)." }
            p { button type="submit" { "Save changes" } }
        }
    };
    answer(status, page(frame, &format!("{group} settings"), body))
}

/// `GET /groups/<group>/-/settings/packages_and_registries`: owners only (others: 404, as
/// GitLab hides settings pages).
pub async fn show(
    registry: &Registry,
    frame: &Frame<'_>,
    principal: &Principal,
    group: &str,
) -> Result<Response, Error> {
    let view = registry.group_settings_view(principal, group).await?;
    let Some(settings) = view.and_then(|v| v.settings) else {
        return Err(Error::NotFound(crate::registry::Missing::Group));
    };
    Ok(form_page(frame, group, &settings, None, StatusCode::OK))
}

/// `POST` of the form: saved, or the form again with GitLab's reason (nothing saved).
pub async fn save(
    registry: &Registry,
    frame: &Frame<'_>,
    principal: &Principal,
    group: &str,
    form: SettingsForm,
) -> Result<Response, Error> {
    let allowed = form.reject_duplicates.is_none();
    let outcome = registry
        .update_group_settings(
            principal,
            group,
            Some(allowed),
            Some(form.exception_regex.clone()),
        )
        .await?;
    let refused = |why: String| {
        let asked = GroupSettings {
            generic_duplicates_allowed: allowed,
            generic_duplicate_exception_regex: form.exception_regex.clone(),
        };
        Ok(form_page(
            frame,
            group,
            &asked,
            Some((false, why)),
            StatusCode::BAD_REQUEST,
        ))
    };
    match outcome {
        Ok(settings) => Ok(form_page(
            frame,
            group,
            &settings,
            Some((true, "Settings saved.".into())),
            StatusCode::OK,
        )),
        Err(SettingsRefused::NotAllowed) => Err(Error::NotFound(crate::registry::Missing::Group)),
        Err(SettingsRefused::InvalidRegex(message)) => refused(message),
        Err(SettingsRefused::TooLong) => refused(format!(
            "Generic duplicate exception regex is too long (maximum is {EXCEPTION_REGEX_MAX_CHARS} characters)"
        )),
    }
}
