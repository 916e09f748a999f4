//! `GET`/`PUT /projects/:id/packages/cleanup_policy` and `GET …/cleanup_policy/preview`
//! (depot's routes; GitLab sets only `keep_n_duplicated_package_files`, over GraphQL): a
//! project's cleanup policy and what a run would take now, for Maintainers.

use super::AppState;
use super::extract::Incoming;
use super::params::Params;
use super::protection::open;
use crate::domain::{CleanupPlan, CleanupPolicy, InvalidParams, KEEP_N_DUPLICATED_VALUES};
use crate::registry::{CleanupChanges, Error};
use crate::wire::{CleanupFile, CleanupPackage, CleanupPolicyEntity, CleanupPreview};
use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

const DUPLICATES: &str = "keep_n_duplicated_package_files";
const LATEST: &str = "keep_n_latest_versions";
const OLDER: &str = "delete_versions_older_than_days";
const IDLE: &str = "delete_versions_not_downloaded_for_days";
const REGEX: &str = "package_name_regex";

pub fn entity(p: &CleanupPolicy) -> CleanupPolicyEntity {
    CleanupPolicyEntity {
        project_id: p.project_id,
        keep_n_duplicated_package_files: p.keep_n_duplicated_text(),
        keep_n_latest_versions: p.keep_n_latest_versions,
        delete_versions_older_than_days: p.delete_versions_older_than_days,
        delete_versions_not_downloaded_for_days: p.delete_versions_not_downloaded_for_days,
        package_name_regex: p.package_name_regex.clone(),
        next_run_at: p.next_run_at,
    }
}

pub fn preview(plan: &CleanupPlan) -> CleanupPreview {
    CleanupPreview {
        packages: plan
            .packages
            .iter()
            .map(|(p, reason)| CleanupPackage {
                id: p.id,
                name: p.name.as_str().to_string(),
                version: p.version.as_str().to_string(),
                reason: reason.as_str().to_string(),
            })
            .collect(),
        package_files: plan
            .files
            .iter()
            .map(|(_, f, reason)| CleanupFile {
                id: f.id,
                package_id: f.package_id,
                file_name: f.file_name.display(),
                reason: reason.as_str().to_string(),
            })
            .collect(),
    }
}

/// A whole number of at least 1, or `null` (the rule off).
fn at_least_one(params: &Params, name: &str, errors: &mut InvalidParams) -> Option<Option<u32>> {
    let value = params.raw(name)?;
    let n = match value {
        Value::Null => return Some(None),
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    match n.and_then(|n| u32::try_from(n).ok()).filter(|n| *n >= 1) {
        Some(n) => Some(Some(n)),
        None => {
            errors.push(format!("{name} does not have a valid value"));
            None
        }
    }
}

/// The changes a `PUT` asks for, with Grape's errors.
fn changes(params: &Params) -> Result<CleanupChanges, Error> {
    let mut errors = InvalidParams::default();
    for name in params.names() {
        if ![DUPLICATES, LATEST, OLDER, IDLE, REGEX].contains(&name) {
            errors.push(format!("{name} is not a known field"));
        }
    }
    let duplicates = match params.raw(DUPLICATES) {
        None => None,
        Some(Value::String(s)) if s == "all" => Some(None),
        Some(Value::String(s)) if KEEP_N_DUPLICATED_VALUES.contains(&s.as_str()) => {
            s.parse().ok().map(Some)
        }
        Some(_) => {
            errors.push(format!("{DUPLICATES} does not have a valid value"));
            None
        }
    };
    let latest = at_least_one(params, LATEST, &mut errors);
    let older = at_least_one(params, OLDER, &mut errors);
    let idle = at_least_one(params, IDLE, &mut errors);
    let regex = match params.raw(REGEX) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.is_empty() => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => {
            errors.push(format!("{REGEX} is invalid"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(CleanupChanges {
        keep_n_duplicated_package_files: duplicates,
        keep_n_latest_versions: latest,
        delete_versions_older_than_days: older,
        delete_versions_not_downloaded_for_days: idle,
        package_name_regex: regex,
    })
}

/// `GET …/packages/cleanup_policy`.
pub async fn show(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Json<CleanupPolicyEntity>, Error> {
    let (principal, access) = open(&registry, &incoming, &id).await?;
    let policy = registry.cleanup_policy(&principal, &access).await?;
    Ok(Json(entity(&policy)))
}

/// `PUT …/packages/cleanup_policy`: the fields given (`null` turns a rule off).
pub async fn update(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
    params: Params,
) -> Result<Json<CleanupPolicyEntity>, Error> {
    let (principal, access) = open(&registry, &incoming, &id).await?;
    let changes = changes(&params)?;
    let policy = registry
        .set_cleanup_policy(&principal, &access, changes)
        .await?;
    Ok(Json(entity(&policy)))
}

/// `GET …/packages/cleanup_policy/preview`: what a run would take now.
pub async fn show_preview(
    State(registry): State<AppState>,
    Path(id): Path<String>,
    incoming: Incoming,
) -> Result<Json<CleanupPreview>, Error> {
    let (principal, access) = open(&registry, &incoming, &id).await?;
    let plan = registry.preview_cleanup(&principal, &access).await?;
    Ok(Json(preview(&plan)))
}
