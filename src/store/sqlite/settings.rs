//! `SettingsStore` on SQLite: a group's package settings, one row in `group_settings` once set
//! (none before: the registry applies the defaults).

use super::events::with_event;
use super::rows::{SETTINGS_COLS, settings_row};
use super::{Cached, SqliteMetaStore, db_err};
use crate::domain::{Event, GroupSettings};
use crate::store::{Record, SettingsStore, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl SettingsStore for SqliteMetaStore {
    async fn group_settings(&self, group_id: i64) -> StoreResult<Option<GroupSettings>> {
        let sql = format!(
            "SELECT {SETTINGS_COLS} FROM groups g \
             LEFT JOIN group_settings s ON s.group_id = g.id WHERE g.id = ?1"
        );
        self.read_one(sql, group_id, settings_row)
            .await?
            .ok_or_else(|| StoreError::not_found(Record::Group, group_id))
    }

    async fn set_group_settings(
        &self,
        group_id: i64,
        settings: &GroupSettings,
        event: &Event,
    ) -> StoreResult<GroupSettings> {
        let (settings, event) = (settings.clone(), event.clone());
        self.call(move |c| {
            with_event(c, &event, |c| {
                // Selected from `groups`, so an unknown group inserts nothing.
                let n = c
                    .execute_cached(
                        "INSERT INTO group_settings (group_id, generic_duplicates_allowed, \
                     generic_duplicate_exception_regex) SELECT id, ?2, ?3 FROM groups \
                     WHERE id = ?1 ON CONFLICT (group_id) DO UPDATE SET \
                     generic_duplicates_allowed = excluded.generic_duplicates_allowed, \
                     generic_duplicate_exception_regex = \
                     excluded.generic_duplicate_exception_regex",
                        params![
                            group_id,
                            settings.generic_duplicates_allowed,
                            settings.generic_duplicate_exception_regex
                        ],
                    )
                    .map_err(db_err)?;
                if n == 0 {
                    return Err(StoreError::not_found(Record::Group, group_id));
                }
                Ok(settings)
            })
        })
        .await
    }
}
