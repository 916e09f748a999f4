//! Package and file ids without a counter write per id (a counter's `UpdateItem` is a write
//! unit on every publish): time-ordered ids, `(ms since 2026) << 10 | slot`, where the slot
//! (0..1023) is leased by one process at a time through a conditional write on
//! `IDSLOT#<slot>`, renewed as it is used. Ids are unique by construction (one slot, one
//! process, at most one id per millisecond), ordered by time across processes as far as
//! their clocks agree, above every counter id given before, and below 2^53 (safe as JSON
//! numbers for GitLab clients) for the next 278 years.
//!
//! A process that finds no free slot (more than 1,024 at once) falls back to the counter.

use super::keys::{Counter, Key};
use super::schema::{ItemWriter, n, s};
use super::{DynamoMetaStore, conditional_failed};
use crate::store::StoreResult;
use crate::store::aws::sdk_failure;

/// 2026-01-01T00:00:00Z.
const EPOCH_MS: i64 = 1_767_225_600_000;
const SLOT_BITS: u32 = 10;
const SLOTS: u64 = 1 << SLOT_BITS;
/// How long a claim or renewal holds a slot.
const LEASE_MS: i64 = 15 * 60_000;
/// A lease with less than this left is renewed before the next id.
const RENEW_WITHIN_MS: i64 = 5 * 60_000;
/// A lease with less than this left is not used at all (an id is used within a request, and a
/// request ends well within a minute): it is claimed anew.
const USABLE_MS: i64 = 60_000;
/// Random slots tried before falling back to the counter.
const CLAIM_TRIES: usize = 8;

/// The slot this process holds, and the last millisecond it gave an id in.
#[derive(Debug, Default)]
pub struct IdSlot {
    lease: Option<Lease>,
    last_ms: i64,
}

#[derive(Debug, Clone)]
struct Lease {
    slot: u64,
    until_ms: i64,
    owner: String,
}

fn now_ms() -> i64 {
    crate::domain::Timestamp::now().millis()
}

/// The id of millisecond `ms` (since [`EPOCH_MS`]) in `slot`.
fn compose(ms: i64, slot: u64) -> i64 {
    (ms << SLOT_BITS) | slot as i64
}

impl DynamoMetaStore {
    /// A new id for `entity`: time-ordered for packages and files, from the counter otherwise.
    pub(super) async fn next_id(&self, entity: Counter) -> StoreResult<i64> {
        match entity {
            Counter::Package | Counter::File => match self.time_ordered_id().await? {
                Some(id) => Ok(id),
                None => self.counter_id(entity).await,
            },
            _ => self.counter_id(entity).await,
        }
    }

    /// A time-ordered id, or `None` when no slot could be had.
    async fn time_ordered_id(&self) -> StoreResult<Option<i64>> {
        let mut held = self.id_slot.lock().await;
        let now = now_ms();
        let lease = match held.lease.clone() {
            Some(l) if l.until_ms - now > RENEW_WITHIN_MS => Some(l),
            Some(l) if l.until_ms - now > USABLE_MS => self.renew(l, now).await?,
            _ => None,
        };
        let lease = match lease {
            Some(l) => l,
            None => match self.claim(now).await? {
                Some(l) => l,
                None => return Ok(None),
            },
        };
        // One id per millisecond: a burst borrows the next ones.
        let ms = (now - EPOCH_MS).max(held.last_ms + 1);
        held.last_ms = ms;
        let id = compose(ms, lease.slot);
        held.lease = Some(lease);
        Ok(Some(id))
    }

    /// Extend `lease`; a lease another process took over (ours expired meanwhile) is claimed
    /// anew.
    async fn renew(&self, lease: Lease, now: i64) -> StoreResult<Option<Lease>> {
        let until = now + LEASE_MS;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::id_slot(lease.slot).item()))
            .update_expression("SET until_ms = :until")
            .condition_expression("attribute_exists(PK) AND #owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":me", s(&lease.owner))
            .send()
            .await;
        match out {
            Ok(_) => Ok(Some(Lease {
                until_ms: until,
                ..lease
            })),
            Err(e) if conditional_failed(&e) => Ok(None),
            Err(e) => Err(sdk_failure(e)),
        }
    }

    /// Claim a free (or expired) slot, trying a few at random.
    async fn claim(&self, now: i64) -> StoreResult<Option<Lease>> {
        let owner = hex::encode(rand::random::<[u8; 16]>());
        for _ in 0..CLAIM_TRIES {
            let slot = rand::random::<u64>() % SLOTS;
            let until = now + LEASE_MS;
            let item = ItemWriter::new(&Key::id_slot(slot))
                .s("owner", &owner)
                .n("until_ms", until)
                .build();
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK) OR until_ms < :now")
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match out {
                Ok(_) => {
                    let owner = owner.clone();
                    return Ok(Some(Lease {
                        slot,
                        until_ms: until,
                        owner,
                    }));
                }
                Err(e) if conditional_failed(&e) => continue,
                Err(e) => return Err(sdk_failure(e)),
            }
        }
        tracing::warn!("no id slot free after {CLAIM_TRIES} tries: ids from the counter");
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_json_safe_for_centuries_and_above_counter_ids() {
        let in_278_years = 278 * 365 * 24 * 3_600_000i64;
        assert!(compose(in_278_years, SLOTS - 1) < 1 << 53);
        let today = 1_795_910_400_000 - EPOCH_MS; // 2026-11-29
        assert!(compose(today, 0) > 10_000_000_000_000);
        assert!(
            compose(today, 5) < compose(today + 1, 0),
            "time orders before slot"
        );
    }
}
