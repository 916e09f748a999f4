//! Items of packages and their files: the package (with its list index keys) and its id
//! alias, file records, the file-name guard of the duplicate rule, blob references and the
//! purge queue's entries.

use crate::domain::{
    FileName, Package, PackageFile, PackageName, PackageStatus, PackageVersion, Rank, Timestamp,
    VersionRef,
};
use crate::store::StoreResult;
use crate::store::dynamo::keys::{self, BY_CREATED, BY_NAME, BY_VERSION, Key, LIST_PK};
use crate::store::dynamo::schema::{Fields, INLINE_FILE_SCHEMA, Item, ItemWriter, n};

/// Projected into the list indexes for the name filter (a case-insensitive substring).
pub const NAME_LC: &str = "name_lc";
/// A file item's status: absent while live, [`DOOMED`] once deleted.
pub const FILE_STATUS: &str = "status";
pub const DOOMED: &str = "pending_destruction";
/// The name guard's newest file id: a delete frees the name only if no newer file took it.
pub const NEWEST_FILE_ID: &str = "newest_file_id";

/// Where a package item lives: its name/version slot while live, a slot of its own once
/// deleted (so a new package may take the name and version).
pub fn package_key(p: &Package) -> Key {
    match p.status {
        PackageStatus::PendingDestruction => Key::deleted_package(p.project_id, p.id),
        PackageStatus::Default | PackageStatus::Hidden => {
            Key::package(p.project_id, &p.name, &p.version)
        }
    }
}

/// The whole package item, with its list index keys.
pub fn package_item(p: &Package) -> Item {
    ItemWriter::new(&package_key(p))
        .n("id", p.id)
        .n("project_id", p.project_id)
        .s("name", p.name.as_str())
        .s("version", p.version.as_str())
        .s("status", p.status.as_str())
        .n("created_at", p.created_at.millis())
        .n("updated_at", p.updated_at.millis())
        .opt_n(
            "last_downloaded_at",
            p.last_downloaded_at.map(Timestamp::millis),
        )
        .s(LIST_PK, keys::list_pk(p.project_id, p.status))
        .s(BY_CREATED, keys::by_created(p.created_at, p.id))
        // Live packages are listed by name from their own range (`lists::by_slot`).
        .opt_s(
            BY_NAME,
            (p.status == PackageStatus::PendingDestruction)
                .then(|| keys::by_name(&p.name, &p.version, p.id)),
        )
        .s(BY_VERSION, keys::by_version(&p.version, p.id))
        .s(NAME_LC, p.name.as_str().to_lowercase())
        .opt_n(DOWNLOAD_COUNT, counted(p.download_count))
        .build()
}

pub fn package_from(item: &Item) -> StoreResult<Package> {
    let f = Fields::of(item)?;
    Ok(Package {
        id: f.n("id")?,
        project_id: f.n("project_id")?,
        name: f.checked("name", PackageName::parse)?,
        version: f.checked("version", PackageVersion::parse)?,
        status: f.parse("status")?,
        created_at: Timestamp::from_millis(f.n("created_at")?),
        updated_at: Timestamp::from_millis(f.n("updated_at")?),
        last_downloaded_at: f.opt_n("last_downloaded_at").map(Timestamp::from_millis),
        download_count: f.opt_n(DOWNLOAD_COUNT).unwrap_or(0).max(0) as u64,
    })
}

/// Downloads counted of a package or file (absent until the first is counted).
pub const DOWNLOAD_COUNT: &str = "download_count";

fn counted(count: u64) -> Option<i64> {
    (count > 0).then_some(count as i64)
}

/// A live package item's count of live files and their bytes, kept by each publish and file
/// delete so a list page's rows need no read of their files. Packages created before these
/// were kept have neither ([`file_totals_of`] is `None`) and are never given them: a count
/// started part way would be wrong.
pub const FILE_COUNT: &str = "file_count";
pub const FILE_BYTES: &str = "file_bytes";

/// A new live package's item with its first file counted.
pub fn counted_package_item(p: &Package, first: &PackageFile) -> Item {
    let mut item = package_item(p);
    item.insert(FILE_COUNT.into(), n(1));
    item.insert(FILE_BYTES.into(), n(first.size as i64));
    item
}

/// The live files' count and bytes a package item keeps, if it keeps them.
pub fn file_totals_of(item: &Item) -> Option<(u64, u64)> {
    let f = Fields::of(item).ok()?;
    let count = f.opt_n(FILE_COUNT)?;
    let bytes = f.opt_n(FILE_BYTES)?;
    Some((count.max(0) as u64, bytes.max(0) as u64))
}

/// A package's entry in its name's rank, written with the package: what `latest` reads.
pub fn rank_item(p: &Package) -> Item {
    let sort_key = Rank::of(&p.version).sort_key(p.created_at, p.id);
    ItemWriter::new(&Key::version_rank(p.project_id, &p.name, &sort_key))
        .n("id", p.id)
        .s("version", p.version.as_str())
        .n("created_at", p.created_at.millis())
        .build()
}

/// The key of a package's rank entry.
pub fn rank_key(p: &Package) -> Key {
    let sort_key = Rank::of(&p.version).sort_key(p.created_at, p.id);
    Key::version_rank(p.project_id, &p.name, &sort_key)
}

pub fn rank_from(item: &Item) -> StoreResult<VersionRef> {
    let f = Fields::of(item)?;
    Ok(VersionRef {
        id: f.n("id")?,
        version: f.checked("version", PackageVersion::parse)?,
        created_at: Timestamp::from_millis(f.n("created_at")?),
    })
}

/// The package id alias's attribute naming the sort key of the package item.
pub const ALIAS_SLOT: &str = "sk";

/// The package id alias: finds the package item (live or deleted) by id.
pub fn package_alias_item(p: &Package) -> Item {
    ItemWriter::new(&Key::package_id(p.id))
        .n("project_id", p.project_id)
        .s(ALIAS_SLOT, package_key(p).sk)
        .build()
}

/// The key of the package item an id alias names.
pub fn package_alias_slot(alias: &Item) -> StoreResult<Key> {
    let f = Fields::of(alias)?;
    Ok(Key::package_slot(f.n("project_id")?, f.s(ALIAS_SLOT)?))
}

/// A small file's bytes, in its record.
pub const CONTENT: &str = "content";

/// A file record (live; a delete sets [`FILE_STATUS`] by an update), with its bytes when it
/// keeps them ([`INLINE_FILE_SCHEMA`]).
pub fn file_item(f: &PackageFile) -> Item {
    let writer = ItemWriter::new(&Key::file(f.package_id, &f.file_name, f.id));
    let writer = match &f.content {
        Some(bytes) => writer.schema(INLINE_FILE_SCHEMA).b(CONTENT, bytes),
        None => writer,
    };
    writer
        .n("id", f.id)
        .n("package_id", f.package_id)
        .s("file_name", f.file_name.as_str())
        .n("size", f.size as i64)
        .s("sha256", &f.sha256)
        .s("blob_key", &f.blob_key)
        .n("created_at", f.created_at.millis())
        .n("updated_at", f.updated_at.millis())
        .build()
}

pub fn file_from(item: &Item) -> StoreResult<PackageFile> {
    let f = Fields::of(item)?;
    Ok(PackageFile {
        id: f.n("id")?,
        package_id: f.n("package_id")?,
        file_name: FileName::from_stored(f.s("file_name")?),
        size: f.size("size")?,
        sha256: f.s("sha256")?,
        blob_key: f.s("blob_key")?,
        created_at: Timestamp::from_millis(f.n("created_at")?),
        updated_at: Timestamp::from_millis(f.n("updated_at")?),
        content: f.opt_b(CONTENT),
        // Counted in an item of its own beside it (`file_downloads_from`).
        download_count: 0,
    })
}

/// What an item of a package's partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageItem {
    File,
    /// A file's downloads counted ([`Key::file_downloads`]).
    Downloads,
    /// A file-name guard of the duplicate rule.
    Other,
}

pub fn item_kind(item: &Item) -> StoreResult<PackageItem> {
    let key = Key::of(item)?;
    Ok(if key.sk.starts_with("FILE#") {
        PackageItem::File
    } else if key.sk.starts_with("DOWNLOADS#") {
        PackageItem::Downloads
    } else {
        PackageItem::Other
    })
}

/// A file's id and its downloads counted, from its count item.
pub fn file_downloads_from(item: &Item) -> StoreResult<(i64, u64)> {
    let f = Fields::of(item)?;
    Ok((f.n("id")?, f.n(DOWNLOAD_COUNT)?.max(0) as u64))
}

/// Is this file item pending destruction?
pub fn file_is_doomed(item: &Item) -> StoreResult<bool> {
    Ok(Fields::of(item)?.opt_s(FILE_STATUS).as_deref() == Some(DOOMED))
}

/// The guard saying a live file of `file` 's name exists, naming the newest such file.
pub fn name_guard_item(file: &PackageFile) -> Item {
    ItemWriter::new(&Key::file_name_guard(file.package_id, &file.file_name))
        .n(NEWEST_FILE_ID, file.id)
        .build()
}

/// The reference of `file`'s record to its blob. Publishes write none any more (every blob key
/// is new, so no two records share one); the purge still honours those written before, and
/// the tests write them to check that.
#[cfg(test)]
pub fn blob_ref_item(file: &PackageFile) -> Item {
    ItemWriter::new(&Key::blob_ref(&file.blob_key, file.id)).build()
}

/// The blob reference a file item (or its `PK, SK, blob_key, id` projection) implies; `None`
/// for the other items under a package (name guards).
pub fn blob_ref_of(item: &Item) -> StoreResult<Option<Key>> {
    let f = Fields::of(item)?;
    Ok(match (f.opt_s("blob_key"), f.opt_n("id")) {
        (Some(blob), Some(id)) => Some(Key::blob_ref(&blob, id)),
        _ => None,
    })
}

/// The purge queue's entry a file item (or its `PK, SK, blob_key, id` projection) may have had
/// (if the file was deleted on its own); `None` for the other items under a package.
pub fn purge_entry_of(item: &Item) -> StoreResult<Option<Key>> {
    let f = Fields::of(item)?;
    Ok(match (f.opt_s("blob_key"), f.opt_n("id")) {
        (Some(_), Some(id)) => Some(Key::purge_file(id)),
        _ => None,
    })
}

/// The purge queue's entry for a deleted package.
pub fn purge_package_item(package_id: i64) -> Item {
    ItemWriter::new(&Key::purge_package(package_id))
        .n("package_id", package_id)
        .build()
}

pub fn purged_package_id(entry: &Item) -> StoreResult<i64> {
    Fields::of(entry)?.n("package_id")
}

/// The purge queue's entry for a deleted file: the key of its record.
pub fn purge_file_item(file: &PackageFile) -> Item {
    let record = Key::file(file.package_id, &file.file_name, file.id);
    ItemWriter::new(&Key::purge_file(file.id))
        .s("file_pk", record.pk)
        .s("file_sk", record.sk)
        .build()
}

pub fn purged_file_key(entry: &Item) -> StoreResult<Key> {
    let f = Fields::of(entry)?;
    Ok(Key::stored(f.s("file_pk")?, f.s("file_sk")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dynamo::schema::{SCHEMA, s};

    fn package(status: PackageStatus, downloaded: Option<Timestamp>) -> Package {
        Package {
            id: 42,
            project_id: 9,
            name: PackageName::parse("Tool").unwrap(),
            version: PackageVersion::parse("1.2.3").unwrap(),
            status,
            created_at: Timestamp::from_millis(1_700_000_000_000),
            updated_at: Timestamp::from_millis(1_700_000_000_500),
            last_downloaded_at: downloaded,
            download_count: 17,
        }
    }

    fn file() -> PackageFile {
        PackageFile {
            id: 8,
            package_id: 42,
            file_name: FileName::parse(None, "tool.tar.gz").unwrap(),
            size: 3,
            sha256: "ab".repeat(32),
            blob_key: "blobs/00ff".into(),
            created_at: Timestamp::from_millis(1_700_000_000_000),
            updated_at: Timestamp::from_millis(1_700_000_000_000),
            content: None,
            download_count: 0,
        }
    }

    #[test]
    fn packages_round_trip_in_their_slot() {
        for status in [PackageStatus::Default, PackageStatus::Hidden] {
            for downloaded in [None, Some(Timestamp::from_millis(1_700_000_001_000))] {
                let p = package(status, downloaded);
                let item = package_item(&p);
                assert_eq!(package_from(&item).unwrap(), p);
                assert_eq!(
                    Key::of(&item).unwrap(),
                    Key::package(9, &p.name, &p.version)
                );
                let alias = package_alias_item(&p);
                assert_eq!(package_alias_slot(&alias).unwrap(), Key::of(&item).unwrap());
            }
        }
        let doomed = package(PackageStatus::PendingDestruction, None);
        let item = package_item(&doomed);
        assert_eq!(package_from(&item).unwrap(), doomed);
        assert_eq!(Key::of(&item).unwrap(), Key::deleted_package(9, 42));
    }

    #[test]
    fn package_items_carry_their_list_keys() {
        let item = package_item(&package(PackageStatus::Hidden, None));
        let get = |name: &str| Fields::of(&item).unwrap().s(name).unwrap();
        assert_eq!(get(LIST_PK), "LIST#9#hidden");
        assert_eq!(get(BY_CREATED), "1700000000000#00000000000000000042");
        assert_eq!(get(BY_VERSION), "1.2.3#00000000000000000042");
        assert_eq!(get(NAME_LC), "tool");
        // A live package is listed by name from its own range: no name index entry to write.
        assert!(!item.contains_key(BY_NAME));
        let item = package_item(&package(PackageStatus::PendingDestruction, None));
        let get = |name: &str| Fields::of(&item).unwrap().s(name).unwrap();
        assert_eq!(get(LIST_PK), "LIST#9#pending_destruction");
        assert_eq!(get(BY_NAME), "Tool#1.2.3#00000000000000000042");
    }

    #[test]
    fn files_round_trip() {
        let f = file();
        let mut item = file_item(&f);
        assert_eq!(file_from(&item).unwrap(), f);
        assert!(!file_is_doomed(&item).unwrap());
        assert_eq!(
            blob_ref_of(&item).unwrap(),
            Some(Key::blob_ref("blobs/00ff", 8))
        );
        item.insert(FILE_STATUS.into(), s(DOOMED));
        assert!(file_is_doomed(&item).unwrap());
        assert_eq!(file_from(&item).unwrap(), f);
        assert_eq!(blob_ref_of(&name_guard_item(&f)).unwrap(), None);
        assert_eq!(
            Key::of(&blob_ref_item(&f)).unwrap(),
            Key::blob_ref("blobs/00ff", 8)
        );
    }

    /// A small file's bytes ride in its item, which says so with schema 2; other file items
    /// stay readable by builds that know schema 1 only.
    #[test]
    fn inline_files_round_trip_as_schema_two() {
        let plain = file_item(&file());
        assert_eq!(plain.get(SCHEMA), Some(&crate::store::dynamo::schema::n(1)));
        assert!(!plain.contains_key(CONTENT));
        let f = PackageFile {
            blob_key: "inline/00ff".into(),
            content: Some(bytes::Bytes::from_static(b"abc")),
            ..file()
        };
        let item = file_item(&f);
        assert_eq!(
            item.get(SCHEMA),
            Some(&crate::store::dynamo::schema::n(INLINE_FILE_SCHEMA))
        );
        assert_eq!(file_from(&item).unwrap(), f);
    }

    #[test]
    fn purge_entries_round_trip() {
        let entry = purge_package_item(42);
        assert_eq!(Key::of(&entry).unwrap(), Key::purge_package(42));
        assert_eq!(purged_package_id(&entry).unwrap(), 42);
        let f = file();
        let entry = purge_file_item(&f);
        assert_eq!(Key::of(&entry).unwrap(), Key::purge_file(8));
        assert_eq!(
            purged_file_key(&entry).unwrap(),
            Key::file(42, &f.file_name, 8)
        );
    }
}
