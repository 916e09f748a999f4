//! Events on DynamoDB items. A change carries its event in the `ev` attribute of the item it
//! writes (the same write, so the two cannot part); the table's stream hands the function the
//! old and new item, and an `ev` that differs from the old one is a new event. A change that
//! only removes items writes a carrier item with its event in the same transaction. The audit
//! log's entries hold the event under another name (`event`), so that writing them is no
//! event again.

use super::super::keys::Key;
use super::super::schema::{Fields, Item, ItemWriter, s};
use super::TTL_ATTRIBUTE;
use crate::domain::Event;
use crate::store::StoreError;

/// The attribute that carries a change's event.
pub const EVENT: &str = "ev";
/// Where an audit entry keeps its event.
const AUDIT_EVENT: &str = "event";
/// How long a carrier item stays: the stream holds records for a day.
const CARRIER_SECONDS: i64 = 86_400;

/// `item` carrying `event`.
pub fn with_event(mut item: Item, event: &Event) -> Item {
    item.insert(EVENT.into(), s(event.to_json()));
    item
}

/// An item whose only purpose is to carry `event` to the stream.
pub fn event_item(event: &Event) -> Item {
    ItemWriter::new(&Key::event(&event.id))
        .s(EVENT, event.to_json())
        .n(TTL_ATTRIBUTE, event.time.millis() / 1000 + CARRIER_SECONDS)
        .build()
}

/// An event's entry in an audit partition (`project_id`: the project's; `None`: the
/// instance's), kept `keep_seconds`.
pub fn audit_item(event: &Event, project_id: Option<i64>, keep_seconds: i64) -> Item {
    ItemWriter::new(&Key::audit(project_id, event.time.millis(), &event.id))
        .s(AUDIT_EVENT, event.to_json())
        .n(TTL_ATTRIBUTE, event.time.millis() / 1000 + keep_seconds)
        .build()
}

pub fn audit_event_from(item: &Item) -> Result<Event, StoreError> {
    let f = Fields::of(item)?;
    let body = f.s(AUDIT_EVENT)?;
    Event::from_json(&body).ok_or_else(|| f.corrupt("its event is not an event"))
}

/// The new event a change of an item made: the new item's `ev`, unless the old item had the
/// same (a later write of the item that left its event as it was).
pub fn changed_event(old: Option<&str>, new: Option<&str>) -> Option<Event> {
    let new = Event::from_json(new?)?;
    let old_id = old.and_then(Event::from_json).map(|e| e.id);
    (old_id.as_deref() != Some(new.id.as_str())).then_some(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, EventType, Timestamp};

    #[test]
    fn audit_entries_round_trip() {
        let e = Event::new(EventType::TokenCreated, Actor::system(), Timestamp::now());
        assert_eq!(audit_event_from(&audit_item(&e, Some(3), 60)).unwrap(), e);
        assert!(event_item(&e).contains_key(EVENT));
    }

    #[test]
    fn only_a_new_ev_is_an_event() {
        let a = Event::new(EventType::PackageDeleted, Actor::system(), Timestamp::now());
        let b = Event::new(EventType::PackageDeleted, Actor::system(), Timestamp::now());
        let (a, b) = (a.to_json(), b.to_json());
        assert!(changed_event(None, Some(&a)).is_some());
        assert!(changed_event(Some(&a), Some(&a)).is_none());
        assert_eq!(changed_event(Some(&a), Some(&b)).unwrap().to_json(), b);
        assert!(changed_event(Some(&a), None).is_none());
    }
}
