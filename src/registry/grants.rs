//! What a project or group grants to machines, managed over HTTP by its maintainers (a
//! project) or owners (a group): deploy tokens, and the trust rules of trusted publishing.

use super::events::{place_event, token_detail};
use super::members::Place;
use super::people::scopes_for;
use super::{Error, Missing, Registry};
use crate::auth::{Denied, Principal, hash_secret, new_secret};
use crate::domain::{
    ClaimCondition, EventType, NewToken, NewTrustRule, Role, Scope, Timestamp, Token, TokenGrant,
    TokenKind, TokenOwner, TrustRule, check_rule, valid_public_issuer,
};

/// A deploy token to make.
pub struct DeployTokenRequest {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<Timestamp>,
}

/// A trust rule to make.
pub struct TrustRuleRequest {
    pub issuer: String,
    pub audience: String,
    pub conditions: Vec<ClaimCondition>,
    pub role: Role,
    pub scopes: Vec<Scope>,
}

impl Registry {
    /// Maintainers may read a group's deploy tokens; only owners make or revoke them. A
    /// project's: maintainers.
    async fn deploy_token_reader(&self, principal: &Principal, place: &Place) -> Result<(), Error> {
        let user = self.signed_in(principal).await?;
        match self.role_on(&user, place).await? {
            Some(role) if role >= Role::Maintainer => Ok(()),
            _ => Err(Denied::Forbidden.into()),
        }
    }

    /// `GET .../deploy_tokens`: the place's deploy tokens still in force.
    pub async fn deploy_tokens(
        &self,
        principal: &Principal,
        place: &Place,
    ) -> Result<Vec<Token>, Error> {
        self.deploy_token_reader(principal, place).await?;
        let owner = TokenOwner::Target(place.target());
        Ok(self
            .meta
            .tokens_of(&owner)
            .await?
            .into_iter()
            .filter(|t| t.kind() == TokenKind::Deploy && !t.revoked)
            .collect())
    }

    /// One deploy token of the place.
    pub async fn deploy_token(
        &self,
        principal: &Principal,
        place: &Place,
        id: i64,
    ) -> Result<Token, Error> {
        self.deploy_tokens(principal, place)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or(Error::NotFound(Missing::Token))
    }

    /// `POST .../deploy_tokens`: the token, and its secret (shown this once).
    pub async fn create_deploy_token(
        &self,
        principal: &Principal,
        place: &Place,
        request: DeployTokenRequest,
    ) -> Result<(Token, String), Error> {
        self.manager(principal, place).await?;
        let scopes = scopes_for(TokenKind::Deploy, &request.scopes)?;
        let secret = new_secret(TokenKind::Deploy);
        let new = NewToken {
            name: request.name,
            sha256: hash_secret(&secret),
            grant: TokenGrant::Deploy {
                target: place.target(),
                scopes,
            },
            expires_at: request.expires_at,
        };
        let event =
            place_event(EventType::TokenCreated, principal, place).with_detail(token_detail(&new));
        let made = self
            .meta
            .create_token(new, Timestamp::now(), &event)
            .await?;
        Ok((made, secret))
    }

    /// `DELETE .../deploy_tokens/:id`: revoked at once, and no longer listed.
    pub async fn revoke_deploy_token(
        &self,
        principal: &Principal,
        place: &Place,
        id: i64,
    ) -> Result<(), Error> {
        self.manager(principal, place).await?;
        let token = self.deploy_token(principal, place, id).await?;
        let event = place_event(EventType::TokenRevoked, principal, place)
            .with_detail(serde_json::json!({ "token_id": token.id, "token_name": token.name }));
        self.meta.revoke_token(token.id, &event).await?;
        Ok(())
    }

    /// `GET .../trust_rules`.
    pub async fn trust_rules(
        &self,
        principal: &Principal,
        place: &Place,
    ) -> Result<Vec<TrustRule>, Error> {
        self.manager(principal, place).await?;
        Ok(self.meta.trust_rules_of(&place.target()).await?)
    }

    /// `POST .../trust_rules`.
    pub async fn add_trust_rule(
        &self,
        principal: &Principal,
        place: &Place,
        request: TrustRuleRequest,
    ) -> Result<TrustRule, Error> {
        self.manager(principal, place).await?;
        check_rule(
            &request.issuer,
            &request.audience,
            request.role,
            &request.scopes,
            &request.conditions,
        )
        .and_then(|()| valid_public_issuer(&request.issuer))
        .map_err(Error::BadRequest)?;
        let rule = NewTrustRule {
            target: place.target(),
            issuer: request.issuer,
            audience: request.audience,
            conditions: request.conditions,
            role: request.role,
            scopes: request.scopes,
            created_at: Timestamp::now(),
        };
        let event = place_event(EventType::TrustRuleCreated, principal, place).with_detail(
            serde_json::json!({ "issuer": rule.issuer, "access_level": rule.role.access_level() }),
        );
        let made = self.meta.create_trust_rule(rule, &event).await?;
        self.identities.cache().clear();
        Ok(made)
    }

    /// `DELETE .../trust_rules/:id`.
    pub async fn remove_trust_rule(
        &self,
        principal: &Principal,
        place: &Place,
        id: i64,
    ) -> Result<(), Error> {
        let rules = self.trust_rules(principal, place).await?;
        if !rules.iter().any(|r| r.id == id) {
            return Err(Error::NotFound(Missing::TrustRule));
        }
        let event = place_event(EventType::TrustRuleDeleted, principal, place)
            .with_detail(serde_json::json!({ "rule_id": id }));
        self.meta.remove_trust_rule(id, &event).await?;
        self.identities.cache().clear();
        Ok(())
    }
}
