//! DynamoDB's limits and the store's patience, named: how many items one request may carry,
//! how many times a lost race or a throttled read is tried again, and how long to wait.

use std::time::Duration;

/// The largest file kept in its item: far below DynamoDB's 400 KB item limit, and up to about
/// 8 KiB cheaper than an S3 PUT with a 1 KB item beside it (a write unit per KB of item).
pub const INLINE_FILE_MAX: u64 = 64 << 10;

/// Items in one `TransactWriteItems` (DynamoDB's limit).
pub const TRANSACTION_ITEMS: usize = 100;

/// Keys in one `BatchGetItem` (DynamoDB's limit).
pub const BATCH_GET_KEYS: usize = 100;

/// Rounds of a write transaction that lost a race before giving up (`Contention`).
pub const TRANSACTION_ATTEMPTS: u32 = 8;

/// Rounds of a batch read whose keys DynamoDB left unprocessed (throttling) before giving up.
pub const BATCH_GET_ATTEMPTS: u32 = 10;

/// The first wait before asking again for unprocessed keys; it doubles each round.
pub const BATCH_GET_BACKOFF: Duration = Duration::from_millis(20);

/// A publish cancelled by a concurrent transaction waits this long, plus up to
/// [`CONFLICT_JITTER_MS`], so that the racers do not collide again.
pub const CONFLICT_PAUSE: Duration = Duration::from_millis(5);
pub const CONFLICT_JITTER_MS: u64 = 20;

/// The most file items one page of a bounded file query asks for.
pub const FILE_PAGE_ITEMS: usize = 100;

/// The most entries one read of the purge queue asks for.
pub const PURGE_PAGE_ITEMS: usize = 1000;

/// How often, and how far apart, `create_table` looks for the table to become ACTIVE.
pub const TABLE_ACTIVE_POLLS: u32 = 100;
pub const TABLE_ACTIVE_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The pause before a publish tries again after a conflict: jittered, so racers spread out.
pub fn conflict_pause() -> Duration {
    CONFLICT_PAUSE + Duration::from_millis(rand::random::<u64>() % CONFLICT_JITTER_MS)
}
