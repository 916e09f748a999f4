//! Package protection rules: a project's Maintainers manage them (GitLab's `admin_package`),
//! and every push and delete of a package checks them ([`Registry::check_protection`]). The
//! rules are read through the identity cache, so a publish pays for them once per cache
//! lifetime, and asks who the caller is (their role, an administrator?) only when a rule
//! names the package.

use super::events::project_event;
use super::{Error, Missing, ProjectAccess, Registry};
use crate::auth::{Action, Principal, effective_role};
use crate::domain::{
    EventType, Level, PACKAGE_TYPES, PATTERN_MAX_CHARS, PackageName, Project, ProtectLevel,
    Protected, ProtectionRule,
};
use crate::store::StoreError;

/// What a request sets of a rule; `None`: not given (a PATCH keeps it). A level given as
/// `null` is `Some(None)`.
#[derive(Debug, Clone, Default)]
pub struct RuleChanges {
    pub package_name_pattern: Option<String>,
    pub package_type: Option<String>,
    pub minimum_access_level_for_push: Option<Option<ProtectLevel>>,
    pub minimum_access_level_for_delete: Option<Option<ProtectLevel>>,
}

impl RuleChanges {
    /// `rule` with these changes made.
    fn applied_to(self, rule: ProtectionRule) -> ProtectionRule {
        ProtectionRule {
            package_name_pattern: self
                .package_name_pattern
                .unwrap_or(rule.package_name_pattern),
            package_type: self.package_type.unwrap_or(rule.package_type),
            minimum_access_level_for_push: self
                .minimum_access_level_for_push
                .unwrap_or(rule.minimum_access_level_for_push),
            minimum_access_level_for_delete: self
                .minimum_access_level_for_delete
                .unwrap_or(rule.minimum_access_level_for_delete),
            ..rule
        }
    }
}

/// GitLab's model validations of a rule, in its words (422).
fn validate(rule: &ProtectionRule) -> Result<(), Error> {
    let pattern = &rule.package_name_pattern;
    let refuse = |text: &str| Err(Error::Unprocessable(text.to_string()));
    if pattern.trim().is_empty() {
        return refuse("Package name pattern can't be blank");
    }
    if pattern.chars().count() > PATTERN_MAX_CHARS {
        return refuse("Package name pattern is too long (maximum is 255 characters)");
    }
    let generic_chars = |c: char| c.is_ascii_alphanumeric() || "._+-*".contains(c);
    if rule.package_type == "generic" && !pattern.chars().all(generic_chars) {
        return refuse(
            "Package name pattern should be a valid generic package name with optional \
             wildcard characters.",
        );
    }
    if rule.minimum_access_level_for_push.is_none()
        && rule.minimum_access_level_for_delete.is_none()
    {
        return refuse("A rule must have at least a minimum access role for push or delete.");
    }
    Ok(())
}

/// A store's refusal of a rule as GitLab answers it.
fn refused(e: StoreError) -> Error {
    match e {
        StoreError::AlreadyExists { .. } => {
            Error::Unprocessable("Package name pattern has already been taken".into())
        }
        StoreError::NotFound { .. } => Error::NotFound(Missing::ProtectionRule),
        other => other.into(),
    }
}

impl Registry {
    /// Only a user of the project's Maintainers (or above) manages its rules (and its
    /// cleanup policy: GitLab's `admin_package`).
    pub(super) fn manages_rules(
        principal: &Principal,
        access: &ProjectAccess,
    ) -> Result<(), Error> {
        let user = matches!(principal, Principal::User { .. });
        if user && access.may(principal, Action::Delete) {
            Ok(())
        } else {
            Err(crate::auth::Denied::Forbidden.into())
        }
    }

    /// `GET /projects/:id/packages/protection/rules`.
    pub async fn protection_rules(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
    ) -> Result<Vec<ProtectionRule>, Error> {
        Self::manages_rules(principal, access)?;
        Ok(self.meta.protection_rules(access.project.id).await?)
    }

    /// `POST /projects/:id/packages/protection/rules` (the fields checked by the caller:
    /// pattern and type given, the type known, a level at least).
    pub async fn create_protection_rule(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
        fields: RuleChanges,
    ) -> Result<ProtectionRule, Error> {
        Self::manages_rules(principal, access)?;
        let rule = fields.applied_to(ProtectionRule {
            id: 0,
            project_id: access.project.id,
            package_name_pattern: String::new(),
            package_type: "generic".into(),
            minimum_access_level_for_push: None,
            minimum_access_level_for_delete: None,
        });
        validate(&rule)?;
        let event = rule_event(EventType::ProtectionRuleCreated, principal, access, &rule);
        let saved = self
            .meta
            .create_protection_rule(rule, &event)
            .await
            .map_err(refused)?;
        self.identities.cache().clear();
        Ok(saved)
    }

    /// `PATCH /projects/:id/packages/protection/rules/:rule_id`: the fields given.
    pub async fn update_protection_rule(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
        rule_id: i64,
        changes: RuleChanges,
    ) -> Result<ProtectionRule, Error> {
        Self::manages_rules(principal, access)?;
        let rule = self.protection_rule(access, rule_id).await?;
        let rule = changes.applied_to(rule);
        validate(&rule)?;
        let event = rule_event(EventType::ProtectionRuleUpdated, principal, access, &rule);
        self.meta
            .update_protection_rule(&rule, &event)
            .await
            .map_err(refused)?;
        self.identities.cache().clear();
        Ok(rule)
    }

    /// `DELETE /projects/:id/packages/protection/rules/:rule_id`.
    pub async fn delete_protection_rule(
        &self,
        principal: &Principal,
        access: &ProjectAccess,
        rule_id: i64,
    ) -> Result<(), Error> {
        Self::manages_rules(principal, access)?;
        let project_id = access.project.id;
        let event = project_event(EventType::ProtectionRuleDeleted, principal, &access.project)
            .with_detail(serde_json::json!({ "rule_id": rule_id }));
        let deleted = self
            .meta
            .delete_protection_rule(project_id, rule_id, &event);
        let deleted = deleted.await;
        deleted.map_err(refused)?;
        self.identities.cache().clear();
        Ok(())
    }

    async fn protection_rule(
        &self,
        access: &ProjectAccess,
        rule_id: i64,
    ) -> Result<ProtectionRule, Error> {
        self.meta
            .protection_rules(access.project.id)
            .await?
            .into_iter()
            .find(|r| r.id == rule_id)
            .ok_or(Error::NotFound(Missing::ProtectionRule))
    }

    /// Refuse `action` on the packages named `name` in `project` when a rule holds it back
    /// from `principal` (403, GitLab's message).
    pub(crate) async fn check_protection(
        &self,
        principal: &Principal,
        project: &Project,
        name: &PackageName,
        action: Protected,
    ) -> Result<(), Error> {
        let rules = self.identities.protection_rules(project.id).await?;
        let covering: Vec<&ProtectionRule> = rules.iter().filter(|r| r.covers(name)).collect();
        if covering.is_empty() {
            return Ok(());
        }
        let level = self.protection_level(principal, project, action).await?;
        if covering.iter().any(|r| r.protects(action, level)) {
            return Err(Error::Protected(action));
        }
        Ok(())
    }

    /// Who `principal` is to a rule on `project`: an administrator, a role, or nobody (a
    /// deploy token, as GitLab treats one).
    async fn protection_level(
        &self,
        principal: &Principal,
        project: &Project,
        action: Protected,
    ) -> Result<Level, Error> {
        Ok(match principal {
            Principal::User { user_id, .. } => {
                let user = self.meta.user_by_id(*user_id).await?;
                if user.is_some_and(|u| u.admin) {
                    Level::Admin
                } else {
                    let memberships = self.identities.memberships_of(*user_id).await?;
                    effective_role(&memberships, project).map_or(Level::None, Level::Role)
                }
            }
            Principal::Federated(federated) => federated
                .role_on(project, action_of(action))
                .map_or(Level::None, Level::Role),
            Principal::Anonymous | Principal::Deploy { .. } => Level::None,
        })
    }
}

/// The permission a protected action needs.
fn action_of(action: Protected) -> Action {
    match action {
        Protected::Push => Action::Write,
        Protected::Delete => Action::Delete,
    }
}

/// Is `package_type` one GitLab's rules may name?
pub fn known_package_type(package_type: &str) -> bool {
    PACKAGE_TYPES.contains(&package_type)
}

/// An event about `rule` of the project.
fn rule_event(
    kind: EventType,
    principal: &Principal,
    access: &ProjectAccess,
    rule: &ProtectionRule,
) -> crate::domain::Event {
    let level = |l: Option<crate::domain::ProtectLevel>| l.map(|l| l.access_level());
    project_event(kind, principal, &access.project).with_detail(serde_json::json!({
        "rule_id": rule.id,
        "package_name_pattern": rule.package_name_pattern,
        "package_type": rule.package_type,
        "minimum_access_level_for_push": level(rule.minimum_access_level_for_push),
        "minimum_access_level_for_delete": level(rule.minimum_access_level_for_delete),
    }))
}
