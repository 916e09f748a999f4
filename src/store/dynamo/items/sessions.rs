//! Items of upload sessions: the session with its state flattened into optional attributes
//! (the same fields as SQLite's columns), and the TTL that removes the record later.

use crate::domain::{
    FileName, PackageName, PackageVersion, SessionState, StateParts, Timestamp, UploadSession,
};
use crate::store::StoreResult;
use crate::store::dynamo::keys::Key;
use crate::store::dynamo::schema::{Fields, Item, ItemWriter, n, s};
use aws_sdk_dynamodb::types::AttributeValue;

/// The attribute DynamoDB's TTL reads (epoch seconds), as `template.yaml` names it.
pub const TTL_ATTRIBUTE: &str = "expires_ttl";

/// How long an upload session's record outlives the session.
const SESSION_RECORD_GRACE_SECONDS: i64 = 7 * 24 * 3600;

/// The attribute holding the state's kind (a reserved word in expressions).
pub const STATE: &str = "state";

/// The optional state attributes, in the order of [`state_values`]. `refused_message` holds a
/// refusal's code (the name is older than the codes), `refused_status` only older refusals.
pub const STATE_ATTRIBUTES: [&str; 5] = [
    "package_id",
    "file_id",
    "refused_status",
    "refused_message",
    "claim_until",
];

/// The values of [`STATE_ATTRIBUTES`] for a state (`None`: the attribute is absent).
pub fn state_values(p: &StateParts) -> [Option<AttributeValue>; 5] {
    [
        p.package_id.map(n),
        p.file_id.map(n),
        p.legacy_status.map(n),
        p.reason.clone().map(s),
        p.until.map(n),
    ]
}

pub fn session_item(u: &UploadSession) -> Item {
    let parts = u.state.to_parts();
    let mut item = ItemWriter::new(&Key::session(&u.id))
        .s("id", &u.id)
        .n("project_id", u.project_id)
        .s("name", u.name.as_str())
        .s("version", u.version.as_str())
        .s("file_name", u.file_name.as_str())
        .opt_s("package_status", u.package_status.map(|p| p.as_str()))
        .n("size", u.size as i64)
        .opt_s("sha256", u.sha256.as_deref())
        .s("staged_key", &u.staged_key)
        .opt_s("multipart_id", u.multipart_id.as_deref())
        .n("part_size", u.part_size as i64)
        .opt_n("token_id", u.token_id)
        .opt_s("delegation", u.delegation.as_deref())
        .s(STATE, &parts.kind)
        .n("created_at", u.created_at.millis())
        .n("expires_at", u.expires_at.millis())
        // DynamoDB's TTL (template.yaml) deletes the record a week after the session closed
        // to new bytes; its staged object is gone by then (the bucket's lifecycle rule).
        .n(
            TTL_ATTRIBUTE,
            u.expires_at.millis() / 1000 + SESSION_RECORD_GRACE_SECONDS,
        );
    for (name, value) in STATE_ATTRIBUTES.iter().zip(state_values(&parts)) {
        if let Some(v) = value {
            item = item.attribute(name, v);
        }
    }
    item.build()
}

pub fn session_from(item: &Item) -> StoreResult<UploadSession> {
    let f = Fields::of(item)?;
    let state = SessionState::from_parts(StateParts {
        kind: f.s(STATE)?,
        package_id: f.opt_n("package_id"),
        file_id: f.opt_n("file_id"),
        legacy_status: f.opt_n("refused_status"),
        reason: f.opt_s("refused_message"),
        until: f.opt_n("claim_until"),
    })
    .ok_or_else(|| f.corrupt("the session state does not parse"))?;
    Ok(UploadSession {
        id: f.s("id")?,
        project_id: f.n("project_id")?,
        name: f.checked("name", PackageName::parse)?,
        version: f.checked("version", PackageVersion::parse)?,
        file_name: FileName::from_stored(f.s("file_name")?),
        package_status: f.parse_opt("package_status")?,
        size: f.size("size")?,
        sha256: f.opt_s("sha256"),
        staged_key: f.s("staged_key")?,
        multipart_id: f.opt_s("multipart_id"),
        part_size: f.size("part_size")?,
        token_id: f.opt_n("token_id"),
        delegation: f.opt_s("delegation"),
        state,
        created_at: Timestamp::from_millis(f.n("created_at")?),
        expires_at: Timestamp::from_millis(f.n("expires_at")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PackageStatus, Refusal};
    use crate::store::StoreError;

    fn session(state: SessionState) -> UploadSession {
        UploadSession {
            id: "00ff".into(),
            project_id: 9,
            name: PackageName::parse("tool").unwrap(),
            version: PackageVersion::parse("1.2.3").unwrap(),
            file_name: FileName::parse(None, "tool.tar.gz").unwrap(),
            package_status: Some(PackageStatus::Hidden),
            size: 1 << 30,
            sha256: Some("ab".repeat(32)),
            staged_key: "uploads/00ff".into(),
            multipart_id: Some("mp-1".into()),
            part_size: 64 << 20,
            token_id: Some(5),
            delegation: Some(r#"{"source":{"kind":"gitlab_job"}}"#.into()),
            state,
            created_at: Timestamp::from_millis(1_700_000_000_000),
            expires_at: Timestamp::from_millis(1_700_000_900_000),
        }
    }

    #[test]
    fn sessions_round_trip_in_every_state() {
        for state in [
            SessionState::Pending,
            SessionState::Committing {
                until: Timestamp::from_millis(1_700_000_100_000),
            },
            SessionState::Committed {
                package_id: 42,
                file_id: 8,
            },
            SessionState::Refused {
                reason: Refusal::DigestMismatch,
            },
            SessionState::Aborted,
        ] {
            let u = session(state);
            assert_eq!(session_from(&session_item(&u)).unwrap(), u);
        }
        let bare = UploadSession {
            package_status: None,
            sha256: None,
            multipart_id: None,
            part_size: 0,
            token_id: None,
            delegation: None,
            ..session(SessionState::Pending)
        };
        let item = session_item(&bare);
        assert_eq!(session_from(&item).unwrap(), bare);
        assert_eq!(item.get(TTL_ATTRIBUTE), Some(&n(1_700_000_900 + 604_800)));
    }

    #[test]
    fn a_broken_state_is_corrupt() {
        let mut item = session_item(&session(SessionState::Pending));
        item.insert(STATE.into(), s("committed"));
        let Err(StoreError::Corrupt { key, .. }) = session_from(&item) else {
            panic!("a committed session without ids decoded");
        };
        assert_eq!(key, "UPLOAD#00ff/SESSION");
    }
}
