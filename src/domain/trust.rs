//! Trust rules of trusted publishing: which OIDC ID tokens (an issuer, an audience, claim
//! conditions) may act on a project or on every project under a group, with which role and
//! scopes. Conditions are exact strings or globs (`refs/tags/v*`); all of a rule's must hold.

use super::{MembershipTarget, Role, Scope, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One claim condition: `claim` must be present and match `pattern`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimCondition {
    pub claim: String,
    /// An exact value, or a glob where `*` matches any run of characters (including `/`) and
    /// `?` one character. Strings are compared as they are; `true`, `false` and numbers by
    /// their JSON text (`ref_protected` is the string `"true"` in GitLab's tokens, a boolean in
    /// others).
    pub pattern: String,
}

impl ClaimCondition {
    /// `claim=pattern`, as `depot admin trust add --claim` takes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (claim, pattern) = text
            .split_once('=')
            .ok_or_else(|| format!("condition {text:?} is not claim=pattern"))?;
        let claim = claim.trim();
        if claim.is_empty() || !claim.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{claim:?} is not a claim name"));
        }
        if matches!(claim, "iss" | "aud" | "exp" | "nbf" | "iat") {
            return Err(format!(
                "{claim:?} is checked by every rule already: set the issuer and audience instead"
            ));
        }
        Ok(Self {
            claim: claim.to_string(),
            pattern: pattern.to_string(),
        })
    }

    /// Does the claim hold in `claims`? An absent, null, object or array claim never does.
    pub fn holds(&self, claims: &Map<String, Value>) -> bool {
        let text = match claims.get(&self.claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return false,
        };
        text.chars().count() <= MAX_CLAIM_CHARS && glob_matches(&self.pattern, &text)
    }
}

/// Does `text` match `pattern` (`*`: any run, `?`: one character, everything else literal)?
/// Iterative with one backtrack point: at worst pattern length times text length steps, which
/// the caps on patterns and claim values bound.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A trust rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRule {
    pub id: i64,
    /// The project, or every project under the group, the rule lets tokens act on.
    pub target: MembershipTarget,
    /// The `iss` the token must carry, exactly (an `https://` URL).
    pub issuer: String,
    /// One of the token's `aud` must be this.
    pub audience: String,
    pub conditions: Vec<ClaimCondition>,
    /// What the token may do there: the role of a member, limited by `scopes`.
    pub role: Role,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
}

impl TrustRule {
    /// Does every condition hold in `claims` (issuer, audience and times are verified before)?
    /// The first one that does not, for the log.
    pub fn failed_condition(&self, claims: &Map<String, Value>) -> Option<&ClaimCondition> {
        self.conditions.iter().find(|c| !c.holds(claims))
    }

    /// The conditions as stored: a JSON array of `{claim, pattern}`.
    pub fn conditions_json(conditions: &[ClaimCondition]) -> String {
        serde_json::to_string(conditions).unwrap_or_else(|_| "[]".into())
    }

    pub fn conditions_from_json(text: &str) -> Result<Vec<ClaimCondition>, String> {
        serde_json::from_str(text).map_err(|e| format!("conditions {text:?}: {e}"))
    }
}

/// A trust rule about to be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrustRule {
    pub target: MembershipTarget,
    pub issuer: String,
    pub audience: String,
    pub conditions: Vec<ClaimCondition>,
    pub role: Role,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
}

impl NewTrustRule {
    pub fn into_rule(self, id: i64) -> TrustRule {
        TrustRule {
            id,
            target: self.target,
            issuer: self.issuer,
            audience: self.audience,
            conditions: self.conditions,
            role: self.role,
            scopes: self.scopes,
            created_at: self.created_at,
        }
    }
}

/// Claims that say whose pipeline a token comes from (GitLab's project and group, GitHub's
/// repository and owner, any issuer's subject): a rule must pin one of them, or any pipeline
/// on the issuer (anyone's, on a shared service) could act under it.
pub const IDENTIFYING_CLAIMS: [&str; 9] = [
    "sub",
    "project_path",
    "project_id",
    "namespace_path",
    "namespace_id",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
];

/// A rule holds at most this many conditions, each pattern at most this long: every token of
/// the issuer is matched against them.
pub const MAX_CONDITIONS: usize = 16;
pub const MAX_PATTERN_CHARS: usize = 256;

/// A claim value longer than this matches no pattern (claims that name things are short).
const MAX_CLAIM_CHARS: usize = 1024;

/// Are `conditions` acceptable: few and short, and one of them pins an identifying claim to a
/// value that starts with no wildcard (`project_path=team/*` pins the group; `*/app` pins
/// nothing).
pub fn check_conditions(conditions: &[ClaimCondition]) -> Result<(), String> {
    if conditions.len() > MAX_CONDITIONS {
        return Err(format!(
            "a trust rule has at most {MAX_CONDITIONS} conditions"
        ));
    }
    if let Some(long) = conditions
        .iter()
        .find(|c| c.pattern.chars().count() > MAX_PATTERN_CHARS)
    {
        return Err(format!(
            "the pattern of {:?} is longer than {MAX_PATTERN_CHARS} characters",
            long.claim
        ));
    }
    let pinned = conditions.iter().any(|c| {
        IDENTIFYING_CLAIMS.contains(&c.claim.as_str())
            && !c.pattern.is_empty()
            && !c.pattern.starts_with(['*', '?'])
    });
    if !pinned {
        return Err(format!(
            "a trust rule must pin whose pipelines it trusts: a condition on one of {} \
             whose pattern starts with no wildcard",
            IDENTIFYING_CLAIMS.join(", ")
        ));
    }
    Ok(())
}

/// Is a rule acceptable: a valid issuer, an audience, a role up to maintainer (a CI job never
/// needs to own), API scopes only, and conditions that pin whose pipelines it trusts.
pub fn check_rule(
    issuer: &str,
    audience: &str,
    role: Role,
    scopes: &[Scope],
    conditions: &[ClaimCondition],
) -> Result<(), String> {
    valid_issuer(issuer)?;
    check_conditions(conditions)?;
    if audience.trim().is_empty() {
        return Err("a trust rule needs an audience (the aud its tokens carry)".into());
    }
    if role > Role::Maintainer {
        return Err("a trust rule grants at most the maintainer role".into());
    }
    if scopes.is_empty() {
        return Err("a trust rule needs at least one scope".into());
    }
    if let Some(bad) = scopes
        .iter()
        .find(|s| !matches!(s, Scope::Api | Scope::ReadApi))
    {
        return Err(format!(
            "scope {} is not valid for a trust rule (allowed: api, read_api)",
            bad.as_str()
        ));
    }
    Ok(())
}

/// [`valid_issuer`], and not an internal host: what a rule made over HTTP may name (an
/// operator may name a loopback issuer from the command line; a maintainer may not point
/// depot's fetches inside its network).
pub fn valid_public_issuer(issuer: &str) -> Result<(), String> {
    valid_issuer(issuer)?;
    let host = issuer
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    let bracketed = issuer.contains("://[");
    let literal = host.parse::<std::net::IpAddr>().is_ok();
    if !issuer.starts_with("https://")
        || bracketed
        || literal
        || host.eq_ignore_ascii_case("localhost")
    {
        return Err(format!(
            "issuer {issuer:?} must be an https URL with a host name (an operator may add other issuers with depot admin trust add)"
        ));
    }
    Ok(())
}

/// Is `issuer` acceptable for a rule: `https://host[/path]`, or plain `http` on a loopback
/// host (a test's or a sidecar's issuer)? No query, fragment or trailing slash (`iss` is
/// compared exactly).
pub fn valid_issuer(issuer: &str) -> Result<(), String> {
    let rest = if let Some(rest) = issuer.strip_prefix("https://") {
        rest
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or("");
        let bracketed = rest.starts_with("[::1]");
        if !(bracketed || host == "localhost" || host.starts_with("127.")) {
            return Err(format!(
                "issuer {issuer:?} must be https (plain http only on a loopback host)"
            ));
        }
        rest
    } else {
        return Err(format!("issuer {issuer:?} is not an https:// URL"));
    };
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
        return Err(format!("issuer {issuer:?} is not a plain URL"));
    }
    if issuer.ends_with('/') {
        return Err(format!(
            "issuer {issuer:?} ends with '/': write it exactly as the tokens' iss"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_as_shells_do_across_slashes() {
        for (pattern, text, expected) in [
            ("refs/tags/v*", "refs/tags/v1.2.3", true),
            ("refs/tags/v*", "refs/heads/v1", false),
            ("main", "main", true),
            ("main", "main2", false),
            ("*", "", true),
            ("grp/*", "grp/sub/app", true),
            ("v?.0", "v1.0", true),
            ("v?.0", "v10.0", false),
            ("*a*b*c", "xxaxxbxxbxc", true),
            ("*a*b*c", "xxaxxbxxbx", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(glob_matches(pattern, text), expected, "{pattern} {text}");
        }
        // Pathological patterns stay linear-ish.
        let long = "a".repeat(10_000);
        assert!(!glob_matches(&format!("{}b", "*a".repeat(50)), &long));
    }

    #[test]
    fn conditions_read_strings_booleans_and_numbers() {
        let claims = json!({"ref": "main", "ref_protected": "true", "protected": true,
                            "project_id": 42, "groups": ["a"], "env": null});
        let claims = claims.as_object().unwrap();
        let c = |t: &str| ClaimCondition::parse(t).unwrap();
        assert!(c("ref=main").holds(claims));
        assert!(c("ref_protected=true").holds(claims));
        assert!(c("protected=true").holds(claims));
        assert!(c("project_id=42").holds(claims));
        assert!(!c("groups=a").holds(claims));
        assert!(!c("env=").holds(claims));
        assert!(!c("missing=*").holds(claims));
        assert!(ClaimCondition::parse("aud=x").is_err());
        assert!(ClaimCondition::parse("no-equals").is_err());
        assert!(ClaimCondition::parse("bad name=x").is_err());
    }

    #[test]
    fn issuers_must_be_https_or_loopback() {
        assert!(valid_issuer("https://gitlab.example.com").is_ok());
        assert!(valid_issuer("https://token.actions.githubusercontent.com").is_ok());
        assert!(valid_issuer("http://127.0.0.1:8080").is_ok());
        assert!(valid_issuer("http://localhost:1").is_ok());
        assert!(valid_issuer("http://example.com").is_err());
        assert!(valid_issuer("https://x/").is_err());
        assert!(valid_issuer("https://x?y").is_err());
        assert!(valid_issuer("ftp://x").is_err());
    }

    #[test]
    fn rules_must_pin_whose_pipelines_they_trust() {
        let c = |t: &str| ClaimCondition::parse(t).unwrap();
        assert!(check_conditions(&[c("project_path=team/app")]).is_ok());
        assert!(check_conditions(&[c("namespace_path=team"), c("ref=v*")]).is_ok());
        assert!(check_conditions(&[c("repository=org/*")]).is_ok());
        assert!(check_conditions(&[]).is_err());
        assert!(check_conditions(&[c("ref=refs/tags/v*")]).is_err());
        assert!(check_conditions(&[c("project_path=*/app")]).is_err());
        assert!(check_conditions(&[c("sub=")]).is_err());
        let long = format!("project_path={}", "a".repeat(MAX_PATTERN_CHARS + 1));
        assert!(check_conditions(&[c(&long)]).is_err());
        let many: Vec<_> = (0..=MAX_CONDITIONS)
            .map(|i| c(&format!("sub=x{i}")))
            .collect();
        assert!(check_conditions(&many).is_err());
        assert!(valid_public_issuer("https://gitlab.example.com").is_ok());
        for internal in [
            "http://127.0.0.1:80",
            "https://127.0.0.1",
            "https://[::1]",
            "https://localhost",
            "https://10.0.0.1",
        ] {
            assert!(valid_public_issuer(internal).is_err(), "{internal}");
        }
    }

    #[test]
    fn rules_grant_api_scopes_up_to_maintainer() {
        let pin = [ClaimCondition::parse("sub=x").unwrap()];
        let ok = |role, scopes: &[Scope]| check_rule("https://x", "aud", role, scopes, &pin);
        assert!(ok(Role::Developer, &[Scope::Api]).is_ok());
        assert!(ok(Role::Maintainer, &[Scope::ReadApi]).is_ok());
        assert!(ok(Role::Owner, &[Scope::Api]).is_err());
        assert!(ok(Role::Developer, &[]).is_err());
        assert!(ok(Role::Developer, &[Scope::WritePackageRegistry]).is_err());
        let blank = check_rule("https://x", " ", Role::Developer, &[Scope::Api], &pin);
        assert!(blank.is_err());
    }

    #[test]
    fn conditions_round_trip_as_json() {
        let cs = vec![ClaimCondition::parse("ref=refs/tags/v*").unwrap()];
        let text = TrustRule::conditions_json(&cs);
        assert_eq!(TrustRule::conditions_from_json(&text).unwrap(), cs);
    }
}
