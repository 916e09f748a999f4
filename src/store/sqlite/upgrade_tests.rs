//! The upgrade of a real older database: a copy of `tests/fixtures/sqlite-v1` (written by the
//! store before migrations existed; its README lists what it holds) opened by this code must
//! come up at the latest version with every record reading back exactly as it was written.

use super::SqliteMetaStore;
use super::migrations::{LATEST_VERSION, known_version};
use crate::domain::{
    FileName, Group, GroupSettings, Membership, MembershipTarget, NewFile, Package, PackageFile,
    PackageName, PackageQuery, PackageStatus, PackageVersion, Project, Refusal, Role, Scope,
    SessionState, Timestamp, Token, TokenGrant, TokenKind, TokenParts, UploadSession, User,
    Visibility,
};
use crate::store::{
    IdentityStore, PackageStore, PurgeStore, SettingsStore, StoreError, UploadSessionStore,
};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// Timestamps in the fixture: this base plus a small offset.
fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_750_000_000_000 + ms)
}

/// A copy of the fixture's database in a fresh directory (the fixture itself stays as it is).
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sqlite-v1");
    let dir = tempfile::tempdir().unwrap();
    let db = crate::config::database_path(dir.path());
    std::fs::copy(crate::config::database_path(&fixture), &db).unwrap();
    (dir, db)
}

/// Every table's and index's SQL, as SQLite keeps it.
fn schema_of(db: &Path) -> Vec<(String, String)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[tokio::test]
async fn a_database_from_before_migrations_upgrades_with_every_record_intact() {
    let (_dir, db) = fixture_copy();
    assert_eq!(known_version(&Connection::open(&db).unwrap()).unwrap(), 0);
    let store = SqliteMetaStore::open(&db).unwrap();
    assert_eq!(
        known_version(&Connection::open(&db).unwrap()).unwrap(),
        LATEST_VERSION
    );
    groups_and_projects(&store).await;
    users_and_memberships(&store).await;
    tokens(&store).await;
    packages_and_files(&store).await;
    upload_sessions(&store).await;
    still_writable(&store).await;

    // Upgraded, it has exactly the schema a new database gets.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_db = fresh.path().join("fresh.sqlite3");
    SqliteMetaStore::open(&fresh_db).unwrap();
    assert_eq!(schema_of(&db), schema_of(&fresh_db));
}

/// Processes opening one old database at once (`depot serve` and `depot admin`): one of them
/// applies each migration, the others find it applied (applying one twice would fail).
#[tokio::test]
async fn several_opening_at_once_upgrade_it_once() {
    let (_dir, db) = fixture_copy();
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || SqliteMetaStore::open(&db).map(drop))
        })
        .collect();
    for opener in openers {
        opener.join().unwrap().unwrap();
    }
    let store = SqliteMetaStore::open(&db).unwrap();
    upload_sessions(&store).await;
}

async fn groups_and_projects(m: &SqliteMetaStore) {
    assert!(!m.is_empty().await.unwrap());
    let group = |id, path: &str, parent_id| Group {
        id,
        path: path.into(),
        parent_id,
        created_at: t(id),
    };
    let groups = [
        group(1, "acme", None),
        group(2, "acme/tools", Some(1)),
        group(3, "beta", None),
    ];
    for g in &groups {
        assert_eq!(m.group_by_path(&g.path).await.unwrap().as_ref(), Some(g));
        assert_eq!(m.group_by_id(g.id).await.unwrap().as_ref(), Some(g));
    }
    // Every group had settings stored; each keeps them.
    let tools = GroupSettings {
        generic_duplicates_allowed: false,
        generic_duplicate_exception_regex: "^tools-.*-SNAPSHOT$".into(),
    };
    assert_eq!(
        m.group_settings(1).await.unwrap(),
        Some(GroupSettings::default())
    );
    assert_eq!(m.group_settings(2).await.unwrap(), Some(tools));
    assert_eq!(
        m.group_settings(3).await.unwrap(),
        Some(GroupSettings::default())
    );

    let project = |id, name: &str, path: &str, namespace_id, visibility| Project {
        id,
        name: name.into(),
        path_with_namespace: path.into(),
        namespace_id,
        visibility,
        created_at: t(9 + id),
    };
    let app = project(1, "app", "acme/app", 1, Visibility::Private);
    let cli = project(2, "cli", "acme/tools/cli", 2, Visibility::Public);
    let site = project(3, "site", "beta/site", 3, Visibility::Public);
    for p in [&app, &cli, &site] {
        assert_eq!(m.project_by_id(p.id).await.unwrap().as_ref(), Some(p));
        assert_eq!(
            m.project_by_path(&p.path_with_namespace)
                .await
                .unwrap()
                .as_ref(),
            Some(p)
        );
    }
    let acme = &groups[0];
    assert_eq!(
        m.projects_in_group(acme, true).await.unwrap(),
        [app.clone(), cli]
    );
    assert_eq!(m.projects_in_group(acme, false).await.unwrap(), [app]);
}

async fn users_and_memberships(m: &SqliteMetaStore) {
    for (id, name) in [(1, "alice"), (2, "bob"), (3, "ci-bot")] {
        let user = User {
            id,
            username: name.into(),
            admin: false,
            created_at: t(19 + id),
        };
        assert_eq!(m.user_by_name(name).await.unwrap(), Some(user));
    }
    let member = |user_id, target, role| Membership {
        user_id,
        target,
        role,
    };
    use MembershipTarget::{Group, Project};
    let mut bob = m.memberships_of(2).await.unwrap();
    bob.sort_by_key(|m| m.role.access_level());
    assert_eq!(
        m.memberships_of(1).await.unwrap(),
        [member(1, Group("acme".into()), Role::Owner)]
    );
    assert_eq!(
        bob,
        [
            member(2, Group("acme/tools".into()), Role::Reporter),
            member(2, Project(1), Role::Developer),
        ]
    );
    assert_eq!(
        m.memberships_of(3).await.unwrap(),
        [member(3, Project(2), Role::Maintainer)]
    );
}

async fn tokens(m: &SqliteMetaStore) {
    use MembershipTarget::{Group, Project};
    use Scope::{Api, ReadApi, ReadPackageRegistry, WritePackageRegistry};
    let token = |id: u8, kind, scopes: &[Scope], user_id, target, expires_at| Token {
        id: i64::from(id),
        sha256: [id; 32],
        grant: TokenGrant::from_parts(TokenParts {
            kind,
            scopes: scopes.to_vec(),
            user_id,
            target,
        })
        .expect("a fixture token is whole"),
        expires_at,
        revoked: id == 6,
        created_at: t(29 + i64::from(id)),
        name: String::new(),
        last_used_at: None,
    };
    let read = [ReadApi, ReadPackageRegistry];
    let deploy = [ReadPackageRegistry, WritePackageRegistry];
    let expected = [
        token(1, TokenKind::Personal, &[Api], Some(1), None, None),
        token(
            2,
            TokenKind::Personal,
            &read,
            Some(2),
            None,
            Some(t(86_400_000)),
        ),
        token(3, TokenKind::Deploy, &deploy, None, Some(Project(1)), None),
        token(
            4,
            TokenKind::Deploy,
            &[ReadPackageRegistry],
            None,
            Some(Group("acme".into())),
            Some(t(172_800_000)),
        ),
        token(
            5,
            TokenKind::Job,
            &[Api],
            Some(3),
            Some(Project(2)),
            Some(t(3_600_000)),
        ),
        token(6, TokenKind::Personal, &[Api], Some(1), None, None),
    ];
    for tk in expected {
        assert_eq!(
            m.token_by_sha256(&tk.sha256).await.unwrap().as_ref(),
            Some(&tk)
        );
        assert_eq!(m.token_by_id(tk.id).await.unwrap(), Some(tk));
    }
}

/// File `n` of the fixture: its size, digest and blob key are numbered after it.
fn file(n: u32, package_id: i64, name: &str, at: i64, blob: u32) -> PackageFile {
    PackageFile {
        id: i64::from(n),
        package_id,
        file_name: FileName::from_stored(name.into()),
        size: u64::from(n) * 1000 + 7,
        sha256: format!("{n:064x}"),
        blob_key: format!("blobs/{blob:032x}"),
        created_at: t(at),
        updated_at: t(if n == 3 { 104 } else { at }),
        content: None,
        download_count: 0,
    }
}

fn package(id: i64, project_id: i64, coordinates: (&str, &str), times: [i64; 2]) -> Package {
    Package {
        id,
        project_id,
        name: PackageName::parse(coordinates.0).unwrap(),
        version: PackageVersion::parse(coordinates.1).unwrap(),
        status: match id {
            2 => PackageStatus::Hidden,
            3 => PackageStatus::PendingDestruction,
            _ => PackageStatus::Default,
        },
        created_at: t(times[0]),
        updated_at: t(times[1]),
        last_downloaded_at: (id == 1).then(|| t(105)),
        download_count: 0,
    }
}

async fn packages_and_files(m: &SqliteMetaStore) {
    let packages = [
        package(1, 1, ("app", "1.0.0"), [100, 103]),
        package(2, 1, ("app", "2.0.0-rc.1"), [110, 111]),
        package(3, 2, ("cli", "0.1.0"), [120, 125]),
        package(4, 2, ("cli", "0.1.0"), [130, 130]),
        package(5, 3, ("site", "2024.01"), [140, 140]),
    ];
    let files = [
        file(1, 1, "app.tar.gz", 100, 1),
        file(2, 1, "app.tar.gz", 101, 2),
        file(3, 1, "README.md", 102, 3),
        file(4, 1, "linux%2Famd64%2Fapp", 103, 4),
        file(5, 2, "app.tar.gz", 110, 2),
        file(6, 2, "checksums.txt", 111, 6),
        file(7, 3, "cli", 120, 7),
        file(8, 3, "cli.sig", 121, 8),
        file(9, 4, "cli", 130, 9),
        file(10, 5, "index.html", 140, 10),
    ];
    for p in &packages {
        assert_eq!(m.package_by_id(p.id).await.unwrap().as_ref(), Some(p));
        let all: Vec<_> = files
            .iter()
            .filter(|f| f.package_id == p.id)
            .cloned()
            .collect();
        assert_eq!(m.all_files_of(p.id).await.unwrap(), all);
        let mut live = m.files_of(p.id).await.unwrap();
        live.sort_by_key(|f| f.id);
        let expected: Vec<_> = all.into_iter().filter(|f| f.id != 3).collect();
        assert_eq!(live, expected, "live files of package {}", p.id);
    }
    let newest = async |project, name, version, file: &str| {
        m.newest_file(
            project,
            &PackageName::parse(name).unwrap(),
            &PackageVersion::parse(version).unwrap(),
            &FileName::from_stored(file.into()),
        )
        .await
    };
    let found = newest(1, "app", "1.0.0", "app.tar.gz").await.unwrap();
    assert_eq!(found, Some((packages[0].clone(), files[1].clone())));
    let found = newest(2, "cli", "0.1.0", "cli").await.unwrap();
    assert_eq!(found, Some((packages[3].clone(), files[8].clone())));
    assert_eq!(newest(1, "app", "1.0.0", "README.md").await.unwrap(), None);

    let doomed = m.doomed(10).await.unwrap();
    assert_eq!(doomed, (vec![packages[2].clone()], vec![files[2].clone()]));
    assert!(m.blob_shared(&files[1]).await.unwrap() && m.blob_shared(&files[4]).await.unwrap());
    assert!(!m.blob_shared(&files[0]).await.unwrap());

    let projects = [1, 2, 3].map(|id| Project {
        id,
        name: String::new(),
        path_with_namespace: format!("p/{id}"),
        namespace_id: 0,
        visibility: Visibility::Public,
        created_at: t(0),
    });
    let listed = m
        .list_packages(&projects, &PackageQuery::parse([], true).unwrap())
        .await
        .unwrap();
    let default = [&packages[0], &packages[3], &packages[4]].map(Clone::clone);
    assert_eq!((listed.items, listed.total), (default.to_vec(), Some(3)));
}

/// Session `i` as the fixture wrote it, in `state`.
fn session(i: u32, token_id: Option<i64>, multipart: bool, state: SessionState) -> UploadSession {
    UploadSession {
        id: format!("{i:032x}"),
        project_id: 1,
        name: PackageName::parse("app").unwrap(),
        version: PackageVersion::parse("3.0.0").unwrap(),
        file_name: FileName::parse(None, &format!("part-{i}.bin")).unwrap(),
        package_status: i.is_multiple_of(2).then_some(PackageStatus::Hidden),
        size: if multipart { 20 << 20 } else { 5 << 20 },
        sha256: (!multipart).then(|| format!("{:064x}", 1000 + i)),
        staged_key: format!("uploads/{i:032x}"),
        multipart_id: multipart.then(|| format!("mpu-{i}")),
        part_size: if multipart { 8 << 20 } else { 0 },
        token_id,
        delegation: None,
        state,
        created_at: t(200 + i64::from(i)),
        expires_at: t(200 + i64::from(i) + 86_400_000),
    }
}

async fn upload_sessions(m: &SqliteMetaStore) {
    let committing = SessionState::Committing { until: t(400) };
    let committed = SessionState::Committed {
        package_id: 2,
        file_id: 5,
    };
    let mut expected = vec![
        session(1, Some(1), false, SessionState::Pending),
        session(2, Some(3), true, SessionState::Pending),
        session(3, Some(5), false, committing),
        session(4, None, true, committed),
        session(5, Some(1), false, SessionState::Aborted),
    ];
    // What the old code stored as a status and message, read as the reason it stood for.
    // Expired and revoked tokens were both stored as 401 `invalid_token`: one reason now.
    let reasons = [
        Refusal::Duplicate,
        Refusal::TooLarge,
        Refusal::Expired,
        Refusal::SizeMismatch,
        Refusal::DigestMismatch,
        Refusal::Unauthorized,
        Refusal::TokenRevoked,
        Refusal::TokenRevoked,
        Refusal::InsufficientScope,
        Refusal::Forbidden,
        Refusal::ProjectNotFound,
    ];
    for (i, reason) in (10..).zip(reasons) {
        let refused = SessionState::Refused { reason };
        expected.push(session(i, Some(1), i == 10, refused));
    }
    for s in expected {
        assert_eq!(m.upload_session(&s.id).await.unwrap(), Some(s));
    }
}

/// The upgraded database takes writes: the duplicate rule against an old file, settings of an
/// old group, a new group with no settings yet, a session claimed and settled.
async fn still_writable(m: &SqliteMetaStore) {
    let again = NewFile {
        project_id: 1,
        name: PackageName::parse("app").unwrap(),
        version: PackageVersion::parse("1.0.0").unwrap(),
        status: None,
        file_name: FileName::from_stored("app.tar.gz".into()),
        size: 1,
        sha256: "00".repeat(32),
        blob_key: "blobs/new".into(),
        content: None,
        refuse_duplicate: true,
        now: t(1000),
        commits: None,
        event: crate::domain::EventDraft::system(t(1000)),
    };
    assert!(matches!(
        m.publish(again).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let strict = GroupSettings {
        generic_duplicates_allowed: false,
        generic_duplicate_exception_regex: String::new(),
    };
    let event = crate::domain::Event::new(
        crate::domain::EventType::SettingsChanged,
        crate::domain::Actor::system(),
        t(1000),
    );
    m.set_group_settings(1, &strict, &event).await.unwrap();
    assert_eq!(m.group_settings(1).await.unwrap(), Some(strict));
    let new = m
        .create_group(
            crate::domain::NewGroup {
                owner: None,
                path: "gamma".into(),
                parent_id: None,
                created_at: t(1001),
            },
            &crate::domain::Event::new(
                crate::domain::EventType::GroupCreated,
                crate::domain::Actor::system(),
                crate::domain::Timestamp::now(),
            ),
        )
        .await
        .unwrap();
    assert_eq!((new.id, m.group_settings(new.id).await.unwrap()), (4, None));

    let id = format!("{:032x}", 1);
    m.claim_upload_session(&id, t(2000), t(1002))
        .await
        .unwrap()
        .unwrap();
    let refused = SessionState::Refused {
        reason: Refusal::Duplicate,
    };
    let settled = m.settle_upload_session(&id, &refused).await.unwrap();
    assert_eq!(settled.map(|s| s.state), Some(refused));
}
