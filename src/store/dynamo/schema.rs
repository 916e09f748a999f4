//! How items are written and read: the `schema` attribute every item carries, a writer that
//! puts it there, and a reader that checks it and names the item (`PK/SK`) in every error.
//!
//! The rule for changing what an item holds:
//!
//! - A new attribute is optional on read, with a stated default for items written before it
//!   (as `last_downloaded_at` is absent until a first download). Adding one does not change
//!   `schema`; older readers ignore attributes they do not know.
//! - `schema` is bumped only when an existing attribute changes meaning (or is removed). The
//!   readers of the new version still decode every older version; an older reader refuses an
//!   item newer than it knows (`Corrupt`, saying so) instead of misreading it.
//! - Items written before `schema` existed lack it and are read as version 1.
//! - Updates of a few attributes leave `schema` as it is: they write only attributes whose
//!   meaning is the same in every version they may meet.

use super::keys::Key;
use crate::store::StoreError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::str::FromStr;

/// One item, or the key or attributes of a request.
pub type Item = HashMap<String, AttributeValue>;

/// The attribute holding an item's schema version (a reserved word in expressions: use a
/// `#schema` placeholder there).
pub const SCHEMA: &str = "schema";
/// The version this build writes, unless an item needs a newer one.
pub const SCHEMA_VERSION: i64 = 1;
/// Version 2: a file item whose `blob_key` is an inline key holds its bytes in `content`. A
/// version-1 reader would look for them in the bucket and call a live file's bytes missing;
/// it refuses the item instead. Other items stay version 1, readable by older builds.
pub const INLINE_FILE_SCHEMA: i64 = 2;
/// The newest version this build reads.
const NEWEST_SCHEMA: i64 = INLINE_FILE_SCHEMA;
/// What an item without `schema` is: everything written before the attribute existed.
const UNVERSIONED: i64 = 1;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Builds a whole item: its key, the schema version, then its own attributes.
pub struct ItemWriter(Item);

impl ItemWriter {
    pub fn new(key: &Key) -> Self {
        let mut item = key.item();
        item.insert(SCHEMA.into(), n(SCHEMA_VERSION));
        ItemWriter(item)
    }

    pub fn s(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), s(value));
        self
    }

    pub fn n(mut self, name: &str, value: i64) -> Self {
        self.0.insert(name.into(), n(value));
        self
    }

    pub fn bool(mut self, name: &str, value: bool) -> Self {
        self.0.insert(name.into(), AttributeValue::Bool(value));
        self
    }

    /// Left out when `None` (absent is how every optional attribute reads as unset).
    pub fn opt_s(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.s(name, v),
            None => self,
        }
    }

    pub fn opt_n(self, name: &str, value: Option<i64>) -> Self {
        match value {
            Some(v) => self.n(name, v),
            None => self,
        }
    }

    pub fn b(mut self, name: &str, value: &[u8]) -> Self {
        self.0
            .insert(name.into(), AttributeValue::B(Blob::new(value.to_vec())));
        self
    }

    /// The item as schema version `version` writes it.
    pub fn schema(mut self, version: i64) -> Self {
        self.0.insert(SCHEMA.into(), n(version));
        self
    }

    pub fn attribute(mut self, name: &str, value: AttributeValue) -> Self {
        self.0.insert(name.into(), value);
        self
    }

    pub fn build(self) -> Item {
        self.0
    }
}

/// Reads the attributes of one item; every failure is `Corrupt`, naming the item.
pub struct Fields<'a> {
    item: &'a Item,
    name: String,
}

impl<'a> Fields<'a> {
    /// A stored item, named by its own key; `Corrupt` if it is newer than this build reads.
    pub fn of(item: &'a Item) -> Result<Self, StoreError> {
        let name = match Key::of(item) {
            Ok(key) => key.to_string(),
            Err(_) => "?/?".into(),
        };
        Fields::named(item, name)
    }

    /// Attributes an update returned, named by the key it was sent to.
    pub fn returned(item: &'a Item, key: &Key) -> Result<Self, StoreError> {
        Fields::named(item, key.to_string())
    }

    fn named(item: &'a Item, name: String) -> Result<Self, StoreError> {
        let fields = Fields { item, name };
        let version = fields.opt_n(SCHEMA).unwrap_or(UNVERSIONED);
        if !(1..=NEWEST_SCHEMA).contains(&version) {
            return Err(fields.corrupt(format!(
                "written with schema {version}; this build reads up to {NEWEST_SCHEMA}"
            )));
        }
        Ok(fields)
    }

    pub fn corrupt(&self, detail: impl std::fmt::Display) -> StoreError {
        StoreError::corrupt(&self.name, detail)
    }

    pub fn s(&self, name: &str) -> Result<String, StoreError> {
        self.opt_s(name)
            .ok_or_else(|| self.corrupt(format!("lacks string attribute {name}")))
    }

    pub fn opt_s(&self, name: &str) -> Option<String> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        }
    }

    pub fn n(&self, name: &str) -> Result<i64, StoreError> {
        self.opt_n(name)
            .ok_or_else(|| self.corrupt(format!("lacks number attribute {name}")))
    }

    pub fn opt_n(&self, name: &str) -> Option<i64> {
        match self.item.get(name) {
            Some(AttributeValue::N(v)) => v.parse().ok(),
            _ => None,
        }
    }

    pub fn opt_b(&self, name: &str) -> Option<bytes::Bytes> {
        match self.item.get(name) {
            Some(AttributeValue::B(v)) => Some(bytes::Bytes::copy_from_slice(v.as_ref())),
            _ => None,
        }
    }

    /// A flag: absent (or not a boolean) reads as false.
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.item.get(name), Some(AttributeValue::Bool(true)))
    }

    pub fn opt_bool(&self, name: &str) -> Option<bool> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(v)) => Some(*v),
            _ => None,
        }
    }

    /// A string attribute parsed as `T`; `Corrupt` if absent or unparseable.
    pub fn parse<T: FromStr>(&self, name: &str) -> Result<T, StoreError> {
        let value = self.s(name)?;
        value
            .parse()
            .map_err(|_| self.corrupt(format!("{name} {value:?} does not parse")))
    }

    /// An optional string attribute parsed as `T`.
    pub fn parse_opt<T: FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.opt_s(name) {
            Some(_) => self.parse(name).map(Some),
            None => Ok(None),
        }
    }

    /// A string attribute checked by `parse` (for types whose parser is not `FromStr`).
    pub fn checked<T, E>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        let value = self.s(name)?;
        parse(&value).map_err(|_| self.corrupt(format!("{name} {value:?} does not parse")))
    }

    /// A number attribute that is a size (never negative).
    pub fn size(&self, name: &str) -> Result<u64, StoreError> {
        let value = self.n(name)?;
        u64::try_from(value).map_err(|_| self.corrupt(format!("{name} {value} is negative")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_written_carries_the_schema() {
        let item = ItemWriter::new(&Key::project(1)).n("id", 1).build();
        assert_eq!(item.get(SCHEMA), Some(&n(SCHEMA_VERSION)));
        assert_eq!(SCHEMA_VERSION, 1);
    }

    #[test]
    fn items_without_schema_read_as_version_one() {
        let mut item = Key::project(1).item();
        item.insert("id".into(), n(1));
        assert_eq!(Fields::of(&item).unwrap().n("id").unwrap(), 1);
    }

    #[test]
    fn newer_items_are_refused_not_misread() {
        let mut item = ItemWriter::new(&Key::project(1)).build();
        item.insert(SCHEMA.into(), n(NEWEST_SCHEMA + 1));
        let Err(StoreError::Corrupt { key, detail }) = Fields::of(&item) else {
            panic!("a newer item was read");
        };
        assert_eq!(key, "PROJECT#1/META");
        assert!(detail.contains("schema 3"), "{detail}");
        // What this build writes itself, it reads.
        item.insert(SCHEMA.into(), n(INLINE_FILE_SCHEMA));
        assert!(Fields::of(&item).is_ok());
    }

    #[test]
    fn failures_name_the_item() {
        let item = ItemWriter::new(&Key::token_id(7))
            .s("kind", "bogus")
            .build();
        let fields = Fields::of(&item).unwrap();
        let e = fields.n("id").unwrap_err();
        assert_eq!(
            e.to_string(),
            "corrupt record TOKENID#7/TOKEN: lacks number attribute id"
        );
        let e = fields.parse::<i64>("kind").unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { ref key, .. } if key == "TOKENID#7/TOKEN"));
    }
}
