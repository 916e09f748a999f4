//! Trust rules from the command line (`depot admin trust add|list|remove`): the operator's
//! way to let a CI pipeline publish with its OIDC ID token, without any stored secret.

use super::{Admin, AdminError, Result, store_err};
use crate::domain::{
    ClaimCondition, EventType, NewTrustRule, Role, Scope, Timestamp, TrustRule, check_rule,
};

/// What `trust add` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustSpec {
    /// Full path of the project, or of the group whose every project the rule covers.
    pub path: String,
    pub issuer: String,
    pub audience: String,
    pub conditions: Vec<ClaimCondition>,
    pub role: Role,
    pub scopes: Vec<Scope>,
}

impl Admin {
    pub async fn add_trust_rule(&self, spec: TrustSpec) -> Result<TrustRule> {
        check_rule(
            &spec.issuer,
            &spec.audience,
            spec.role,
            &spec.scopes,
            &spec.conditions,
        )
        .map_err(AdminError::Invalid)?;
        let target = self.target(&spec.path).await?;
        let event = self
            .event_at(EventType::TrustRuleCreated, &spec.path)
            .await?
            .with_detail(serde_json::json!({ "issuer": spec.issuer }));
        let rule = NewTrustRule {
            target,
            issuer: spec.issuer,
            audience: spec.audience,
            conditions: spec.conditions,
            role: spec.role,
            scopes: spec.scopes,
            created_at: Timestamp::now(),
        };
        let made = self.meta.create_trust_rule(rule, &event).await;
        self.changed();
        made.map_err(AdminError::Store)
    }

    pub async fn trust_rules(&self, path: &str) -> Result<Vec<TrustRule>> {
        let target = self.target(path).await?;
        self.meta
            .trust_rules_of(&target)
            .await
            .map_err(AdminError::Store)
    }

    pub async fn remove_trust_rule(&self, id: i64) -> Result<TrustRule> {
        let event = super::events::admin_event(EventType::TrustRuleDeleted)
            .with_detail(serde_json::json!({ "rule_id": id }));
        let removed = self.meta.remove_trust_rule(id, &event).await;
        self.changed();
        removed.map_err(store_err(format!("trust rule {id}")))
    }
}
