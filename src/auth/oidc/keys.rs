//! Per-issuer cache of the OIDC discovery document and the JWKS it points to, with decoding
//! keys prepared once per fetch. Owns the caching rules: lifetimes from the HTTP cache headers
//! (see `fetch::lifetime`), one fetch for many concurrent misses (a tokio mutex per issuer held
//! across the fetch), at most one refetch per `refetch_min` for unknown `kid`s, and keeping the
//! previous key set when a refresh fails.
//!
//! Issuers enter the map only through `OidcVerifier::verify`, whose caller passes an issuer it
//! already trusts, so the map is bounded by configuration, not by tokens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::{Client, Url};
use serde::Deserialize;
use tracing::{debug, warn};

use super::fetch::{self, Lifetimes};
use super::{OidcError, truncated};

/// A fetched JWKS: the set as published, and a decoding key for each usable entry.
pub(crate) struct KeySet {
    pub jwks: JwkSet,
    /// Parallel to `jwks.keys`; `None` for keys no allowed algorithm could use (e.g. `oct`).
    decoding: Vec<Option<DecodingKey>>,
    expires_at: Instant,
}

/// What a key set says about a token's `(alg, kid)`.
pub(crate) enum Lookup {
    Found(DecodingKey),
    /// No key with that kid (or, without a kid, none usable for the alg).
    Unknown,
    /// Without a kid, more than one key fits: refusing beats guessing.
    Ambiguous,
    /// A key with that kid exists but its type or declared use does not fit the alg.
    Misfit,
}

impl KeySet {
    fn new(jwks: JwkSet, ttl: Duration) -> Self {
        let decoding = jwks.keys.iter().map(prepare).collect();
        KeySet {
            jwks,
            decoding,
            expires_at: Instant::now() + ttl,
        }
    }

    pub(crate) fn find(&self, alg: Algorithm, kid: Option<&str>) -> Lookup {
        let usable = |i: &usize| fits(&self.jwks.keys[*i], alg) && self.decoding[*i].is_some();
        let chosen: Vec<usize> = match kid {
            Some(kid) => {
                let named: Vec<usize> = (0..self.jwks.keys.len())
                    .filter(|&i| self.jwks.keys[i].common.key_id.as_deref() == Some(kid))
                    .collect();
                if named.is_empty() {
                    return Lookup::Unknown;
                }
                match named.into_iter().find(usable) {
                    Some(i) => vec![i],
                    None => return Lookup::Misfit,
                }
            }
            None => (0..self.jwks.keys.len()).filter(usable).collect(),
        };
        match chosen.as_slice() {
            [] => Lookup::Unknown,
            [i] => Lookup::Found(self.decoding[*i].clone().expect("usable keys are prepared")),
            _ => Lookup::Ambiguous,
        }
    }
}

/// Only asymmetric keys are ever prepared: a JWKS that publishes an `oct` key must not turn
/// into an HMAC secret anyone holding the JWKS could sign with.
fn prepare(jwk: &Jwk) -> Option<DecodingKey> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_) => {
            DecodingKey::from_jwk(jwk).ok()
        }
        _ => None,
    }
}

/// Whether `jwk` may verify a signature made with `alg`: its kty (and curve) fit the alg, and
/// its optional `use`, `key_ops` and `alg` members do not say otherwise.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let common = &jwk.common;
    if common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return false;
    }
    if common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return false;
    }
    let (declared, kty_fits) = match alg {
        Algorithm::RS256 => (
            KeyAlgorithm::RS256,
            matches!(jwk.algorithm, AlgorithmParameters::RSA(_)),
        ),
        Algorithm::ES256 => (
            KeyAlgorithm::ES256,
            matches!(&jwk.algorithm, AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256),
        ),
        _ => return false,
    };
    kty_fits && common.key_algorithm.is_none_or(|a| a == declared)
}

fn fresh(set: &Option<Arc<KeySet>>) -> Option<Arc<KeySet>> {
    set.as_ref()
        .filter(|s| s.expires_at > Instant::now())
        .cloned()
}

/// The members of a discovery document this module reads.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// A JWKS whose keys are parsed one by one, so one key of a type `jsonwebtoken` does not know
/// (which fails the whole `JwkSet`) does not hide the others.
#[derive(Deserialize)]
struct LooseJwks {
    keys: Vec<serde_json::Value>,
}

struct IssuerCache {
    /// The latest key set, readable without waiting for a fetch in progress.
    current: RwLock<Option<Arc<KeySet>>>,
    /// Held across every fetch for this issuer: concurrent misses queue here and reuse the
    /// outcome instead of fetching again.
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Default)]
struct RefreshState {
    /// The JWKS URL from discovery, and when discovery must be fetched again.
    jwks_uri: Option<(Url, Instant)>,
    /// When the JWKS was last fetched (or tried): the `refetch_min` clock.
    last_attempt: Option<Instant>,
    /// The last failure while no key set existed, so waiters and a burst share one error.
    last_error: Option<(Instant, String)>,
}

impl IssuerCache {
    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn store(&self, set: Arc<KeySet>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(set);
    }
}

/// All issuers' caches and the shared HTTP client.
pub(crate) struct KeyStore {
    http: Result<Client, String>,
    lifetimes: Lifetimes,
    refetch_min: Duration,
    issuers: Mutex<HashMap<String, Arc<IssuerCache>>>,
    fetches: AtomicU64,
}

impl KeyStore {
    pub(crate) fn new(
        http: Result<Client, String>,
        lifetimes: Lifetimes,
        refetch_min: Duration,
    ) -> Self {
        KeyStore {
            http,
            lifetimes,
            refetch_min,
            issuers: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        }
    }

    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn cache(&self, issuer: &str) -> Arc<IssuerCache> {
        let mut map = self.issuers.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(issuer.to_owned())
            .or_insert_with(|| {
                Arc::new(IssuerCache {
                    current: RwLock::new(None),
                    refresh: Default::default(),
                })
            })
            .clone()
    }

    /// The key that must verify a token of `issuer` signed with `alg` under `kid`. `issuer`
    /// has already passed `fetch::secure_issuer`.
    pub(crate) async fn key_for(
        &self,
        issuer: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<DecodingKey, OidcError> {
        let cache = self.cache(issuer);
        let set = self.usable_set(&cache, issuer).await?;
        let set = match set.find(alg, kid) {
            Lookup::Unknown => self.refetch_for_unknown(&cache, issuer, set).await,
            _ => set,
        };
        match set.find(alg, kid) {
            Lookup::Found(key) => Ok(key),
            Lookup::Unknown | Lookup::Ambiguous => {
                Err(OidcError::UnknownKey(kid.map(|k| truncated(k, 128))))
            }
            Lookup::Misfit => Err(OidcError::Algorithm(format!(
                "{alg:?} does not fit key {:?}",
                truncated(kid.unwrap_or_default(), 128)
            ))),
        }
    }

    /// A key set that is fresh, or stale but the best there is (a refresh is under way or
    /// just failed). Fetches only when the set is missing or expired, once for all waiters.
    async fn usable_set(
        &self,
        cache: &IssuerCache,
        issuer: &str,
    ) -> Result<Arc<KeySet>, OidcError> {
        let seen = cache.snapshot();
        if let Some(set) = fresh(&seen) {
            return Ok(set);
        }
        let waited_from = Instant::now();
        let mut state = match (&seen, cache.refresh.try_lock()) {
            (_, Ok(state)) => state,
            // Someone is refreshing an expired set: its keys were good a moment ago.
            (Some(stale), Err(_)) => return Ok(stale.clone()),
            (None, Err(_)) => cache.refresh.lock().await,
        };
        let current = cache.snapshot();
        if let Some(set) = fresh(&current) {
            return Ok(set);
        }
        // With no keys at all, share the failure of the fetch we queued behind, or of one too
        // recent to retry, rather than each request trying (and timing out) in turn.
        if current.is_none()
            && let Some((at, error)) = &state.last_error
            && (*at >= waited_from || at.elapsed() < self.refetch_min)
        {
            return Err(OidcError::Discovery(error.clone()));
        }
        match self.fetch_keys(&mut state, issuer).await {
            Ok(set) => {
                state.last_error = None;
                cache.store(set.clone());
                Ok(set)
            }
            Err(error) => match current {
                Some(stale) => Ok(self.keep_stale(cache, issuer, &stale, &error)),
                None => {
                    warn!(issuer, %error, "OIDC keys unavailable");
                    state.last_error = Some((Instant::now(), error.clone()));
                    Err(OidcError::Discovery(error))
                }
            },
        }
    }

    /// A token names a key the set lacks: the issuer may have rotated. Refetch the JWKS, but at
    /// most once per `refetch_min` per issuer, so a burst of forged kids cannot drive fetches.
    async fn refetch_for_unknown(
        &self,
        cache: &IssuerCache,
        issuer: &str,
        seen: Arc<KeySet>,
    ) -> Arc<KeySet> {
        let mut state = cache.refresh.lock().await;
        match cache.snapshot() {
            // Someone fetched while we waited: decide on their result.
            Some(current) if !Arc::ptr_eq(&current, &seen) => return current,
            _ => {}
        }
        if state
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.refetch_min)
        {
            debug!(
                issuer,
                "unknown kid; JWKS refetched too recently to try again"
            );
            return seen;
        }
        match self.fetch_keys(&mut state, issuer).await {
            Ok(set) => {
                cache.store(set.clone());
                set
            }
            Err(error) => {
                warn!(issuer, %error, "JWKS refetch for an unknown kid failed; keeping the previous keys");
                seen
            }
        }
    }

    /// After a failed refresh, go on with the previous set for `min_ttl` rather than failing
    /// (or refetching on) every request while the issuer is down.
    fn keep_stale(
        &self,
        cache: &IssuerCache,
        issuer: &str,
        stale: &KeySet,
        error: &str,
    ) -> Arc<KeySet> {
        warn!(issuer, %error, "JWKS refresh failed; keeping the previous keys");
        let extended = Arc::new(KeySet {
            jwks: stale.jwks.clone(),
            decoding: stale.decoding.clone(),
            expires_at: Instant::now() + self.lifetimes.min_ttl,
        });
        cache.store(extended.clone());
        extended
    }

    /// Discovery (when its cached copy has expired) then the JWKS. Caller holds the issuer's
    /// refresh lock.
    async fn fetch_keys(
        &self,
        state: &mut RefreshState,
        issuer: &str,
    ) -> Result<Arc<KeySet>, String> {
        let jwks_uri = self.jwks_uri(state, issuer).await?;
        state.last_attempt = Some(Instant::now());
        let client = self.http.as_ref().map_err(Clone::clone)?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let (loose, ttl): (LooseJwks, _) =
            fetch::get_json(client, &jwks_uri, &self.lifetimes).await?;
        let keys: Vec<Jwk> = loose
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value(k).ok())
            .collect();
        let set = KeySet::new(JwkSet { keys }, ttl);
        debug!(
            issuer,
            url = %jwks_uri,
            keys = set.jwks.keys.len(),
            ttl_secs = ttl.as_secs(),
            "fetched JWKS"
        );
        Ok(Arc::new(set))
    }

    /// The issuer's `jwks_uri`, from the cached discovery document or a fresh fetch. A failed
    /// refresh keeps the previous URL: it rarely changes, and the JWKS fetch will tell.
    async fn jwks_uri(&self, state: &mut RefreshState, issuer: &str) -> Result<Url, String> {
        if let Some((url, expires_at)) = &state.jwks_uri
            && *expires_at > Instant::now()
        {
            return Ok(url.clone());
        }
        match self.discover(issuer).await {
            Ok((url, ttl)) => {
                state.jwks_uri = Some((url.clone(), Instant::now() + ttl));
                Ok(url)
            }
            Err(error) => match state.jwks_uri.take() {
                Some((url, _)) => {
                    warn!(issuer, %error, "OIDC discovery refresh failed; keeping the previous jwks_uri");
                    let retry_at = Instant::now() + self.lifetimes.min_ttl;
                    state.jwks_uri = Some((url.clone(), retry_at));
                    Ok(url)
                }
                None => Err(error),
            },
        }
    }

    async fn discover(&self, issuer: &str) -> Result<(Url, Duration), String> {
        let raw = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let url = fetch::secure_url(&raw).map_err(|why| format!("{raw}: {why}"))?;
        let client = self.http.as_ref().map_err(Clone::clone)?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let (doc, ttl): (Discovery, _) = fetch::get_json(client, &url, &self.lifetimes).await?;
        // OIDC Discovery §4.3: a document naming another issuer must not be used.
        if doc.issuer != issuer {
            return Err(format!(
                "GET {url}: issuer {:?} does not match {issuer:?}",
                doc.issuer
            ));
        }
        let jwks_uri = fetch::secure_url(&doc.jwks_uri)
            .and_then(|jwks| fetch::jwks_allowed(&url, &jwks).map(|()| jwks))
            .map_err(|why| format!("GET {url}: jwks_uri {:?} refused: {why}", doc.jwks_uri))?;
        debug!(issuer, %jwks_uri, ttl_secs = ttl.as_secs(), "fetched OIDC discovery");
        Ok((jwks_uri, ttl))
    }
}
