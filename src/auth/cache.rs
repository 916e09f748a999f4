//! Who is who, remembered for a few seconds per process: projects by id and path, a user's
//! memberships, a group's package settings, a project's package protection rules and an
//! issuer's trust rules. Every request needs
//! them, and they change seldom; read from the store each time they were most of a small
//! request's reads. Tokens are not kept: each request reads its token, so a revoked token
//! answers 401 everywhere from the next request on.
//!
//! The bound: a change made elsewhere (another Lambda instance, `depot admin` in another
//! process) takes effect here within the cache's lifetime ([`DEFAULT_TTL`] unless configured).
//! Changes made through this process ([`crate::admin::Admin`] built by the registry, the
//! settings use case) clear what they touch at once. Only what was found is kept: an unknown
//! token or project is asked again each time, so a new one works at once.

use super::oidc::OidcVerifier;
use super::upstream::Upstream;
use crate::domain::{
    GroupSettings, Membership, Project, ProtectionRule, Timestamp, Token, TrustRule,
};
use crate::store::{MetaStore, StoreResult};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an answer is kept unless configured: a revoked token, a removed member or a
/// changed setting takes effect everywhere within this.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// Entries kept per kind; a full map first drops what expired, then starts over.
const CAPACITY: usize = 10_000;

/// Answers of one kind, each kept for `ttl`.
struct Kept<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> Kept<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K, ttl: Duration) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((at, value)) if at.elapsed() < ttl => Some(value.clone()),
            _ => None,
        }
    }

    fn put(&self, key: K, value: V, ttl: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// The identity reads of one process, kept for `ttl` (zero: not kept at all).
pub struct IdentityCache {
    ttl: Duration,
    /// Bumped by every [`Self::clear`]: an answer read before a clear is not kept after it.
    generation: AtomicU64,
    trust_rules: Kept<String, Arc<Vec<TrustRule>>>,
    projects_by_id: Kept<i64, Option<Project>>,
    projects_by_path: Kept<String, Option<Project>>,
    memberships: Kept<i64, Arc<Vec<Membership>>>,
    settings: Kept<i64, Option<GroupSettings>>,
    protection_rules: Kept<i64, Arc<Vec<ProtectionRule>>>,
}

impl IdentityCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            trust_rules: Kept::new(),
            projects_by_id: Kept::new(),
            projects_by_path: Kept::new(),
            memberships: Kept::new(),
            settings: Kept::new(),
            protection_rules: Kept::new(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Forget everything: after a change made through this process.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.trust_rules.clear();
        self.projects_by_id.clear();
        self.projects_by_path.clear();
        self.memberships.clear();
        self.settings.clear();
        self.protection_rules.clear();
    }

    /// `kept`'s answer for `key`, or `read`'s (kept if `keep` says so and nothing was cleared
    /// meanwhile).
    async fn through<K, V>(
        &self,
        kept: &Kept<K, V>,
        key: K,
        keep: impl Fn(&V) -> bool,
        read: impl Future<Output = StoreResult<V>>,
    ) -> StoreResult<V>
    where
        K: Eq + Hash,
        V: Clone,
    {
        if self.ttl.is_zero() {
            return read.await;
        }
        if let Some(value) = kept.get(&key, self.ttl) {
            return Ok(value);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let value = read.await?;
        if keep(&value) && self.generation.load(Ordering::SeqCst) == generation {
            kept.put(key, value.clone(), self.ttl);
        }
        Ok(value)
    }
}

/// The identity reads, through the cache, and the services that vouch for federated
/// credentials (OIDC issuers' keys, an upstream GitLab).
#[derive(Clone)]
pub struct Identities {
    meta: Arc<dyn MetaStore>,
    cache: Arc<IdentityCache>,
    oidc: Arc<OidcVerifier>,
    upstream: Option<Arc<Upstream>>,
}

impl Identities {
    pub fn new(meta: Arc<dyn MetaStore>, cache: Arc<IdentityCache>) -> Self {
        Self {
            meta,
            cache,
            oidc: Arc::new(OidcVerifier::new(Default::default())),
            upstream: None,
        }
    }

    /// Verify OIDC ID tokens with `oidc` (its key caches live as long as it does).
    pub fn with_oidc(mut self, oidc: Arc<OidcVerifier>) -> Self {
        self.oidc = oidc;
        self
    }

    /// Ask `upstream` about job tokens depot does not know.
    pub fn with_upstream(mut self, upstream: Option<Arc<Upstream>>) -> Self {
        self.upstream = upstream;
        self
    }

    pub fn cache(&self) -> &Arc<IdentityCache> {
        &self.cache
    }

    pub fn oidc(&self) -> &Arc<OidcVerifier> {
        &self.oidc
    }

    pub fn upstream(&self) -> Option<&Arc<Upstream>> {
        self.upstream.as_ref()
    }

    /// A token by hash, read from the store every time (never kept: see the module header).
    pub async fn token_by_sha256(&self, sha256: &[u8; 32]) -> StoreResult<Option<Token>> {
        self.meta.token_by_sha256(sha256).await
    }

    pub async fn record_token_use(&self, token: &Token, at: Timestamp) -> StoreResult<()> {
        self.meta.record_token_use(token, at).await
    }

    /// The trust rules naming `issuer` (only an issuer with rules is kept: a token of an
    /// unknown issuer asks each time, so a rule added elsewhere works at once).
    pub async fn trust_rules_for_issuer(&self, issuer: &str) -> StoreResult<Arc<Vec<TrustRule>>> {
        let c = &self.cache;
        let read = async { Ok(Arc::new(self.meta.trust_rules_for_issuer(issuer).await?)) };
        let keep = |rules: &Arc<Vec<TrustRule>>| !rules.is_empty();
        c.through(&c.trust_rules, issuer.to_string(), keep, read)
            .await
    }

    pub async fn project_by_id(&self, id: i64) -> StoreResult<Option<Project>> {
        let c = &self.cache;
        let read = self.meta.project_by_id(id);
        c.through(&c.projects_by_id, id, Option::is_some, read)
            .await
    }

    pub async fn project_by_path(&self, path: &str) -> StoreResult<Option<Project>> {
        let c = &self.cache;
        let read = self.meta.project_by_path(path);
        c.through(&c.projects_by_path, path.to_string(), Option::is_some, read)
            .await
    }

    /// A user's memberships (none is an answer too: kept).
    pub async fn memberships_of(&self, user_id: i64) -> StoreResult<Arc<Vec<Membership>>> {
        let c = &self.cache;
        let read = async { Ok(Arc::new(self.meta.memberships_of(user_id).await?)) };
        c.through(&c.memberships, user_id, |_| true, read).await
    }

    /// A project's package protection rules (none is an answer too: kept).
    pub async fn protection_rules(&self, project_id: i64) -> StoreResult<Arc<Vec<ProtectionRule>>> {
        let c = &self.cache;
        let read = async { Ok(Arc::new(self.meta.protection_rules(project_id).await?)) };
        c.through(&c.protection_rules, project_id, |_| true, read)
            .await
    }

    /// A group's package settings (none set is an answer too: kept).
    pub async fn group_settings(&self, group_id: i64) -> StoreResult<Option<GroupSettings>> {
        let c = &self.cache;
        let read = self.meta.group_settings(group_id);
        c.through(&c.settings, group_id, |_| true, read).await
    }
}
