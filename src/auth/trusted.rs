//! Trusted publishing: an OIDC ID token presented where a job token may stand becomes a
//! federated principal when its issuer's trust rules accept it. The token's unverified `iss`
//! only picks which rules to read; keys are fetched only for an issuer some rule names (never
//! for whatever a token claims), then the signature, times, issuer and audience are verified,
//! and each rule's claim conditions decide what the token may do.

use super::federated::{Federated, Grant, Source};
use super::oidc::{Claims, OidcError, OidcVerifier};
use super::{Denied, Identities, Principal};
use crate::domain::{Timestamp, TrustRule};
use crate::registry::Error;
use std::sync::Arc;

pub(super) async fn authenticate(
    identities: &Identities,
    token: &str,
    _now: Timestamp,
) -> Result<Principal, Error> {
    let Some(issuer) = OidcVerifier::unverified_issuer(token) else {
        tracing::info!("refused an ID token: it names no issuer");
        return Err(Denied::Unauthorized.into());
    };
    let rules = identities.trust_rules_for_issuer(&issuer).await?;
    if rules.is_empty() {
        // Unverified: logged short, so a forged `iss` cannot flood the log.
        let named: String = issuer.chars().take(120).collect();
        tracing::info!(issuer = %named, "refused an ID token: no trust rule names its issuer");
        return Err(Denied::Unauthorized.into());
    }
    let mut audiences: Vec<String> = rules.iter().map(|r| r.audience.clone()).collect();
    audiences.sort();
    audiences.dedup();
    let claims = identities
        .oidc()
        .verify(token, &issuer, &audiences)
        .await
        .map_err(|e| refused(&issuer, e))?;
    let accepting: Vec<&TrustRule> = rules.iter().filter(|rule| accepts(rule, &claims)).collect();
    if accepting.is_empty() {
        return Err(Denied::Forbidden.into());
    }
    let subject = claims
        .get("sub")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_string();
    let federated = Federated {
        source: Source::Oidc {
            issuer,
            subject,
            rules: accepting.iter().map(|r| r.id).collect(),
        },
        grants: accepting
            .iter()
            .map(|r| Grant {
                target: r.target.clone(),
                role: r.role,
                scopes: r.scopes.clone(),
                rule: Some(r.id),
            })
            .collect(),
    };
    Ok(Principal::Federated(Arc::new(federated)))
}

/// Does `rule` accept a verified token's `claims`: its audience among the token's, every
/// condition holding? Says in the log which did not (the claim and the rule, never the token).
fn accepts(rule: &TrustRule, claims: &Claims) -> bool {
    if !audience_holds(&rule.audience, claims) {
        tracing::info!(rule = rule.id, audience = %rule.audience, "trust rule not met: audience");
        return false;
    }
    if let Some(failed) = rule.failed_condition(claims) {
        let found = claims.get(&failed.claim).map(|v| v.to_string());
        tracing::info!(
            rule = rule.id,
            claim = %failed.claim,
            pattern = %failed.pattern,
            found = found.as_deref().unwrap_or("(absent)"),
            "trust rule not met: claim condition"
        );
        return false;
    }
    true
}

/// Is `audience` the token's `aud`, or one of them?
fn audience_holds(audience: &str, claims: &Claims) -> bool {
    match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => aud == audience,
        Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

/// A token the verifier refused, as the client is answered (the log says why).
fn refused(issuer: &str, e: OidcError) -> Error {
    if e.is_unavailable() {
        tracing::warn!(%issuer, error = %e, "could not verify an ID token: issuer unavailable");
        Denied::VouchUnavailable.into()
    } else {
        tracing::info!(%issuer, error = %e, "refused an ID token");
        Denied::Unauthorized.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audiences_may_be_one_or_many() {
        let one = json!({"aud": "depot"});
        let many = json!({"aud": ["x", "depot"]});
        let none = json!({"aud": 5});
        assert!(audience_holds("depot", one.as_object().unwrap()));
        assert!(audience_holds("depot", many.as_object().unwrap()));
        assert!(!audience_holds("depot", none.as_object().unwrap()));
        assert!(!audience_holds("other", many.as_object().unwrap()));
    }
}
