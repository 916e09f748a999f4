//! The keys of events: the item that carries an event where the change itself removes an item
//! (a delete leaves nothing for the stream to read the event from), and the audit log's
//! entries, newest last in a partition per project and one for the whole instance.

use super::{Key, Partition};

const EVENT: &str = "EVENT#";
const AUDIT: &str = "AUDIT#";
/// The audit partition of every event, whatever its project (the instance's log).
const AUDIT_ALL: &str = "AUDIT#ALL";

impl Key {
    /// An item that only carries an event to the stream (gone by TTL).
    pub fn event(id: &str) -> Self {
        Key::new(format!("{EVENT}{id}"), "EVENT")
    }

    /// An event's entry in an audit partition: sorted by time (zero-padded milliseconds),
    /// then id.
    pub fn audit(project_id: Option<i64>, at_millis: i64, id: &str) -> Self {
        Key::new(audit_pk(project_id), format!("{at_millis:015}#{id}"))
    }
}

impl Partition {
    /// The audit entries of one project, or of every event.
    pub fn audit(project_id: Option<i64>) -> Self {
        Partition::new(audit_pk(project_id), None)
    }
}

/// The first sort key at or after `at_millis` in an audit partition.
pub fn audit_sk_from(at_millis: i64) -> String {
    format!("{at_millis:015}#")
}

/// The last sort key at or before `at_millis` in an audit partition (`~` sorts after the
/// characters of an id).
pub fn audit_sk_to(at_millis: i64) -> String {
    format!("{at_millis:015}#~")
}

fn audit_pk(project_id: Option<i64>) -> String {
    match project_id {
        Some(id) => format!("{AUDIT}{id}"),
        None => AUDIT_ALL.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_are_pinned() {
        assert_eq!(Key::event("e1"), Key::new("EVENT#e1", "EVENT"));
        let k = Key::audit(Some(7), 1_700_000_000_000, "e1");
        assert_eq!(k, Key::new("AUDIT#7", "001700000000000#e1"));
        assert_eq!(Key::audit(None, 5, "e").pk, "AUDIT#ALL");
        assert!(audit_sk_from(5) <= Key::audit(None, 5, "e").sk);
        assert!(audit_sk_to(5) >= Key::audit(None, 5, "ffff").sk);
    }
}
