//! `GET`/`POST /projects/:id/packages/protection/rules` and `PATCH`/`DELETE
//! …/rules/:package_protection_rule_id`: GitLab's package protection rules API, its
//! parameters and errors (Grape's 400s here, the model's 422s in the registry).

use super::AppState;
use super::extract::{Incoming, integer_param, project_ref};
use super::packages::open_project;
use super::params::Params;
use crate::auth::{Action, Denied, Principal};
use crate::domain::{InvalidParams, ProtectLevel, ProtectionRule};
use crate::registry::{Error, ProjectAccess, RuleChanges, known_package_type};
use crate::wire::ProtectionRuleEntity;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

const PATTERN: &str = "package_name_pattern";
const TYPE: &str = "package_type";
const PUSH: &str = "minimum_access_level_for_push";
const DELETE: &str = "minimum_access_level_for_delete";

fn entity(rule: &ProtectionRule) -> ProtectionRuleEntity {
    let level = |l: Option<ProtectLevel>| l.map(|l| l.as_str().to_string());
    ProtectionRuleEntity {
        id: rule.id,
        project_id: rule.project_id,
        package_name_pattern: rule.package_name_pattern.clone(),
        package_type: rule.package_type.clone(),
        minimum_access_level_for_delete: level(rule.minimum_access_level_for_delete),
        minimum_access_level_for_push: level(rule.minimum_access_level_for_push),
    }
}

/// Who asks, and the project: a signed-in caller first (401), then one who may see it.
pub(super) async fn open(
    registry: &AppState,
    incoming: &Incoming,
    id: &str,
) -> Result<(Principal, ProjectAccess), Error> {
    let (principal, access) =
        open_project(registry, incoming, &project_ref(id), Action::Read).await?;
    if principal == Principal::Anonymous {
        return Err(Denied::Unauthorized.into());
    }
    Ok((principal, access))
}

/// A level parameter: `Some(None)` for an explicit `null`.
fn level(
    params: &Params,
    name: &str,
    parse: fn(&str) -> Option<ProtectLevel>,
    errors: &mut InvalidParams,
) -> Option<Option<ProtectLevel>> {
    match params.raw(name)? {
        Value::Null => Some(None),
        Value::String(s) if parse(s).is_some() => Some(parse(s)),
        _ => {
            errors.push(format!("{name} does not have a valid value"));
            None
        }
    }
}

/// The rule's fields from a request, with Grape's errors; `creating`: pattern, type and a
/// level are required.
fn changes(params: &Params, creating: bool) -> Result<RuleChanges, Error> {
    let mut errors = InvalidParams::default();
    for name in params.names() {
        if ![PATTERN, TYPE, PUSH, DELETE].contains(&name) {
            errors.push(format!("{name} is not a known field"));
        }
    }
    let text = |name: &str, errors: &mut InvalidParams| match params.raw(name) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(format!("{name} is invalid"));
            None
        }
    };
    let pattern = text(PATTERN, &mut errors);
    let package_type = text(TYPE, &mut errors);
    if creating {
        for (name, given) in [(PATTERN, pattern.is_some()), (TYPE, package_type.is_some())] {
            if !given && params.raw(name).is_none() {
                errors.push(format!("{name} is missing"));
            }
        }
    }
    if package_type
        .as_deref()
        .is_some_and(|t| !known_package_type(t))
    {
        errors.push(format!("{TYPE} does not have a valid value"));
    }
    let push = level(params, PUSH, ProtectLevel::for_push, &mut errors);
    let delete = level(params, DELETE, ProtectLevel::for_delete, &mut errors);
    if creating && params.raw(PUSH).is_none() && params.raw(DELETE).is_none() {
        errors.push(format!(
            "{PUSH}, {DELETE} are missing, at least one parameter must be provided"
        ));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(RuleChanges {
        package_name_pattern: pattern,
        package_type,
        minimum_access_level_for_push: push,
        minimum_access_level_for_delete: delete,
    })
}

/// `GET …/packages/protection/rules`: 200, every rule of the project.
pub async fn list(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, access) = open(&registry, &incoming, &id).await?;
    let rules = registry.protection_rules(&principal, &access).await?;
    let body: Vec<ProtectionRuleEntity> = rules.iter().map(entity).collect();
    Ok(Json(body).into_response())
}

/// `POST …/packages/protection/rules`: 201 and the rule.
pub async fn create(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let (principal, access) = open(&registry, &incoming, &id).await?;
    let fields = changes(&params, true)?;
    let rule = registry
        .create_protection_rule(&principal, &access, fields)
        .await?;
    Ok((StatusCode::CREATED, Json(entity(&rule))).into_response())
}

/// `PATCH …/rules/:package_protection_rule_id`: 200 and the rule as changed.
pub async fn update(
    State(registry): State<AppState>,
    Path((id, rule_id)): Path<(String, String)>,
    incoming: Incoming,
    params: Params,
) -> Result<Response, Error> {
    let (principal, access) = open(&registry, &incoming, &id).await?;
    let rule_id = integer_param("package_protection_rule_id", &rule_id)?;
    let fields = changes(&params, false)?;
    let rule = registry
        .update_protection_rule(&principal, &access, rule_id, fields)
        .await?;
    Ok(Json(entity(&rule)).into_response())
}

/// `DELETE …/rules/:package_protection_rule_id`: 204.
pub async fn delete(
    State(registry): State<AppState>,
    Path((id, rule_id)): Path<(String, String)>,
    incoming: Incoming,
) -> Result<Response, Error> {
    let (principal, access) = open(&registry, &incoming, &id).await?;
    let rule_id = integer_param("package_protection_rule_id", &rule_id)?;
    registry
        .delete_protection_rule(&principal, &access, rule_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
