//! `MetaStore` on one DynamoDB table (on-demand). Keys (PK / SK):
//!
//! | item | PK | SK |
//! |---|---|---|
//! | id counter | `COUNTER` | `<entity>` (atomic `ADD`) |
//! | group | `GROUP#<id>` | `META` (with its package settings) |
//! | group path alias | `GROUPPATH#<path>` | `GROUP` |
//! | project | `PROJECT#<id>` | `META` |
//! | project path alias | `PATH#<full_path>` | `PROJECT` |
//! | user / username alias | `USER#<id>` / `USERNAME#<name>` | `META` / `USER` |
//! | membership | `USER#<id>` | `MEMBER#<group|project>#<target>` |
//! | token / id alias | `TOKEN#<sha256>` / `TOKENID#<id>` | `TOKEN` |
//! | package | `PROJECT#<id>` | `PKG#<name>#<version>` |
//! | package id alias | `PACKAGE#<id>` | `PACKAGE` (project id + package SK) |
//! | file | `PKG#<package_id>` | `FILE#<file_name>#<zero-padded file id>` (newest: one descending query) |
//! | file-name guard | `PKG#<package_id>` | `NAME#<file_name>` (exists while a live file has that name) |
//! | deleted package | `PROJECT#<id>` | `DELETED#<package id>` (moved out of its name/version slot) |
//! | blob reference | `BLOB#<blob key>` | `REF#<file id>` (one per file record naming the blob) |
//! | purge queue | `PURGE` | `PKG#<package id>` / `FILE#<file id>` (pending destruction) |
//! | upload session | `UPLOAD#<session id>` | `SESSION` |
//!
//! Four global secondary indexes serve the lists. Package items carry `LIST_PK` =
//! `LIST#<project id>#<status>` and one sort key per order: `BY_CREATED` =
//! `<created_at ms, 13 digits>#<id, 20 digits>`, `BY_NAME` = `<name>#<version>#<id>`,
//! `BY_VERSION` = `<version>#<id>`; the indexes `by_created`, `by_name` and `by_version` project
//! only the keys plus `name_lc` and `version` (for the name and version filters), so updating a
//! package's other attributes never writes to them. Every character allowed in a name or version
//! sorts after `#`, so these keys sort exactly like the (name, version, id) tuples the SQL store
//! orders by. Project items carry `NS_PK` = `NS#<top-level group>` and `NS_SK` = their full
//! path, indexed by `by_namespace`, so a group's projects (with subgroups) are one Query.
//!
//! Names, versions and file names cannot contain `#`, so the keys are unambiguous. Every
//! lookup is a `GetItem` or a `Query` on a key; nothing here scans. Publishing is one
//! `TransactWriteItems` (package put-or-update + file + name guard), so two concurrent uploads
//! can neither create two packages nor both win a refused duplicate.

use super::{
    IdentityStore, PackageStore, PurgeStore, Record, SettingsStore, StoreError, StoreResult,
    UploadSessionStore,
};
use crate::domain::{
    COUNT_LIMIT, FileName, Group, GroupSettings, Listed, Membership, MembershipTarget, NewFile,
    NewGroup, NewToken, Package, PackageFile, PackageName, PackageOrder, PackageQuery,
    PackageStatus, PackageVersion, Project, Role, Scope, SessionState, StateParts, Timestamp,
    Token, TokenKind, UploadSession, User, Visibility,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType,
    TableStatus, TransactWriteItem, Update,
};
use std::collections::HashMap;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// Rounds of a write transaction that lost a race before giving up.
const TRANSACTION_ATTEMPTS: u32 = 8;
/// Rounds of a batch read whose keys DynamoDB left unprocessed (throttling) before giving up.
const BATCH_GET_ATTEMPTS: u32 = 10;

/// The attribute DynamoDB's TTL reads (epoch seconds), as `template.yaml` names it.
pub const TTL_ATTRIBUTE: &str = "expires_ttl";

/// How long an upload session's record outlives the session.
const SESSION_RECORD_GRACE_SECONDS: i64 = 7 * 24 * 3600;

pub struct DynamoMetaStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("PK".to_string(), s(pk)), ("SK".to_string(), s(sk))])
}

fn get_s(item: &Item, name: &str) -> StoreResult<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(corrupt_item(item, format!("lacks string attribute {name}"))),
    }
}

fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn get_n(item: &Item, name: &str) -> StoreResult<i64> {
    opt_n(item, name).ok_or_else(|| corrupt_item(item, format!("lacks number attribute {name}")))
}

fn opt_n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

fn bad(what: &str) -> StoreError {
    StoreError::corrupt("a DynamoDB item", format!("stored {what} does not parse"))
}

/// `item` (named by its keys) does not decode.
fn corrupt_item(item: &Item, detail: String) -> StoreError {
    let part = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => "?".into(),
    };
    StoreError::corrupt(format!("{}/{}", part("PK"), part("SK")), detail)
}

fn target_sk(target: &MembershipTarget) -> String {
    let (kind, value) = target.to_parts();
    format!("MEMBER#{kind}#{value}")
}

fn target_from_sk(sk: &str) -> Option<MembershipTarget> {
    let rest = sk.strip_prefix("MEMBER#")?;
    let (kind, value) = rest.split_once('#')?;
    MembershipTarget::from_parts(kind, value)
}

fn group_from(item: &Item) -> StoreResult<Group> {
    Ok(Group {
        id: get_n(item, "id")?,
        path: get_s(item, "path")?,
        parent_id: opt_n(item, "parent_id"),
        created_at: Timestamp::from_millis(get_n(item, "created_at")?),
    })
}

fn project_from(item: &Item) -> StoreResult<Project> {
    Ok(Project {
        id: get_n(item, "id")?,
        name: get_s(item, "name")?,
        path_with_namespace: get_s(item, "path")?,
        namespace_id: get_n(item, "namespace_id")?,
        visibility: get_s(item, "visibility")?
            .parse::<Visibility>()
            .map_err(|_| bad("visibility"))?,
        created_at: Timestamp::from_millis(get_n(item, "created_at")?),
    })
}

fn token_from(item: &Item) -> StoreResult<Token> {
    let sha = hex::decode(get_s(item, "sha256")?).map_err(|_| bad("token hash"))?;
    let target = match (opt_s(item, "target_kind"), opt_s(item, "target")) {
        (Some(kind), Some(value)) => MembershipTarget::from_parts(&kind, &value),
        _ => None,
    };
    Ok(Token {
        id: get_n(item, "id")?,
        kind: get_s(item, "kind")?
            .parse::<TokenKind>()
            .map_err(|_| bad("token kind"))?,
        sha256: sha.try_into().map_err(|_| bad("token hash"))?,
        scopes: Scope::parse_list(&get_s(item, "scopes")?).map_err(|_| bad("scopes"))?,
        user_id: opt_n(item, "user_id"),
        target,
        expires_at: opt_n(item, "expires_at").map(Timestamp::from_millis),
        revoked: get_bool(item, "revoked"),
        created_at: Timestamp::from_millis(get_n(item, "created_at")?),
    })
}

fn package_from(item: &Item) -> StoreResult<Package> {
    Ok(Package {
        id: get_n(item, "id")?,
        project_id: get_n(item, "project_id")?,
        name: PackageName::parse(&get_s(item, "name")?).map_err(|_| bad("package name"))?,
        version: PackageVersion::parse(&get_s(item, "version")?).map_err(|_| bad("version"))?,
        status: get_s(item, "status")?
            .parse::<PackageStatus>()
            .map_err(|_| bad("status"))?,
        created_at: Timestamp::from_millis(get_n(item, "created_at")?),
        updated_at: Timestamp::from_millis(get_n(item, "updated_at")?),
        last_downloaded_at: opt_n(item, "last_downloaded_at").map(Timestamp::from_millis),
    })
}

fn file_from(item: &Item) -> StoreResult<PackageFile> {
    Ok(PackageFile {
        id: get_n(item, "id")?,
        package_id: get_n(item, "package_id")?,
        file_name: FileName::from_stored(get_s(item, "file_name")?),
        size: get_n(item, "size")? as u64,
        sha256: get_s(item, "sha256")?,
        blob_key: get_s(item, "blob_key")?,
        created_at: Timestamp::from_millis(get_n(item, "created_at")?),
        updated_at: Timestamp::from_millis(get_n(item, "updated_at")?),
    })
}

fn package_sk(name: &PackageName, version: &PackageVersion) -> String {
    format!("PKG#{}#{}", name.as_str(), version.as_str())
}

fn list_pk(project_id: i64, status: PackageStatus) -> String {
    format!("LIST#{project_id}#{}", status.as_str())
}

/// The index attributes of a package item (see the file header).
fn list_attributes(p: &Package) -> [(&'static str, AttributeValue); 5] {
    [
        ("LIST_PK", s(list_pk(p.project_id, p.status))),
        (
            "BY_CREATED",
            s(format!("{:013}#{:020}", p.created_at.millis(), p.id)),
        ),
        (
            "BY_NAME",
            s(format!(
                "{}#{}#{:020}",
                p.name.as_str(),
                p.version.as_str(),
                p.id
            )),
        ),
        (
            "BY_VERSION",
            s(format!("{}#{:020}", p.version.as_str(), p.id)),
        ),
        ("name_lc", s(p.name.as_str().to_lowercase())),
    ]
}

/// The whole item of a package stored under `sk`.
fn package_item(p: &Package, sk: String) -> Item {
    let mut item = key(format!("PROJECT#{}", p.project_id), sk);
    item.insert("id".into(), n(p.id));
    item.insert("project_id".into(), n(p.project_id));
    item.insert("name".into(), s(p.name.as_str()));
    item.insert("version".into(), s(p.version.as_str()));
    item.insert("status".into(), s(p.status.as_str()));
    item.insert("created_at".into(), n(p.created_at.millis()));
    item.insert("updated_at".into(), n(p.updated_at.millis()));
    if let Some(at) = p.last_downloaded_at {
        item.insert("last_downloaded_at".into(), n(at.millis()));
    }
    for (name, value) in list_attributes(p) {
        item.insert(name.into(), value);
    }
    item
}

fn session_key(id: &str) -> Item {
    key(format!("UPLOAD#{id}"), "SESSION")
}

/// The optional state attributes of a session item, as `StateParts` fields.
const STATE_ATTRIBUTES: [&str; 5] = [
    "package_id",
    "file_id",
    "refused_status",
    "refused_message",
    "claim_until",
];

fn state_values(p: &StateParts) -> [Option<AttributeValue>; 5] {
    [
        p.package_id.map(n),
        p.file_id.map(n),
        p.legacy_status.map(n),
        p.reason.clone().map(s),
        p.until.map(n),
    ]
}

fn session_from(item: &Item) -> StoreResult<UploadSession> {
    let state = SessionState::from_parts(StateParts {
        kind: get_s(item, "state")?,
        package_id: opt_n(item, "package_id"),
        file_id: opt_n(item, "file_id"),
        legacy_status: opt_n(item, "refused_status"),
        reason: opt_s(item, "refused_message"),
        until: opt_n(item, "claim_until"),
    })
    .ok_or_else(|| bad("session state"))?;
    Ok(UploadSession {
        id: get_s(item, "id")?,
        project_id: get_n(item, "project_id")?,
        name: PackageName::parse(&get_s(item, "name")?).map_err(|_| bad("package name"))?,
        version: PackageVersion::parse(&get_s(item, "version")?).map_err(|_| bad("version"))?,
        file_name: FileName::from_stored(get_s(item, "file_name")?),
        package_status: opt_s(item, "package_status")
            .map(|v| v.parse::<PackageStatus>())
            .transpose()
            .map_err(|_| bad("package status"))?,
        size: get_n(item, "size")? as u64,
        sha256: opt_s(item, "sha256"),
        staged_key: get_s(item, "staged_key")?,
        multipart_id: opt_s(item, "multipart_id"),
        part_size: get_n(item, "part_size")? as u64,
        token_id: opt_n(item, "token_id"),
        state,
        created_at: Timestamp::from_millis(get_n(item, "created_at")?),
        expires_at: Timestamp::from_millis(get_n(item, "expires_at")?),
    })
}

fn deleted_sk(package_id: i64) -> String {
    format!("DELETED#{package_id:020}")
}

fn file_sk(file_name: &FileName, file_id: i64) -> String {
    format!("FILE#{}#{file_id:020}", file_name.as_str())
}

fn blob_ref_key(file: &PackageFile) -> Item {
    key(
        format!("BLOB#{}", file.blob_key),
        format!("REF#{:020}", file.id),
    )
}

const DOOMED: &str = "pending_destruction";

/// The global secondary indexes, as `create_table` and `template.yaml` declare them:
/// (name, partition key, sort key, attributes projected besides the keys; `None` = all).
pub const INDEXES: [(&str, &str, &str, Option<&[&str]>); 4] = [
    (
        "by_created",
        "LIST_PK",
        "BY_CREATED",
        Some(&["name_lc", "version"]),
    ),
    (
        "by_name",
        "LIST_PK",
        "BY_NAME",
        Some(&["name_lc", "version"]),
    ),
    (
        "by_version",
        "LIST_PK",
        "BY_VERSION",
        Some(&["name_lc", "version"]),
    ),
    ("by_namespace", "NS_PK", "NS_SK", None),
];

/// Which index serves an order, and the attribute it sorts by.
fn index_for(order: PackageOrder) -> (&'static str, &'static str) {
    match order {
        PackageOrder::CreatedAt | PackageOrder::Type | PackageOrder::ProjectPath => {
            ("by_created", "BY_CREATED")
        }
        PackageOrder::Name => ("by_name", "BY_NAME"),
        PackageOrder::Version => ("by_version", "BY_VERSION"),
    }
}

/// One row of an index read: its sort key, the project's path (for `project_path` order) and
/// the table key of the package item.
struct IndexRow {
    sort: (String, String),
    table_key: Item,
}

fn conditional_failed<E>(e: &SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

/// Indexes of the transaction items whose condition failed.
fn failed_conditions(e: &SdkError<TransactWriteItemsError>) -> Option<Vec<usize>> {
    let TransactWriteItemsError::TransactionCanceledException(c) = e.as_service_error()? else {
        return None;
    };
    Some(
        c.cancellation_reasons()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
            .map(|(i, _)| i)
            .collect(),
    )
}

impl DynamoMetaStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A DynamoDB client from the environment's AWS configuration (`AWS_ENDPOINT_URL_DYNAMODB`
    /// or `endpoint` for emulators).
    pub fn client_from(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
        let mut config = aws_sdk_dynamodb::config::Builder::from(sdk);
        if let Some(url) = endpoint {
            config = config.endpoint_url(url);
        }
        Client::from_conf(config.build())
    }

    /// Create the table (as the SAM template does) and wait until it is ACTIVE. For tests and
    /// for `depot admin` against an emulator; deployed stacks get the table from the template.
    pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(StoreError::backend)
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(StoreError::backend)
        };
        let mut create = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("PK", KeyType::Hash)?)
            .key_schema(key("SK", KeyType::Range)?);
        let mut attributes = vec!["PK", "SK"];
        for (name, pk, sk, included) in INDEXES {
            let projection = match included {
                Some(attrs) => Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .set_non_key_attributes(Some(attrs.iter().map(|a| a.to_string()).collect())),
                None => Projection::builder().projection_type(ProjectionType::All),
            };
            create = create.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(key(pk, KeyType::Hash)?)
                    .key_schema(key(sk, KeyType::Range)?)
                    .projection(projection.build())
                    .build()
                    .map_err(StoreError::backend)?,
            );
            for a in [pk, sk] {
                if !attributes.contains(&a) {
                    attributes.push(a);
                }
            }
        }
        for a in attributes {
            create = create.attribute_definitions(attr(a)?);
        }
        create.send().await.map_err(StoreError::backend)?;
        for _ in 0..100 {
            let out = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(StoreError::backend)?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(StoreError::Misconfigured(format!(
            "table {table} did not become ACTIVE"
        )))
    }

    async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(out.item)
    }

    /// The next id of `entity` (1, 2, ...), from an atomic counter.
    async fn next_id(&self, entity: &str) -> StoreResult<i64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key("COUNTER", entity)))
            .update_expression("ADD #v :one")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(StoreError::backend)?;
        out.attributes()
            .map(|a| get_n(a, "value"))
            .unwrap_or_else(|| Err(bad("counter")))
    }

    fn put(&self, item: Item, condition: Option<&str>) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(StoreError::backend)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Write `items` all or nothing; `AlreadyExists` (`what` at `key`) if a condition failed.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        what: Record,
        key: &str,
    ) -> StoreResult<()> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if failed_conditions(&e).is_some_and(|f| !f.is_empty()) => {
                Err(StoreError::already_exists(what, key))
            }
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    /// Put an item and its unique alias together; `AlreadyExists` (`what` named by the alias)
    /// if the alias is taken.
    async fn put_with_alias(&self, item: Item, alias: Item, what: Record) -> StoreResult<()> {
        let name = get_s(&alias, "PK")?;
        let items = vec![
            self.put(alias, Some("attribute_not_exists(PK)"))?,
            self.put(item, Some("attribute_not_exists(PK)"))?,
        ];
        self.transact(items, what, &name).await
    }

    /// Create an entity `<entity_pk>#<id>`/`META` with a fresh id of `entity`, unique under its
    /// alias item (`alias_pk`/`alias_sk`, which records the id); `fill` adds the entity's own
    /// attributes. `AlreadyExists` if the alias is taken (checked first, so no id is spent,
    /// and again atomically when both items are written).
    async fn create_unique(
        &self,
        what: Record,
        entity: &str,
        entity_pk: &str,
        alias_pk: String,
        alias_sk: &str,
        fill: impl FnOnce(&mut Item),
    ) -> StoreResult<i64> {
        if self.get(alias_pk.clone(), alias_sk).await?.is_some() {
            return Err(StoreError::already_exists(what, alias_pk));
        }
        let id = self.next_id(entity).await?;
        let mut item = key(format!("{entity_pk}#{id}"), "META");
        item.insert("id".into(), n(id));
        fill(&mut item);
        let mut alias = key(alias_pk, alias_sk);
        alias.insert("id".into(), n(id));
        self.put_with_alias(item, alias, what).await?;
        Ok(id)
    }

    async fn by_alias(&self, pk: String, sk: &str, entity_pk: &str) -> StoreResult<Option<Item>> {
        let Some(alias) = self.get(pk, sk).await? else {
            return Ok(None);
        };
        self.get(format!("{entity_pk}#{}", get_n(&alias, "id")?), "META")
            .await
    }

    async fn live_package(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
    ) -> StoreResult<Option<Package>> {
        let item = self
            .get(format!("PROJECT#{project_id}"), &package_sk(name, version))
            .await?;
        item.map(|i| package_from(&i)).transpose()
    }

    /// Up to `want` index rows of `project`'s packages that match `query`, in the query's
    /// order, and whether the index has no more (`true`: every match was read).
    ///
    /// The status is part of the index partition key and the order is its sort key. Name words
    /// (a case-insensitive substring match) and the version cannot be key conditions, so they
    /// are a `FilterExpression` on the projected `name_lc` and `version`: a filtered list reads
    /// the project's index rows (about 100 bytes each, so about 10,000 per 1 MB request) until it
    /// has `want` matches, which bounds it by the size of one project, never the registry's.
    async fn index_rows(
        &self,
        project: &Project,
        query: &PackageQuery,
        want: usize,
    ) -> StoreResult<(Vec<IndexRow>, bool)> {
        let (index, sort_attr) = index_for(query.order);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("LIST_PK = :pk")
            .expression_attribute_values(":pk", s(list_pk(project.id, query.status)))
            .scan_index_forward(!query.descending);
        let mut filters = Vec::new();
        for (i, word) in query.name_words.iter().enumerate() {
            filters.push(format!("contains(name_lc, :w{i})"));
            request = request.expression_attribute_values(format!(":w{i}"), s(word));
        }
        if let Some(version) = &query.version {
            filters.push("#ver = :ver".to_string());
            request = request
                .expression_attribute_names("#ver", "version")
                .expression_attribute_values(":ver", s(version));
        }
        if !filters.is_empty() {
            request = request.filter_expression(filters.join(" AND "));
        }
        let path = match query.order {
            PackageOrder::ProjectPath => project.path_with_namespace.clone(),
            _ => String::new(),
        };
        let mut rows = Vec::new();
        let mut start = None;
        loop {
            let page = request
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::backend)?;
            for item in page.items() {
                if rows.len() == want {
                    return Ok((rows, false));
                }
                rows.push(IndexRow {
                    sort: (path.clone(), get_s(item, sort_attr)?),
                    table_key: key(get_s(item, "PK")?, get_s(item, "SK")?),
                });
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok((rows, true));
            }
            if rows.len() == want {
                return Ok((rows, false));
            }
        }
    }

    /// The items at `keys` (at most 100), in the order of `keys`; missing ones are left out.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        let mut pending = keys.clone();
        for attempt in 0..BATCH_GET_ATTEMPTS {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(StoreError::backend)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(StoreError::backend)?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                found.insert((get_s(item, "PK")?, get_s(item, "SK")?), item.clone());
            }
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if pending.is_empty() {
                break;
            }
            // Throttled: back off before asking for the rest.
            tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
        }
        if !pending.is_empty() {
            return Err(StoreError::Contention {
                what: "DynamoDB left keys of a batch read unprocessed".into(),
                attempts: BATCH_GET_ATTEMPTS,
            });
        }
        Ok(keys
            .iter()
            .filter_map(|k| found.remove(&(get_s(k, "PK").ok()?, get_s(k, "SK").ok()?)))
            .collect())
    }

    /// Files of a package, newest first; `name`: only those with that name; `doomed`: those
    /// pending destruction too.
    async fn files_newest_first(
        &self,
        package_id: i64,
        name: Option<&FileName>,
        doomed: bool,
        limit: Option<usize>,
    ) -> StoreResult<Vec<PackageFile>> {
        let prefix = match name {
            Some(name) => format!("FILE#{}#", name.as_str()),
            None => "FILE#".to_string(),
        };
        let mut files = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(format!("PKG#{package_id}")))
                .expression_attribute_values(":prefix", s(&prefix))
                .scan_index_forward(false)
                .set_limit(limit.map(|l| l.clamp(1, 100) as i32))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(StoreError::backend)?;
            for item in page.items() {
                if doomed || opt_s(item, "status").as_deref() != Some(DOOMED) {
                    files.push(file_from(item)?);
                    if limit.is_some_and(|l| files.len() >= l) {
                        return Ok(files);
                    }
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(files);
            }
        }
    }

    async fn newest_file_of(
        &self,
        package_id: i64,
        file_name: &FileName,
    ) -> StoreResult<Option<PackageFile>> {
        Ok(self
            .files_newest_first(package_id, Some(file_name), false, Some(1))
            .await?
            .into_iter()
            .next())
    }

    /// Every item `request` (a Query) finds, following `LastEvaluatedKey` page after page.
    async fn query_all(
        &self,
        request: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = request
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::backend)?;
            items.extend(page.items().iter().cloned());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Set a session's state where `condition` holds (with its own `values`); the session
    /// after, or `None` if the condition did not hold.
    async fn set_session_state(
        &self,
        id: &str,
        state: &SessionState,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Option<UploadSession>> {
        let parts = state.to_parts();
        let mut set = vec!["#st = :kind".to_string()];
        let mut remove = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(id)))
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":kind", s(&parts.kind));
        for (name, value) in STATE_ATTRIBUTES.iter().zip(state_values(&parts)) {
            match value {
                Some(v) => {
                    set.push(format!("{name} = :{name}"));
                    request = request.expression_attribute_values(format!(":{name}"), v);
                }
                None => remove.push(name.to_string()),
            }
        }
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request
            .update_expression(update)
            .condition_expression(format!("attribute_exists(PK) AND ({condition})"))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
        {
            Ok(out) => out.attributes().map(session_from).transpose(),
            Err(e) if conditional_failed(&e) => Ok(None),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    /// The queue entries under `PURGE` starting with `prefix`, at most `limit`.
    async fn purge_queue(&self, prefix: &str, limit: usize) -> StoreResult<Vec<Item>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s("PURGE"))
            .expression_attribute_values(":prefix", s(prefix))
            .limit(limit.clamp(1, 1000) as i32)
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(out.items().to_vec())
    }

    fn delete(&self, key: Item, condition: Option<(&str, Item)>) -> StoreResult<TransactWriteItem> {
        let mut delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key));
        if let Some((expression, values)) = condition {
            delete = delete
                .condition_expression(expression)
                .set_expression_attribute_values(Some(values));
        }
        Ok(TransactWriteItem::builder()
            .delete(delete.build().map_err(StoreError::backend)?)
            .build())
    }

    /// Delete `keys` in transactions of up to 100 items.
    async fn delete_all(&self, keys: Vec<Item>) -> StoreResult<()> {
        let mut keys = keys.into_iter().peekable();
        while keys.peek().is_some() {
            let batch = keys
                .by_ref()
                .take(100)
                .map(|k| self.delete(k, None))
                .collect::<StoreResult<Vec<_>>>()?;
            // Deletes carry no condition: nothing here can fail one.
            self.transact(batch, Record::Package, "purged items")
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl IdentityStore for DynamoMetaStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s("COUNTER"))
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(out.items().is_empty())
    }

    async fn create_group(&self, group: NewGroup) -> StoreResult<Group> {
        let NewGroup {
            path,
            parent_id,
            created_at: now,
        } = group;
        let id = self
            .create_unique(
                Record::Group,
                "group",
                "GROUP",
                format!("GROUPPATH#{path}"),
                "GROUP",
                |item| {
                    item.insert("path".into(), s(&path));
                    item.insert("created_at".into(), n(now.millis()));
                    if let Some(p) = parent_id {
                        item.insert("parent_id".into(), n(p));
                    }
                },
            )
            .await?;
        Ok(Group {
            id,
            path,
            parent_id,
            created_at: now,
        })
    }

    async fn group_by_path(&self, path: &str) -> StoreResult<Option<Group>> {
        self.by_alias(format!("GROUPPATH#{path}"), "GROUP", "GROUP")
            .await?
            .map(|i| group_from(&i))
            .transpose()
    }

    async fn group_by_id(&self, id: i64) -> StoreResult<Option<Group>> {
        self.get(format!("GROUP#{id}"), "META")
            .await?
            .map(|i| group_from(&i))
            .transpose()
    }

    async fn create_project(
        &self,
        group: &Group,
        name: &str,
        visibility: Visibility,
        now: Timestamp,
    ) -> StoreResult<Project> {
        let full_path = format!("{}/{}", group.path, name);
        let id = self
            .create_unique(
                Record::Project,
                "project",
                "PROJECT",
                format!("PATH#{full_path}"),
                "PROJECT",
                |item| {
                    item.insert("name".into(), s(name));
                    item.insert("path".into(), s(&full_path));
                    item.insert("namespace_id".into(), n(group.id));
                    item.insert("visibility".into(), s(visibility.as_str()));
                    item.insert("created_at".into(), n(now.millis()));
                    let top = full_path.split('/').next().unwrap_or_default();
                    item.insert("NS_PK".into(), s(format!("NS#{top}")));
                    item.insert("NS_SK".into(), s(&full_path));
                },
            )
            .await?;
        Ok(Project {
            id,
            name: name.to_string(),
            path_with_namespace: full_path,
            namespace_id: group.id,
            visibility,
            created_at: now,
        })
    }

    async fn project_by_id(&self, id: i64) -> StoreResult<Option<Project>> {
        self.get(format!("PROJECT#{id}"), "META")
            .await?
            .map(|i| project_from(&i))
            .transpose()
    }

    async fn project_by_path(&self, path: &str) -> StoreResult<Option<Project>> {
        self.by_alias(format!("PATH#{path}"), "PROJECT", "PROJECT")
            .await?
            .map(|i| project_from(&i))
            .transpose()
    }

    async fn projects_in_group(&self, group: &Group, subgroups: bool) -> StoreResult<Vec<Project>> {
        let top = group.path.split('/').next().unwrap_or_default();
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("by_namespace")
            .key_condition_expression("NS_PK = :pk AND begins_with(NS_SK, :prefix)")
            .expression_attribute_values(":pk", s(format!("NS#{top}")))
            .expression_attribute_values(":prefix", s(format!("{}/", group.path)));
        let mut projects = Vec::new();
        for item in self.query_all(request).await? {
            let project = project_from(&item)?;
            if subgroups || project.namespace_id == group.id {
                projects.push(project);
            }
        }
        projects.sort_by_key(|p| p.id);
        Ok(projects)
    }

    async fn create_user(&self, username: &str, now: Timestamp) -> StoreResult<User> {
        let id = self
            .create_unique(
                Record::User,
                "user",
                "USER",
                format!("USERNAME#{username}"),
                "USER",
                |item| {
                    item.insert("username".into(), s(username));
                    item.insert("created_at".into(), n(now.millis()));
                },
            )
            .await?;
        Ok(User {
            id,
            username: username.to_string(),
            created_at: now,
        })
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let Some(item) = self
            .by_alias(format!("USERNAME#{username}"), "USER", "USER")
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(User {
            id: get_n(&item, "id")?,
            username: get_s(&item, "username")?,
            created_at: Timestamp::from_millis(get_n(&item, "created_at")?),
        }))
    }

    async fn set_membership(
        &self,
        user_id: i64,
        target: &MembershipTarget,
        role: Role,
    ) -> StoreResult<Membership> {
        let mut item = key(format!("USER#{user_id}"), target_sk(target));
        item.insert("access_level".into(), n(role.access_level()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(Membership {
            user_id,
            target: target.clone(),
            role,
        })
    }

    async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<Membership>> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :m)")
            .expression_attribute_values(":pk", s(format!("USER#{user_id}")))
            .expression_attribute_values(":m", s("MEMBER#"))
            .consistent_read(true);
        self.query_all(request)
            .await?
            .iter()
            .map(|item| {
                let target =
                    target_from_sk(&get_s(item, "SK")?).ok_or_else(|| bad("membership"))?;
                let role = Role::from_access_level(get_n(item, "access_level")?)
                    .ok_or_else(|| bad("role"))?;
                Ok(Membership {
                    user_id,
                    target,
                    role,
                })
            })
            .collect()
    }

    async fn create_token(&self, token: NewToken, now: Timestamp) -> StoreResult<Token> {
        let id = self.next_id("token").await?;
        let sha = hex::encode(token.sha256);
        let mut item = key(format!("TOKEN#{sha}"), "TOKEN");
        item.insert("id".into(), n(id));
        item.insert("kind".into(), s(token.kind.as_str()));
        item.insert("sha256".into(), s(&sha));
        item.insert("scopes".into(), s(Scope::join(&token.scopes)));
        item.insert("revoked".into(), AttributeValue::Bool(false));
        item.insert("created_at".into(), n(now.millis()));
        if let Some(u) = token.user_id {
            item.insert("user_id".into(), n(u));
        }
        if let Some(at) = token.expires_at {
            item.insert("expires_at".into(), n(at.millis()));
        }
        if let Some(t) = &token.target {
            let (kind, value) = t.to_parts();
            item.insert("target_kind".into(), s(kind));
            item.insert("target".into(), s(value));
        }
        let mut alias = key(format!("TOKENID#{id}"), "TOKEN");
        alias.insert("sha256".into(), s(&sha));
        self.put_with_alias(item, alias, Record::Token).await?;
        Ok(token.into_token(id, now))
    }

    async fn token_by_sha256(&self, sha256: &[u8; 32]) -> StoreResult<Option<Token>> {
        self.get(format!("TOKEN#{}", hex::encode(sha256)), "TOKEN")
            .await?
            .map(|i| token_from(&i))
            .transpose()
    }

    async fn token_by_id(&self, id: i64) -> StoreResult<Option<Token>> {
        let Some(alias) = self.get(format!("TOKENID#{id}"), "TOKEN").await? else {
            return Ok(None);
        };
        self.get(format!("TOKEN#{}", get_s(&alias, "sha256")?), "TOKEN")
            .await?
            .map(|i| token_from(&i))
            .transpose()
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<Token> {
        let alias = self
            .get(format!("TOKENID#{id}"), "TOKEN")
            .await?
            .ok_or_else(|| StoreError::not_found(Record::Token, id))?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                format!("TOKEN#{}", get_s(&alias, "sha256")?),
                "TOKEN",
            )))
            .update_expression("SET revoked = :t")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| {
                if conditional_failed(&e) {
                    StoreError::not_found(Record::Token, id)
                } else {
                    StoreError::backend(e)
                }
            })?;
        token_from(out.attributes().ok_or_else(|| bad("token"))?)
    }
}

#[async_trait]
impl SettingsStore for DynamoMetaStore {
    async fn group_settings(&self, group_id: i64) -> StoreResult<Option<GroupSettings>> {
        let group = format!("GROUP#{group_id}");
        let item = self
            .get(group.clone(), "META")
            .await?
            .ok_or_else(|| StoreError::not_found(Record::Group, &group))?;
        // Settings are written as a whole, so both attributes are there or neither is.
        let Some(AttributeValue::Bool(allowed)) = item.get("generic_duplicates_allowed") else {
            return Ok(None);
        };
        Ok(Some(GroupSettings {
            generic_duplicates_allowed: *allowed,
            generic_duplicate_exception_regex: opt_s(&item, "generic_duplicate_exception_regex")
                .unwrap_or_default(),
        }))
    }

    async fn set_group_settings(
        &self,
        group_id: i64,
        settings: &GroupSettings,
    ) -> StoreResult<GroupSettings> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("GROUP#{group_id}"), "META")))
            .update_expression(
                "SET generic_duplicates_allowed = :a, generic_duplicate_exception_regex = :r",
            )
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(
                ":a",
                AttributeValue::Bool(settings.generic_duplicates_allowed),
            )
            .expression_attribute_values(":r", s(&settings.generic_duplicate_exception_regex))
            .send()
            .await
            .map_err(|e| {
                if conditional_failed(&e) {
                    StoreError::not_found(Record::Group, format!("GROUP#{group_id}"))
                } else {
                    StoreError::backend(e)
                }
            })?;
        Ok(settings.clone())
    }
}

#[async_trait]
impl PackageStore for DynamoMetaStore {
    async fn live_file_exists(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<bool> {
        let Some(package) = self.live_package(project_id, name, version).await? else {
            return Ok(false);
        };
        Ok(self
            .get(
                format!("PKG#{}", package.id),
                &format!("NAME#{}", file_name.as_str()),
            )
            .await?
            .is_some())
    }

    async fn publish(&self, f: NewFile) -> StoreResult<(Package, PackageFile)> {
        let file_id = self.next_id("package_file").await?;
        let now = f.now.millis();
        // A concurrent publish may create the package between our read and our write; the
        // transaction's condition catches that and we go round again with the package it made.
        for _ in 0..TRANSACTION_ATTEMPTS {
            let existing = self.live_package(f.project_id, &f.name, &f.version).await?;
            let mut new_alias = None;
            let (package, package_write) = match existing {
                Some(mut p) => {
                    p.status = f.status.unwrap_or(p.status);
                    p.updated_at = f.now;
                    let update = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(
                            format!("PROJECT#{}", f.project_id),
                            package_sk(&f.name, &f.version),
                        )))
                        .update_expression("SET #s = :s, updated_at = :u, LIST_PK = :l")
                        .condition_expression("attribute_exists(PK) AND id = :id")
                        .expression_attribute_names("#s", "status")
                        .expression_attribute_values(":s", s(p.status.as_str()))
                        .expression_attribute_values(":l", s(list_pk(p.project_id, p.status)))
                        .expression_attribute_values(":u", n(now))
                        .expression_attribute_values(":id", n(p.id))
                        .build()
                        .map_err(StoreError::backend)?;
                    (p, TransactWriteItem::builder().update(update).build())
                }
                None => {
                    let id = self.next_id("package").await?;
                    let p = Package {
                        id,
                        project_id: f.project_id,
                        name: f.name.clone(),
                        version: f.version.clone(),
                        status: f.status.unwrap_or(PackageStatus::Default),
                        created_at: f.now,
                        updated_at: f.now,
                        last_downloaded_at: None,
                    };
                    let item = package_item(&p, package_sk(&f.name, &f.version));
                    let mut alias = key(format!("PACKAGE#{id}"), "PACKAGE");
                    alias.insert("project_id".into(), n(f.project_id));
                    alias.insert("sk".into(), s(package_sk(&f.name, &f.version)));
                    new_alias = Some(self.put(alias, None)?);
                    (p, self.put(item, Some("attribute_not_exists(PK)"))?)
                }
            };
            let file = PackageFile {
                id: file_id,
                package_id: package.id,
                file_name: f.file_name.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
                blob_key: f.blob_key.clone(),
                created_at: f.now,
                updated_at: f.now,
            };
            let mut file_item = key(
                format!("PKG#{}", package.id),
                file_sk(&f.file_name, file_id),
            );
            file_item.insert("id".into(), n(file_id));
            file_item.insert("package_id".into(), n(package.id));
            file_item.insert("file_name".into(), s(f.file_name.as_str()));
            file_item.insert("size".into(), n(f.size as i64));
            file_item.insert("sha256".into(), s(&f.sha256));
            file_item.insert("blob_key".into(), s(&f.blob_key));
            file_item.insert("created_at".into(), n(now));
            file_item.insert("updated_at".into(), n(now));
            let mut guard = key(
                format!("PKG#{}", package.id),
                format!("NAME#{}", f.file_name.as_str()),
            );
            guard.insert("newest_file_id".into(), n(file_id));
            let guard_condition = f.refuse_duplicate.then_some("attribute_not_exists(PK)");
            // Condition indexes below: 0 = the package, 2 = the name guard.
            let mut items = vec![
                package_write,
                self.put(file_item, None)?,
                self.put(guard, guard_condition)?,
            ];
            items.extend(new_alias);
            items.push(self.put(blob_ref_key(&file), None)?);
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => return Ok((package, file)),
                Err(e) => match failed_conditions(&e) {
                    Some(failed) if failed.contains(&2) => {
                        return Err(StoreError::already_exists(
                            Record::File,
                            format!("{}/{}", package.id, file.file_name.as_str()),
                        ));
                    }
                    Some(failed) if failed.contains(&0) => continue,
                    // Transactions touching the same items at once are cancelled with a
                    // conflict; go round again.
                    Some(_) => {
                        tokio::time::sleep(Duration::from_millis(5 + rand::random::<u64>() % 20))
                            .await;
                        continue;
                    }
                    None => return Err(StoreError::backend(e)),
                },
            }
        }
        Err(StoreError::Contention {
            what: "publish kept conflicting with concurrent writes".into(),
            attempts: TRANSACTION_ATTEMPTS,
        })
    }

    async fn newest_file(
        &self,
        project_id: i64,
        name: &PackageName,
        version: &PackageVersion,
        file_name: &FileName,
    ) -> StoreResult<Option<(Package, PackageFile)>> {
        let Some(package) = self.live_package(project_id, name, version).await? else {
            return Ok(None);
        };
        Ok(self
            .newest_file_of(package.id, file_name)
            .await?
            .map(|f| (package, f)))
    }

    async fn mark_downloaded(&self, package: &Package, at: Timestamp) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                format!("PROJECT#{}", package.project_id),
                package_sk(&package.name, &package.version),
            )))
            .update_expression("SET last_downloaded_at = :t")
            .condition_expression("attribute_exists(PK) AND id = :id")
            .expression_attribute_values(":t", n(at.millis()))
            .expression_attribute_values(":id", n(package.id))
            .send()
            .await
            .map(|_| ())
            // The package went away meanwhile: nothing to record.
            .or_else(|e| {
                if conditional_failed(&e) {
                    Ok(())
                } else {
                    Err(StoreError::backend(e))
                }
            })
    }

    async fn package_by_id(&self, id: i64) -> StoreResult<Option<Package>> {
        let Some(alias) = self.get(format!("PACKAGE#{id}"), "PACKAGE").await? else {
            return Ok(None);
        };
        let item = self
            .get(
                format!("PROJECT#{}", get_n(&alias, "project_id")?),
                &get_s(&alias, "sk")?,
            )
            .await?;
        // The slot may hold a newer package of the same name and version by now.
        Ok(item
            .map(|i| package_from(&i))
            .transpose()?
            .filter(|p| p.id == id))
    }

    async fn list_packages(
        &self,
        projects: &[Project],
        query: &PackageQuery,
    ) -> StoreResult<Listed<Package>> {
        if projects.is_empty() || !query.satisfiable {
            return Ok(Listed::empty());
        }
        let offset = query.page.offset() as usize;
        let per_page = query.page.per_page as usize;
        // Enough rows for this page plus one (is there a next page?), and enough to count up
        // to the limit. Each project's index is read in order, so the page is among the first
        // `page_need` rows of each; a group list merges one read per project.
        let page_need = offset + per_page + 1;
        let count_need = COUNT_LIMIT as usize + 1;
        let mut rows = Vec::new();
        let mut every_row_read = true;
        for project in projects {
            let want = page_need.max(count_need.saturating_sub(rows.len()));
            let (more, done) = self.index_rows(project, query, want).await?;
            rows.extend(more);
            every_row_read &= done;
        }
        if projects.len() > 1 {
            rows.sort_by(|a, b| {
                let order = a.sort.cmp(&b.sort);
                if query.descending {
                    order.reverse()
                } else {
                    order
                }
            });
        }
        let counted = rows.len();
        let keys: Vec<Item> = rows
            .into_iter()
            .skip(offset)
            .take(per_page)
            .map(|r| r.table_key)
            .collect();
        let mut items = Vec::with_capacity(keys.len());
        for item in self.batch_get(keys).await? {
            let package = package_from(&item)?;
            // Indexes trail the table by a moment: drop a row whose package changed since.
            if query.matches(&package) {
                items.push(package);
            }
        }
        Ok(Listed {
            items,
            total: (every_row_read && counted <= COUNT_LIMIT as usize).then_some(counted as u64),
            has_next: counted > offset + per_page,
        })
    }

    async fn files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>> {
        self.files_newest_first(package_id, None, false, None).await
    }

    async fn delete_package(&self, package: &Package, now: Timestamp) -> StoreResult<()> {
        // Move the package out of its name/version slot (so a new one may take it), keep it as
        // a deleted item (listed with status=pending_destruction) and queue it for the purge,
        // in one transaction.
        let mut doomed = package.clone();
        doomed.status = PackageStatus::PendingDestruction;
        doomed.updated_at = now;
        let live_key = key(
            format!("PROJECT#{}", package.project_id),
            package_sk(&package.name, &package.version),
        );
        let alias = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("PACKAGE#{}", package.id), "PACKAGE")))
            .update_expression("SET sk = :sk")
            .expression_attribute_values(":sk", s(deleted_sk(package.id)))
            .build()
            .map_err(StoreError::backend)?;
        let mut queued = key("PURGE", format!("PKG#{:020}", package.id));
        queued.insert("package_id".into(), n(package.id));
        let items = vec![
            self.delete(
                live_key,
                Some((
                    "id = :id",
                    HashMap::from([(":id".to_string(), n(package.id))]),
                )),
            )?,
            self.put(package_item(&doomed, deleted_sk(package.id)), None)?,
            TransactWriteItem::builder().update(alias).build(),
            self.put(queued, None)?,
        ];
        match self.transact(items, Record::Package, "").await {
            Err(StoreError::AlreadyExists { .. }) => {
                Err(StoreError::not_found(Record::Package, package.id))
            }
            other => other,
        }
    }

    async fn delete_file(&self, file: &PackageFile, now: Timestamp) -> StoreResult<()> {
        let file_key = key(
            format!("PKG#{}", file.package_id),
            file_sk(&file.file_name, file.id),
        );
        for _ in 0..TRANSACTION_ATTEMPTS {
            let same_name = self
                .files_newest_first(file.package_id, Some(&file.file_name), false, None)
                .await?;
            if !same_name.iter().any(|f| f.id == file.id) {
                return Err(StoreError::not_found(Record::File, file.id));
            }
            let newest_seen = same_name.iter().map(|f| f.id).max().unwrap_or(file.id);
            let mark = Update::builder()
                .table_name(&self.table)
                .set_key(Some(file_key.clone()))
                .update_expression("SET #st = :pd, updated_at = :u")
                .condition_expression(
                    "attribute_exists(PK) AND (attribute_not_exists(#st) OR #st <> :pd)",
                )
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":pd", s(DOOMED))
                .expression_attribute_values(":u", n(now.millis()))
                .build()
                .map_err(StoreError::backend)?;
            let mut queued = key("PURGE", format!("FILE#{:020}", file.id));
            queued.insert("file_pk".into(), s(format!("PKG#{}", file.package_id)));
            queued.insert("file_sk".into(), s(file_sk(&file.file_name, file.id)));
            let mut items = vec![
                TransactWriteItem::builder().update(mark).build(),
                self.put(queued, None)?,
            ];
            // The last live file of its name frees the name (duplicate rule), unless a publish
            // of the same name slipped in meanwhile: then the guard names a newer file and we
            // go round again.
            if same_name.len() == 1 {
                items.push(self.delete(
                    key(
                        format!("PKG#{}", file.package_id),
                        format!("NAME#{}", file.file_name.as_str()),
                    ),
                    Some((
                        "attribute_not_exists(PK) OR newest_file_id <= :n",
                        HashMap::from([(":n".to_string(), n(newest_seen))]),
                    )),
                )?);
            }
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => match failed_conditions(&e) {
                    Some(failed) if failed.contains(&0) => {
                        return Err(StoreError::not_found(Record::File, file.id));
                    }
                    Some(_) => continue,
                    None => return Err(StoreError::backend(e)),
                },
            }
        }
        Err(StoreError::Contention {
            what: "file delete kept conflicting with concurrent writes".into(),
            attempts: TRANSACTION_ATTEMPTS,
        })
    }
}

#[async_trait]
impl PurgeStore for DynamoMetaStore {
    async fn doomed(&self, limit: usize) -> StoreResult<(Vec<Package>, Vec<PackageFile>)> {
        let mut packages = Vec::new();
        for entry in self.purge_queue("PKG#", limit).await? {
            let id = get_n(&entry, "package_id")?;
            match self.package_by_id(id).await? {
                Some(p) => packages.push(p),
                // Already forgotten: only the queue entry is left.
                None => {
                    self.delete_all(vec![key("PURGE", get_s(&entry, "SK")?)])
                        .await?
                }
            }
        }
        let entries = self.purge_queue("FILE#", limit.min(100)).await?;
        let keys = entries
            .iter()
            .map(|e| Ok(key(get_s(e, "file_pk")?, get_s(e, "file_sk")?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let files = self
            .batch_get(keys)
            .await?
            .iter()
            .map(file_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((packages, files))
    }

    async fn all_files_of(&self, package_id: i64) -> StoreResult<Vec<PackageFile>> {
        let mut files = self
            .files_newest_first(package_id, None, true, None)
            .await?;
        files.sort_by_key(|f| f.id);
        Ok(files)
    }

    async fn blob_shared(&self, file: &PackageFile) -> StoreResult<bool> {
        let own = blob_ref_key(file);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(format!("BLOB#{}", file.blob_key)))
            .limit(2)
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::backend)?;
        Ok(out.items().iter().any(|i| i.get("SK") != own.get("SK")))
    }

    async fn forget_file(&self, file: &PackageFile) -> StoreResult<()> {
        self.delete_all(vec![
            key(
                format!("PKG#{}", file.package_id),
                file_sk(&file.file_name, file.id),
            ),
            blob_ref_key(file),
            key("PURGE", format!("FILE#{:020}", file.id)),
        ])
        .await
    }

    async fn forget_package(&self, package: &Package) -> StoreResult<()> {
        // Whatever is left under the package (file items, name guards), then the package.
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(format!("PKG#{}", package.id)))
            .projection_expression("PK, SK, blob_key, id")
            .consistent_read(true);
        let mut keys = Vec::new();
        for item in self.query_all(request).await? {
            keys.push(key(get_s(&item, "PK")?, get_s(&item, "SK")?));
            if let (Some(blob), Some(id)) = (opt_s(&item, "blob_key"), opt_n(&item, "id")) {
                keys.push(key(format!("BLOB#{blob}"), format!("REF#{id:020}")));
            }
        }
        keys.push(key(
            format!("PROJECT#{}", package.project_id),
            deleted_sk(package.id),
        ));
        keys.push(key(format!("PACKAGE#{}", package.id), "PACKAGE"));
        keys.push(key("PURGE", format!("PKG#{:020}", package.id)));
        self.delete_all(keys).await
    }
}

#[async_trait]
impl UploadSessionStore for DynamoMetaStore {
    async fn create_upload_session(&self, u: &UploadSession) -> StoreResult<()> {
        let mut item = session_key(&u.id);
        item.insert("id".into(), s(&u.id));
        item.insert("project_id".into(), n(u.project_id));
        item.insert("name".into(), s(u.name.as_str()));
        item.insert("version".into(), s(u.version.as_str()));
        item.insert("file_name".into(), s(u.file_name.as_str()));
        if let Some(status) = u.package_status {
            item.insert("package_status".into(), s(status.as_str()));
        }
        item.insert("size".into(), n(u.size as i64));
        if let Some(sha) = &u.sha256 {
            item.insert("sha256".into(), s(sha));
        }
        item.insert("staged_key".into(), s(&u.staged_key));
        if let Some(m) = &u.multipart_id {
            item.insert("multipart_id".into(), s(m));
        }
        item.insert("part_size".into(), n(u.part_size as i64));
        if let Some(t) = u.token_id {
            item.insert("token_id".into(), n(t));
        }
        let parts = u.state.to_parts();
        item.insert("state".into(), s(&parts.kind));
        for (name, value) in STATE_ATTRIBUTES.iter().zip(state_values(&parts)) {
            if let Some(v) = value {
                item.insert(name.to_string(), v);
            }
        }
        item.insert("created_at".into(), n(u.created_at.millis()));
        item.insert("expires_at".into(), n(u.expires_at.millis()));
        // DynamoDB's TTL (template.yaml) deletes the record a week after the session closed to
        // new bytes; its staged object is gone by then (the bucket's lifecycle rule).
        item.insert(
            TTL_ATTRIBUTE.into(),
            n(u.expires_at.millis() / 1000 + SESSION_RECORD_GRACE_SECONDS),
        );
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => {
                Err(StoreError::already_exists(Record::UploadSession, &u.id))
            }
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    async fn upload_session(&self, id: &str) -> StoreResult<Option<UploadSession>> {
        self.get(format!("UPLOAD#{id}"), "SESSION")
            .await?
            .map(|i| session_from(&i))
            .transpose()
    }

    async fn claim_upload_session(
        &self,
        id: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<UploadSession>> {
        self.set_session_state(
            id,
            &SessionState::Committing { until },
            "#st = :pending OR (#st = :committing AND claim_until < :now)",
            vec![
                (":pending", s("pending")),
                (":committing", s("committing")),
                (":now", n(now.millis())),
            ],
        )
        .await
    }

    async fn settle_upload_session(
        &self,
        id: &str,
        state: &SessionState,
    ) -> StoreResult<Option<UploadSession>> {
        self.set_session_state(
            id,
            state,
            "#st IN (:pending, :committing)",
            vec![(":pending", s("pending")), (":committing", s("committing"))],
        )
        .await
    }
}
