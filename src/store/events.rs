//! The event seams: reading back the events every write recorded (the audit log), and the
//! webhooks that deliver them from `depot serve` (an optional capability: on AWS the table's
//! stream feeds EventBridge instead, and users attach rules there).

use super::error::StoreResult;
use crate::domain::Timestamp;
use crate::domain::{Attempt, Delivery, Event, EventQuery, Hook, HookLog, MembershipTarget};
use async_trait::async_trait;

/// The events written with the changes they describe.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// One page of the events `query` wants, newest first, and whether more follow.
    async fn events(&self, query: &EventQuery) -> StoreResult<(Vec<Event>, bool)>;
    /// Forget events written before `before` (the audit log's retention); how many went.
    /// Events a hook has still to deliver are kept.
    async fn forget_events(&self, before: Timestamp) -> StoreResult<u64>;
}

/// Webhooks and their deliveries.
#[async_trait]
pub trait HookStore: Send + Sync + 'static {
    /// Save a new hook (`hook.id` is not used).
    async fn create_hook(&self, hook: Hook) -> StoreResult<Hook>;
    /// The hooks of a project or group, by id.
    async fn hooks_of(&self, target: &MembershipTarget) -> StoreResult<Vec<Hook>>;
    async fn hook(&self, id: i64) -> StoreResult<Option<Hook>>;
    /// Remove a hook and its deliveries; `NotFound` if there is none.
    async fn delete_hook(&self, id: i64) -> StoreResult<()>;
    /// What became of a hook's deliveries.
    async fn hook_log(&self, id: i64) -> StoreResult<HookLog>;

    /// Turn events written since the last call into deliveries for the hooks that take them
    /// (each event once, whatever crashes: the cursor moves in the same transaction), due
    /// at `now`; how many deliveries were made.
    async fn fan_out(&self, now: Timestamp) -> StoreResult<usize>;
    /// Up to `limit` pending deliveries due by `now`, each the oldest pending one of its
    /// hook and package (a later event of a package waits for the earlier ones).
    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Delivery>>;
    /// Record a try of `delivery`.
    async fn record_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> StoreResult<()>;
}
