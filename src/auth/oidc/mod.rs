//! OIDC ID-token verification (GitLab CI, GitHub Actions and any other OpenID Provider):
//! token syntax, the algorithm allow-list, the signature against the issuer's published keys,
//! and the `iss`/`aud`/`exp`/`nbf`/`iat` claims. Keys come from `keys` (discovery + JWKS
//! cache); HTTP rules from `fetch`. All signature checking is `jsonwebtoken`'s.
//!
//! Trust: `verify` fetches keys only for the issuer its caller names, which must come from
//! configuration (a trust rule), never from the token. `unverified_issuer` exists to *choose*
//! among configured rules; following an unverified `iss` to the network would let anyone who
//! runs a web server mint tokens we accept. Header members such as `jku`, `jwk` and `x5u` are
//! ignored for the same reason: keys come only from the configured issuer's discovery.
//!
//! Only RS256 and ES256 are accepted: never `none`, never HMAC (whose "secret" would be the
//! public key), and the JWK's type must fit the algorithm. Tokens never appear in errors or logs.

mod fetch;
mod keys;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tracing::debug;

use keys::KeyStore;

/// Tunables of the verifier; `Default` gives the production values.
#[derive(Debug, Clone)]
pub struct OidcOptions {
    /// Clock leeway for `exp`, `nbf` and `iat`. Whole seconds are used.
    pub leeway: Duration,
    /// An unknown `kid` refetches the JWKS at most once per this, per issuer.
    pub refetch_min: Duration,
    /// Cache lifetime when a response has no usable `Cache-Control: max-age` or `Expires`.
    pub default_ttl: Duration,
    /// Lifetimes are clamped to `[min_ttl, max_ttl]`: never a fetch per request.
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// Per HTTP fetch (connect included).
    pub timeout: Duration,
}

impl Default for OidcOptions {
    fn default() -> Self {
        OidcOptions {
            leeway: Duration::from_secs(60),
            refetch_min: Duration::from_secs(10),
            default_ttl: Duration::from_secs(3600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The verified claims of an ID token, as the token carries them.
pub type Claims = serde_json::Map<String, Value>;

/// Why a token was refused. No variant ever contains the token; strings taken from an
/// unverified token (a refused `alg`, a `kid`, a mismatched `iss`) are truncated.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("not a JWT")]
    NotAJwt,
    #[error("algorithm refused: {0}")]
    Algorithm(String),
    #[error("unknown signing key (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("signature does not verify")]
    Signature,
    #[error("issuer mismatch: expected {expected:?}, token has {found:?}")]
    Issuer { expected: String, found: String },
    #[error("audience not accepted")]
    Audience,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid (nbf)")]
    NotYetValid,
    #[error("token issued in the future (iat)")]
    IssuedInFuture,
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    #[error("malformed claim {0}")]
    InvalidClaim(&'static str),
    #[error("token has critical header parameters (crit), none of which are supported")]
    CriticalHeader,
    #[error("OIDC keys unavailable: {0}")]
    Discovery(String),
    #[error("issuer URL refused: {0}")]
    InsecureIssuer(String),
}

impl OidcError {
    /// True when the issuer's keys could not be had (network, issuer down, bad documents):
    /// the token may be fine, so the caller answers 503 rather than 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, OidcError::Discovery(_))
    }
}

/// Verifies ID tokens against the keys of configured issuers. `Send + Sync`; share one behind
/// an `Arc` so that all requests use one key cache.
pub struct OidcVerifier {
    options: OidcOptions,
    keys: KeyStore,
}

/// Far above any real ID token (GitHub's are ~1.5 KiB); bounds the work a garbage header costs.
const MAX_TOKEN_LEN: usize = 32 * 1024;

impl OidcVerifier {
    pub fn new(options: OidcOptions) -> Self {
        // Cargo features are additive: if another crate also enabled jsonwebtoken's
        // `rust_crypto`, jsonwebtoken could not pick a provider by itself and would panic on
        // first use. Installing ours is a no-op error when one is already installed.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let lifetimes = fetch::Lifetimes {
            default_ttl: options.default_ttl,
            min_ttl: options.min_ttl,
            max_ttl: options.max_ttl,
        };
        let keys = KeyStore::new(
            fetch::client(options.timeout),
            lifetimes,
            options.refetch_min,
        );
        OidcVerifier { options, keys }
    }

    /// Cheap syntactic check: three base64url segments whose header decodes as a JSON object
    /// with a string `alg`. No network, no signature check.
    pub fn looks_like_jwt(token: &str) -> bool {
        segments(token)
            .and_then(|[header, _, _]| decode_json(header))
            .is_some_and(|h| h.get("alg").is_some_and(Value::is_string))
    }

    /// The `iss` claim read WITHOUT verification, only to find which trust rules (and so which
    /// issuer) apply; `None` if not a JWT or no string `iss`. Never fetch from this value.
    pub fn unverified_issuer(token: &str) -> Option<String> {
        let [_, payload, _] = segments(token)?;
        match decode_json(payload)?.remove("iss")? {
            Value::String(iss) => Some(iss),
            _ => None,
        }
    }

    /// Verifies `token` as an ID token of `issuer` (a configured, trusted issuer) for one of
    /// `audiences`; returns its claims. See the module header for the rules.
    pub async fn verify(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[String],
    ) -> Result<Claims, OidcError> {
        fetch::secure_issuer(issuer)
            .map_err(|why| OidcError::InsecureIssuer(format!("{issuer}: {why}")))?;
        let (alg, kid) = parse_header(token)?;
        let result = match self.keys.key_for(issuer, alg, kid.as_deref()).await {
            Ok(key) => self.check(token, &key, alg, issuer, audiences),
            Err(e) => Err(e),
        };
        match &result {
            Ok(_) => debug!(issuer, ?kid, ?alg, "OIDC token verified"),
            Err(error) => debug!(issuer, ?kid, %error, "OIDC token refused"),
        }
        result
    }

    /// HTTP fetches made so far (discovery documents + JWKS, failed ones included).
    pub fn fetches(&self) -> u64 {
        self.keys.fetches()
    }

    /// Signature, then claims: nothing in the payload is believed before the signature holds.
    fn check(
        &self,
        token: &str,
        key: &DecodingKey,
        alg: Algorithm,
        issuer: &str,
        audiences: &[String],
    ) -> Result<Claims, OidcError> {
        let leeway = self.options.leeway.as_secs();
        let mut validation = Validation::new(alg);
        validation.leeway = leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| map_jwt_error(e.into_kind(), alg))?
            .claims;
        // Exact string match: OIDC `iss` is one string, where jsonwebtoken would accept an array.
        match claims.get("iss") {
            Some(Value::String(iss)) if iss == issuer => {}
            Some(Value::String(iss)) => {
                return Err(OidcError::Issuer {
                    expected: issuer.to_owned(),
                    found: truncated(iss, 256),
                });
            }
            _ => return Err(OidcError::InvalidClaim("iss")),
        }
        // jsonwebtoken does not look at `iat`; a token minted in the future is a clock or
        // forgery problem either way.
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_f64().ok_or(OidcError::InvalidClaim("iat"))?;
            let now = jsonwebtoken::get_current_timestamp();
            if iat > now.saturating_add(leeway) as f64 {
                return Err(OidcError::IssuedInFuture);
            }
        }
        Ok(claims)
    }
}

/// The header's algorithm (from the allow-list) and `kid`.
fn parse_header(token: &str) -> Result<(Algorithm, Option<String>), OidcError> {
    let [header, _, _] = segments(token).ok_or(OidcError::NotAJwt)?;
    let header = decode_json(header).ok_or(OidcError::NotAJwt)?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) if alg == "RS256" => Algorithm::RS256,
        Some(Value::String(alg)) if alg == "ES256" => Algorithm::ES256,
        Some(Value::String(alg)) => return Err(OidcError::Algorithm(truncated(alg, 32))),
        _ => return Err(OidcError::NotAJwt),
    };
    // RFC 7515 §4.1.11: a recipient must refuse critical extensions it does not understand.
    if header.contains_key("crit") {
        return Err(OidcError::CriticalHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(OidcError::NotAJwt),
    };
    Ok((alg, kid))
}

/// The three segments of a compact JWS, each base64url without padding. The signature may be
/// empty (an `alg: none` token is still a JWT, to be refused as such, not taken for another
/// kind of credential).
fn segments(token: &str) -> Option<[&str; 3]> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let segs = [parts.next()?, parts.next()?, parts.next()?];
    let base64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let ok = parts.next().is_none()
        && !segs[0].is_empty()
        && !segs[1].is_empty()
        && segs.iter().all(|s| base64url(s));
    ok.then_some(segs)
}

fn decode_json(segment: &str) -> Option<serde_json::Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn map_jwt_error(kind: ErrorKind, alg: Algorithm) -> OidcError {
    match kind {
        ErrorKind::ExpiredSignature => OidcError::Expired,
        ErrorKind::ImmatureSignature => OidcError::NotYetValid,
        ErrorKind::InvalidAudience => OidcError::Audience,
        ErrorKind::MissingRequiredClaim(claim) => OidcError::MissingClaim(claim_name(&claim)),
        ErrorKind::InvalidClaimFormat(claim) => OidcError::InvalidClaim(claim_name(&claim)),
        ErrorKind::InvalidAlgorithm => OidcError::Algorithm(format!("{alg:?}")),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => OidcError::NotAJwt,
        // A bad signature, or a published key the crypto backend cannot use: fail closed.
        _ => OidcError::Signature,
    }
}

fn claim_name(claim: &str) -> &'static str {
    match claim {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        _ => "(other)",
    }
}

fn truncated(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    #[test]
    fn syntax() {
        let h = b64(r#"{"alg":"RS256","kid":"k"}"#);
        let p = b64(r#"{"iss":"https://gitlab.com","aud":"x"}"#);
        let token = format!("{h}.{p}.c2ln");
        assert!(OidcVerifier::looks_like_jwt(&token));
        assert_eq!(
            OidcVerifier::unverified_issuer(&token).as_deref(),
            Some("https://gitlab.com")
        );
        assert!(OidcVerifier::looks_like_jwt(&format!(
            "{}.{p}.",
            b64(r#"{"alg":"none"}"#)
        )));
        for bad in [
            "",
            "abc",
            "a.b",
            "glpat-xxxxxxxxxxxxxxxxxxxx",
            &format!("{h}.{p}.c2ln.x"),
            &format!("{h}.{p}.c2l="),
            &format!("{}.{p}.c2ln", b64(r#"{"typ":"JWT"}"#)),
            &format!("{}.{p}.c2ln", b64("[1]")),
            &format!(".{p}.c2ln"),
        ] {
            assert!(!OidcVerifier::looks_like_jwt(bad), "{bad}");
        }
        assert_eq!(
            OidcVerifier::unverified_issuer(&format!("{h}.{}.x", b64("{}"))),
            None
        );
    }

    #[test]
    fn header_rules() {
        let tok = |h: &str| format!("{}.{}.c2ln", b64(h), b64("{}"));
        assert!(matches!(
            parse_header(&tok(r#"{"alg":"ES256"}"#)),
            Ok((Algorithm::ES256, None))
        ));
        for alg in ["none", "HS256", "RS512", "PS256", "EdDSA"] {
            let h = format!(r#"{{"alg":"{alg}"}}"#);
            assert!(matches!(parse_header(&tok(&h)), Err(OidcError::Algorithm(a)) if a == alg));
        }
        let crit = r#"{"alg":"RS256","crit":["b64"],"b64":false}"#;
        assert!(matches!(
            parse_header(&tok(crit)),
            Err(OidcError::CriticalHeader)
        ));
        assert!(matches!(
            parse_header(&tok(r#"{"alg":"RS256","kid":7}"#)),
            Err(OidcError::NotAJwt)
        ));
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        assert_eq!(truncated("ééé", 2), "éé…");
        assert_eq!(truncated("ab", 2), "ab");
    }
}
