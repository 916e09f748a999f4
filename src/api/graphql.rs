//! `POST /api/graphql` (and `GET`): the part of GitLab's GraphQL schema that concerns generic
//! package settings (a namespace's package settings, a project's packages cleanup policy), on
//! async-graphql. Resolvers call
//! `Registry`; permission and validation live there.

use super::AppState;
use super::extract::Incoming;
use crate::auth::{Action, Principal};
use crate::domain::{CleanupPolicy, EXCEPTION_REGEX_MAX_CHARS, GroupSettings, ProjectRef};
use crate::registry::{CleanupChanges, Error as UseCaseError, SettingsRefused};
use async_graphql::{
    Context, EmptySubscription, Error, ID, InputObject, InputValueError, InputValueResult, Object,
    Scalar, ScalarType, Schema, SimpleObject, Value,
};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// GitLab's answer to a mutation on something absent or not permitted.
const NOT_PERMITTED: &str = "The resource that you are attempting to access does not exist or \
                             you don't have permission to perform this action";

pub type DepotSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

pub fn schema() -> DepotSchema {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .limit_depth(16)
        .limit_complexity(500)
        .finish()
}

/// A regular expression as GitLab's `UntrustedRegexp` scalar carries it (RE2 syntax). It is
/// checked where it is used, so the error names the value as GitLab's does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrustedRegexp(String);

#[Scalar(name = "UntrustedRegexp")]
impl ScalarType for UntrustedRegexp {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(UntrustedRegexp(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// `PackageSettings`: the generic-package part of a namespace's package settings.
#[derive(SimpleObject)]
#[graphql(name = "PackageSettings")]
pub struct PackageSettings {
    generic_duplicates_allowed: bool,
    generic_duplicate_exception_regex: Option<UntrustedRegexp>,
}

impl From<GroupSettings> for PackageSettings {
    fn from(s: GroupSettings) -> Self {
        PackageSettings {
            generic_duplicates_allowed: s.generic_duplicates_allowed,
            generic_duplicate_exception_regex: Some(UntrustedRegexp(
                s.generic_duplicate_exception_regex,
            )),
        }
    }
}

/// `Group`, as far as package settings need it.
pub struct GroupObject {
    id: i64,
    full_path: String,
    settings: Option<GroupSettings>,
}

#[Object(name = "Group")]
impl GroupObject {
    async fn id(&self) -> ID {
        ID(format!("gid://gitlab/Group/{}", self.id))
    }

    async fn full_path(&self) -> ID {
        ID(self.full_path.clone())
    }

    /// Null unless the caller may administer the group's packages (its Owner).
    async fn package_settings(&self) -> Option<PackageSettings> {
        self.settings.clone().map(PackageSettings::from)
    }
}

/// GitLab's `PackagesCleanupKeepDuplicatedPackageFilesEnum`.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "PackagesCleanupKeepDuplicatedPackageFilesEnum")]
pub enum KeepDuplicated {
    AllPackageFiles,
    OnePackageFile,
    TenPackageFiles,
    TwentyPackageFiles,
    ThirtyPackageFiles,
    FortyPackageFiles,
    FiftyPackageFiles,
}

impl KeepDuplicated {
    const ALL: [(KeepDuplicated, Option<u32>); 7] = [
        (KeepDuplicated::AllPackageFiles, None),
        (KeepDuplicated::OnePackageFile, Some(1)),
        (KeepDuplicated::TenPackageFiles, Some(10)),
        (KeepDuplicated::TwentyPackageFiles, Some(20)),
        (KeepDuplicated::ThirtyPackageFiles, Some(30)),
        (KeepDuplicated::FortyPackageFiles, Some(40)),
        (KeepDuplicated::FiftyPackageFiles, Some(50)),
    ];

    fn count(self) -> Option<u32> {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .and_then(|(_, n)| *n)
    }

    fn of(count: Option<u32>) -> Self {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == count)
            .map_or(KeepDuplicated::AllPackageFiles, |(k, _)| *k)
    }
}

/// `PackagesCleanupPolicy`: GitLab's part of a project's cleanup policy.
#[derive(SimpleObject)]
#[graphql(name = "PackagesCleanupPolicy")]
pub struct PackagesCleanupPolicy {
    keep_n_duplicated_package_files: KeepDuplicated,
    next_run_at: Option<String>,
}

impl From<CleanupPolicy> for PackagesCleanupPolicy {
    fn from(p: CleanupPolicy) -> Self {
        PackagesCleanupPolicy {
            keep_n_duplicated_package_files: KeepDuplicated::of(p.keep_n_duplicated_package_files),
            next_run_at: Some(p.next_run_at.to_iso8601()),
        }
    }
}

/// `Project`, as far as its cleanup policy needs it.
pub struct ProjectObject {
    id: i64,
    full_path: String,
    policy: Option<CleanupPolicy>,
}

#[Object(name = "Project")]
impl ProjectObject {
    async fn id(&self) -> ID {
        ID(format!("gid://gitlab/Project/{}", self.id))
    }

    async fn full_path(&self) -> ID {
        ID(self.full_path.clone())
    }

    /// Null unless the caller may administer the project's packages (a Maintainer).
    async fn packages_cleanup_policy(&self) -> Option<PackagesCleanupPolicy> {
        self.policy.clone().map(PackagesCleanupPolicy::from)
    }
}

/// What a request's resolvers need: the registry and who is asking.
struct Caller {
    registry: AppState,
    principal: Principal,
}

fn use_case_error(e: UseCaseError) -> Error {
    tracing::error!(error = %e, "graphql resolver failed");
    Error::new("Internal server error")
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// A group by its full path; null when it does not exist or is not visible.
    async fn group(
        &self,
        ctx: &Context<'_>,
        full_path: ID,
    ) -> async_graphql::Result<Option<GroupObject>> {
        let caller = ctx.data::<Caller>()?;
        let view = caller
            .registry
            .group_settings_view(&caller.principal, &full_path)
            .await
            .map_err(use_case_error)?;
        Ok(view.map(|v| GroupObject {
            id: v.group.id,
            full_path: v.group.path,
            settings: v.settings,
        }))
    }

    /// A project by its full path; null when it does not exist or is not visible.
    async fn project(
        &self,
        ctx: &Context<'_>,
        full_path: ID,
    ) -> async_graphql::Result<Option<ProjectObject>> {
        let caller = ctx.data::<Caller>()?;
        let reference = ProjectRef::Path(full_path.0.clone());
        let access = match caller
            .registry
            .api_project(&caller.principal, &reference, Action::Read)
            .await
        {
            Ok(access) => access,
            Err(UseCaseError::Denied(_) | UseCaseError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(use_case_error(e)),
        };
        let policy = match caller
            .registry
            .cleanup_policy(&caller.principal, &access)
            .await
        {
            Ok(policy) => Some(policy),
            Err(UseCaseError::Denied(_)) => None,
            Err(e) => return Err(use_case_error(e)),
        };
        Ok(Some(ProjectObject {
            id: access.project.id,
            full_path: access.project.path_with_namespace,
            policy,
        }))
    }
}

#[derive(InputObject)]
#[graphql(name = "UpdatePackagesCleanupPolicyInput")]
pub struct UpdatePackagesCleanupPolicyInput {
    project_path: ID,
    keep_n_duplicated_package_files: Option<KeepDuplicated>,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "UpdatePackagesCleanupPolicyPayload")]
pub struct UpdatePackagesCleanupPolicyPayload {
    client_mutation_id: Option<String>,
    errors: Vec<String>,
    packages_cleanup_policy: Option<PackagesCleanupPolicy>,
}

#[derive(InputObject)]
#[graphql(name = "UpdateNamespacePackageSettingsInput")]
pub struct UpdateNamespacePackageSettingsInput {
    namespace_path: ID,
    generic_duplicates_allowed: Option<bool>,
    generic_duplicate_exception_regex: Option<UntrustedRegexp>,
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "UpdateNamespacePackageSettingsPayload")]
pub struct UpdateNamespacePackageSettingsPayload {
    client_mutation_id: Option<String>,
    errors: Vec<String>,
    package_settings: Option<PackageSettings>,
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Change a group's package settings; group Owners only.
    async fn update_namespace_package_settings(
        &self,
        ctx: &Context<'_>,
        input: UpdateNamespacePackageSettingsInput,
    ) -> async_graphql::Result<UpdateNamespacePackageSettingsPayload> {
        let caller = ctx.data::<Caller>()?;
        let outcome = caller
            .registry
            .update_group_settings(
                &caller.principal,
                &input.namespace_path,
                input.generic_duplicates_allowed,
                input.generic_duplicate_exception_regex.map(|r| r.0),
            )
            .await
            .map_err(use_case_error)?;
        let (package_settings, errors) = match outcome {
            Ok(settings) => (Some(settings.into()), Vec::new()),
            Err(SettingsRefused::NotAllowed) => return Err(Error::new(NOT_PERMITTED)),
            Err(SettingsRefused::InvalidRegex(message)) => return Err(Error::new(message)),
            Err(SettingsRefused::TooLong) => (
                None,
                vec![format!(
                    "Generic duplicate exception regex is too long (maximum is \
                     {EXCEPTION_REGEX_MAX_CHARS} characters)"
                )],
            ),
        };
        Ok(UpdateNamespacePackageSettingsPayload {
            client_mutation_id: input.client_mutation_id,
            errors,
            package_settings,
        })
    }

    /// Change a project's `keepNDuplicatedPackageFiles`; Maintainers only.
    async fn update_packages_cleanup_policy(
        &self,
        ctx: &Context<'_>,
        input: UpdatePackagesCleanupPolicyInput,
    ) -> async_graphql::Result<UpdatePackagesCleanupPolicyPayload> {
        let caller = ctx.data::<Caller>()?;
        let reference = ProjectRef::Path(input.project_path.0.clone());
        let registry = &caller.registry;
        let denied = || Error::new(NOT_PERMITTED);
        let access = match registry
            .api_project(&caller.principal, &reference, Action::Read)
            .await
        {
            Ok(access) => access,
            Err(UseCaseError::Denied(_) | UseCaseError::NotFound(_)) => return Err(denied()),
            Err(e) => return Err(use_case_error(e)),
        };
        let changes = CleanupChanges {
            keep_n_duplicated_package_files: input
                .keep_n_duplicated_package_files
                .map(KeepDuplicated::count),
            ..CleanupChanges::default()
        };
        let policy = match registry
            .set_cleanup_policy(&caller.principal, &access, changes)
            .await
        {
            Ok(policy) => policy,
            Err(UseCaseError::Denied(_)) => return Err(denied()),
            Err(e) => return Err(use_case_error(e)),
        };
        Ok(UpdatePackagesCleanupPolicyPayload {
            client_mutation_id: input.client_mutation_id,
            errors: Vec::new(),
            packages_cleanup_policy: Some(policy.into()),
        })
    }
}

/// Run one GraphQL request: `POST` with a JSON body (`query`, `variables`, `operationName`) or
/// `GET` with those as query parameters.
pub async fn execute(
    State(registry): State<AppState>,
    incoming: Incoming,
    body: Body,
) -> Result<Response, UseCaseError> {
    static SCHEMA: std::sync::OnceLock<DepotSchema> = std::sync::OnceLock::new();
    let principal = registry
        .authenticate(incoming.credential.as_ref(), Action::Read)
        .await?;
    let gql_request = match incoming.method {
        Method::POST => {
            let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
                return Ok(bad_request("the request body is too large or broken"));
            };
            match serde_json::from_slice::<async_graphql::Request>(&body) {
                Ok(r) => r,
                Err(e) => return Ok(bad_request(&format!("invalid GraphQL request: {e}"))),
            }
        }
        _ => {
            let Some(text) = incoming.query_value("query") else {
                return Ok(bad_request("query is missing"));
            };
            let mut r = async_graphql::Request::new(text);
            let variables = incoming.query_value("variables");
            if let Some(vars) = variables.and_then(|v| serde_json::from_str(v).ok()) {
                r = r.variables(async_graphql::Variables::from_json(vars));
            }
            if let Some(name) = incoming.query_value("operationName") {
                r = r.operation_name(name);
            }
            r
        }
    };
    let response = SCHEMA
        .get_or_init(schema)
        .execute(gql_request.data(Caller {
            registry,
            principal,
        }))
        .await;
    Ok(Json(response).into_response())
}

fn bad_request(message: &str) -> Response {
    super::error::message(StatusCode::BAD_REQUEST, message)
}
