//! One `MetaStore` conformance suite, run against every backend: SQLite and DynamoDB (DynamoDB
//! Local). Same cases, same assertions.

use crate::support::dynamo::DynamoEmulator;
use crate::support::newest;
use depot::domain::{
    FileName, GroupSettings, NewFile, NewGroup, Package, PackageName, PackageQuery, PackageStatus,
    PackageVersion, Project, SessionState, Timestamp, UploadSession, Visibility,
};
use depot::store::dynamo::DynamoMetaStore;
use depot::store::sqlite::SqliteMetaStore;
use depot::store::{MetaStore, StoreError};
use std::sync::Arc;

pub(crate) struct Subject {
    pub(crate) meta: Arc<dyn MetaStore>,
    _dir: Option<tempfile::TempDir>,
}

impl crate::support::backends::Subject for Subject {
    async fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(SqliteMetaStore::open(&dir.path().join("meta.sqlite3")).unwrap());
        Self {
            meta,
            _dir: Some(dir),
        }
    }

    async fn aws() -> Self {
        let (client, table) = DynamoEmulator::shared().fresh_table().await;
        Self {
            meta: Arc::new(DynamoMetaStore::new(client, table)),
            _dir: None,
        }
    }
}

/// Save group `path` as the registry does: its parent looked up first (it must exist).
pub(crate) async fn create_group(
    m: &dyn MetaStore,
    path: &str,
    at: Timestamp,
) -> Result<depot::domain::Group, StoreError> {
    let parent_id = match path.rsplit_once('/') {
        Some((parent, _)) => Some(m.group_by_path(parent).await?.expect("parent group").id),
        None => None,
    };
    m.create_group(
        NewGroup {
            owner: None,
            path: path.into(),
            parent_id,
            created_at: at,
        },
        &crate::support::ev(),
    )
    .await
}

pub(crate) fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

pub(crate) fn new_file(
    project_id: i64,
    name: &str,
    version: &str,
    file: &str,
    refuse: bool,
) -> NewFile {
    NewFile {
        event: crate::support::draft(),
        project_id,
        name: PackageName::parse(name).unwrap(),
        version: PackageVersion::parse(version).unwrap(),
        status: None,
        file_name: FileName::parse(None, file).unwrap(),
        size: 3,
        sha256: "ab".repeat(32),
        blob_key: depot::store::new_blob_key(),
        content: None,
        refuse_duplicate: refuse,
        now: t(0),
        commits: None,
    }
}

/// Two real projects (`g/a`, `g/b`) for the package cases.
pub(crate) async fn two_projects(m: &dyn MetaStore) -> (Project, Project) {
    let g = create_group(m, "g", t(0)).await.unwrap();
    let a = m
        .create_project(&g, "a", Visibility::Private, t(0), &crate::support::ev())
        .await
        .unwrap();
    let b = m
        .create_project(&g, "b", Visibility::Private, t(0), &crate::support::ev())
        .await
        .unwrap();
    (a, b)
}

/// The ids of [`two_projects`].
async fn projects(m: &dyn MetaStore) -> (i64, i64) {
    let (a, b) = two_projects(m).await;
    (a.id, b.id)
}

async fn groups_and_projects(s: Subject) {
    let m = s.meta.as_ref();
    assert!(m.is_empty().await.unwrap());
    let g = create_group(m, "acme", t(1)).await.unwrap();
    assert!(!m.is_empty().await.unwrap());
    assert_eq!((g.path.as_str(), g.parent_id), ("acme", None));
    let sub = create_group(m, "acme/tools", t(2)).await.unwrap();
    assert_eq!(sub.parent_id, Some(g.id));
    assert_ne!(sub.id, g.id);
    assert!(matches!(
        create_group(m, "acme", t(3)).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(
        m.group_by_path("acme/tools").await.unwrap(),
        Some(sub.clone())
    );
    assert_eq!(m.group_by_path("missing").await.unwrap(), None);

    let p = m
        .create_project(&sub, "cli", Visibility::Public, t(4), &crate::support::ev())
        .await
        .unwrap();
    assert_eq!(p.path_with_namespace, "acme/tools/cli");
    assert_eq!(
        (p.namespace_id, p.visibility, p.created_at),
        (sub.id, Visibility::Public, t(4))
    );
    let q = m
        .create_project(&g, "app", Visibility::Private, t(5), &crate::support::ev())
        .await
        .unwrap();
    assert_ne!(p.id, q.id);
    assert!(matches!(
        m.create_project(
            &sub,
            "cli",
            Visibility::Private,
            t(6),
            &crate::support::ev()
        )
        .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(m.project_by_id(p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(m.project_by_path("acme/tools/cli").await.unwrap(), Some(p));
    assert_eq!(m.project_by_path("acme/none").await.unwrap(), None);
    assert_eq!(m.project_by_id(9999).await.unwrap(), None);

    assert_eq!(m.group_by_id(sub.id).await.unwrap(), Some(sub.clone()));
    assert_eq!(m.group_by_id(9999).await.unwrap(), None);
    let deep = create_group(m, "acme/tools/deep", t(7)).await.unwrap();
    let r = m
        .create_project(&deep, "r", Visibility::Private, t(8), &crate::support::ev())
        .await
        .unwrap();
    // A sibling whose path shares the prefix `acme/tools` is not below `acme/tools`.
    let other = create_group(m, "acme/toolsmith", t(9)).await.unwrap();
    m.create_project(
        &other,
        "x",
        Visibility::Private,
        t(9),
        &crate::support::ev(),
    )
    .await
    .unwrap();
    let paths = |ps: Vec<Project>| {
        ps.into_iter()
            .map(|p| p.path_with_namespace)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        paths(m.projects_in_group(&sub, false).await.unwrap()),
        vec!["acme/tools/cli"]
    );
    assert_eq!(
        paths(m.projects_in_group(&sub, true).await.unwrap()),
        vec!["acme/tools/cli", "acme/tools/deep/r"]
    );
    assert_eq!(
        m.projects_in_group(&deep, true).await.unwrap(),
        vec![r.clone()]
    );
    assert_eq!(
        paths(m.projects_in_group(&g, false).await.unwrap()),
        vec!["acme/app"]
    );
    assert_eq!(m.projects_in_group(&g, true).await.unwrap().len(), 4);
}

async fn settings(s: Subject) {
    let m = s.meta.as_ref();
    let g = create_group(m, "acme", t(1)).await.unwrap();
    // Never set: no settings (the registry reads that as the defaults).
    assert_eq!(m.group_settings(g.id).await.unwrap(), None);
    let wanted = GroupSettings {
        generic_duplicates_allowed: false,
        generic_duplicate_exception_regex: "foo-.*".into(),
    };
    assert_eq!(
        m.set_group_settings(g.id, &wanted, &crate::support::ev())
            .await
            .unwrap(),
        wanted
    );
    assert_eq!(m.group_settings(g.id).await.unwrap(), Some(wanted.clone()));
    assert!(matches!(
        m.group_settings(999).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        m.set_group_settings(999, &wanted, &crate::support::ev())
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn publish_find_or_create(s: Subject) {
    let m = s.meta.as_ref();
    let (a, b) = projects(m).await;
    let (p1, f1) = put(m, a, "pkg", "1.0", "a.txt", false).await;
    assert_eq!(
        (p1.status, p1.project_id, f1.package_id),
        (PackageStatus::Default, a, p1.id)
    );
    let mut second = new_file(a, "pkg", "1.0", "b.txt", false);
    second.status = Some(PackageStatus::Hidden);
    second.now = t(5);
    let (p2, f2) = m.publish(second).await.unwrap();
    assert_eq!(p2.id, p1.id, "same package");
    assert_eq!(
        (p2.status, p2.updated_at, p2.created_at),
        (PackageStatus::Hidden, t(5), t(0))
    );
    assert_ne!(f2.id, f1.id);
    // Another version or project is another package.
    let (p3, _) = put(m, a, "pkg", "2.0", "a.txt", false).await;
    let (p4, _) = put(m, b, "pkg", "1.0", "a.txt", false).await;
    assert!(p3.id != p1.id && p4.id != p1.id && p3.id != p4.id);
    let (found, file) = newest(m, a, "pkg", "1.0", "b.txt").await.unwrap();
    assert_eq!((found.status, file.clone()), (PackageStatus::Hidden, f2));
    assert!(newest(m, a, "pkg", "1.0", "c.txt").await.is_none());
    assert!(newest(m, a, "other", "1.0", "a.txt").await.is_none());
    // A file name that is a prefix of another is a different file.
    m.publish(new_file(a, "pkg", "1.0", "a.txt.sig", false))
        .await
        .unwrap();
    assert_eq!(newest(m, a, "pkg", "1.0", "a.txt").await.unwrap().1, f1);
}

async fn duplicates(s: Subject) {
    let m = s.meta.as_ref();
    let (a, _) = projects(m).await;
    let (_, first) = put(m, a, "pkg", "1.0", "f", false).await;
    // Allowed: a second record, and it is the newest.
    let (_, second) = put(m, a, "pkg", "1.0", "f", false).await;
    assert!(second.id > first.id);
    assert_eq!(newest(m, a, "pkg", "1.0", "f").await.unwrap().1, second);
    // Refused: nothing changes.
    let mut refused = new_file(a, "pkg", "1.0", "f", true);
    refused.status = Some(PackageStatus::Hidden);
    assert!(matches!(
        m.publish(refused).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let (package, newest_file) = newest(m, a, "pkg", "1.0", "f").await.unwrap();
    assert_eq!(
        (package.status, newest_file),
        (PackageStatus::Default, second)
    );
    assert!(
        m.live_file_exists(
            a,
            &PackageName::parse("pkg").unwrap(),
            &PackageVersion::parse("1.0").unwrap(),
            &FileName::parse(None, "f").unwrap()
        )
        .await
        .unwrap()
    );
    assert!(
        !m.live_file_exists(
            a,
            &PackageName::parse("pkg").unwrap(),
            &PackageVersion::parse("1.0").unwrap(),
            &FileName::parse(None, "g").unwrap()
        )
        .await
        .unwrap()
    );
    assert!(
        !m.live_file_exists(
            a,
            &PackageName::parse("new").unwrap(),
            &PackageVersion::parse("1.0").unwrap(),
            &FileName::parse(None, "f").unwrap()
        )
        .await
        .unwrap()
    );
    // Refusal with no existing file is a normal publish.
    m.publish(new_file(a, "pkg", "1.0", "g", true))
        .await
        .unwrap();
}

async fn downloads_are_recorded(s: Subject) {
    let m = s.meta.as_ref();
    let (a, _) = projects(m).await;
    let (package, f) = put(m, a, "pkg", "1.0", "f", false).await;
    let (_, g) = put(m, a, "pkg", "1.0", "g", false).await;
    assert_eq!(
        (package.last_downloaded_at, package.download_count),
        (None, 0)
    );
    let counted = depot::domain::Downloads {
        package: 5,
        files: vec![
            (f.id, f.file_name.clone(), 3),
            (g.id, g.file_name.clone(), 2),
        ],
    };
    m.record_downloads(&package, t(50), &counted).await.unwrap();
    m.record_downloads(&package, t(60), &counted).await.unwrap();
    let (found, _) = newest(m, a, "pkg", "1.0", "f").await.unwrap();
    assert_eq!(found.last_downloaded_at, Some(t(60)));
    assert_eq!(found.download_count, 10);
    let mut files = m.files_of(package.id).await.unwrap();
    files.sort_by_key(|f| f.id);
    let counts: Vec<u64> = files.iter().map(|f| f.download_count).collect();
    assert_eq!(counts, [6, 4]);
    // A file or package gone meanwhile is skipped, not an error.
    m.delete_file(&package, &g, t(70), &crate::support::ev())
        .await
        .unwrap();
    m.forget_file(&g).await.unwrap();
    m.record_downloads(&package, t(80), &counted).await.unwrap();
    m.delete_package(&found, t(90), &crate::support::ev())
        .await
        .unwrap();
    m.record_downloads(&package, t(95), &counted).await.unwrap();
}

async fn concurrent_first_publishes_make_one_package(s: Subject) {
    let (a, _) = projects(s.meta.as_ref()).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let meta = s.meta.clone();
        tasks.push(tokio::spawn(async move {
            meta.publish(new_file(a, "race", "1.0", &format!("f{i}"), false))
                .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap().unwrap().0.id);
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
}

async fn concurrent_refused_duplicates_let_one_win(s: Subject) {
    let (a, _) = projects(s.meta.as_ref()).await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let meta = s.meta.clone();
        tasks.push(tokio::spawn(async move {
            meta.publish(new_file(a, "race", "1.0", "same", true)).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
}

/// Duplicates deleted newest first, as `make soak`'s end check deletes them: each delete
/// succeeds (on DynamoDB the last one was refused, 500, for as long as the name guard still
/// named the newer file deleted before it), and the last one frees the name, also once the
/// purge has forgotten the newer file.
async fn duplicates_deleted_newest_first(s: Subject) {
    let m = s.meta.as_ref();
    let (a, _) = projects(m).await;
    let (pn, v) = (
        PackageName::parse("p").unwrap(),
        PackageVersion::parse("1.0").unwrap(),
    );
    let name = FileName::parse(None, "f.bin").unwrap();
    for forget in [false, true] {
        let (_, older) = put(m, a, "p", "1.0", "f.bin", false).await;
        let (p, newer) = put(m, a, "p", "1.0", "f.bin", false).await;
        m.delete_file(&p, &newer, t(5), &crate::support::ev())
            .await
            .unwrap();
        if forget {
            m.forget_file(&newer).await.unwrap();
        }
        m.delete_file(&p, &older, t(6), &crate::support::ev())
            .await
            .unwrap();
        assert!(!m.live_file_exists(a, &pn, &v, &name).await.unwrap());
        assert_eq!(m.newest_file(a, &pn, &v, &name).await.unwrap(), None);
        // The name is free: a publish refusing duplicates takes it.
        let (p, again) = put(m, a, "p", "1.0", "f.bin", true).await;
        m.delete_file(&p, &again, t(7), &crate::support::ev())
            .await
            .unwrap();
    }
}

/// Ids are never given twice, as GitLab's are not: once the purge has forgotten the newest
/// package and file, the next ones still get new ids (SQLite gave the forgotten ones again), so
/// a stale id (a retried DELETE, a cached link) never reaches another package or file.
async fn ids_are_never_given_twice(s: Subject) {
    let m = s.meta.as_ref();
    let (a, _) = projects(m).await;
    let (p, f) = put(m, a, "p", "1.0", "f.bin", false).await;
    let (_, g) = put(m, a, "p", "1.0", "g.bin", false).await;
    m.delete_file(&p, &g, t(5), &crate::support::ev())
        .await
        .unwrap();
    m.forget_file(&g).await.unwrap();
    let (_, g2) = put(m, a, "p", "1.0", "g.bin", false).await;
    assert!(g2.id > g.id, "file id {} given again", g2.id);
    m.delete_package(&p, t(6), &crate::support::ev())
        .await
        .unwrap();
    let doomed = m.package_by_id(p.id).await.unwrap().unwrap();
    m.forget_package(&doomed).await.unwrap();
    let (q, h) = put(m, a, "q", "1.0", "h.bin", false).await;
    assert!(q.id > p.id, "package id {} given again", q.id);
    assert!(h.id > g2.id && h.id > f.id, "file id {} given again", h.id);
}

/// Publish `new_file(args)` and unwrap the result.
async fn put(
    m: &dyn MetaStore,
    project_id: i64,
    name: &str,
    version: &str,
    file: &str,
    refuse: bool,
) -> (Package, depot::domain::PackageFile) {
    m.publish(new_file(project_id, name, version, file, refuse))
        .await
        .unwrap()
}

pub(crate) fn query(q: &str, for_group: bool) -> PackageQuery {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    PackageQuery::parse(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        for_group,
    )
    .unwrap()
}

/// Publish (project, name, version) at `at` with `status`; the package.
async fn package_at(
    m: &dyn MetaStore,
    project_id: i64,
    name: &str,
    version: &str,
    at: i64,
    status: Option<PackageStatus>,
) -> Package {
    let mut f = new_file(project_id, name, version, "f.bin", false);
    f.now = t(at);
    f.status = status;
    m.publish(f).await.unwrap().0
}

async fn lists_order_filter_and_page(s: Subject) {
    let m = s.meta.as_ref();
    let (a, b) = two_projects(m).await;
    let alpha1 = package_at(m, a.id, "alpha", "1.0", 10, None).await;
    let beta = package_at(m, a.id, "Beta-Lib", "2.0", 20, None).await;
    let alpha110 = package_at(m, a.id, "alpha", "1.10", 30, None).await;
    let gamma = package_at(m, a.id, "gamma", "0.9", 40, Some(PackageStatus::Hidden)).await;
    let core = package_at(m, a.id, "core-lib", "1.0", 50, None).await;
    let alpha3 = package_at(m, b.id, "alpha", "3.0", 15, None).await;
    let zeta = package_at(m, b.id, "zeta", "1.0", 25, None).await;
    // A second file in a package neither duplicates it in lists nor changes its order.
    let mut again = new_file(a.id, "alpha", "1.0", "g.bin", false);
    again.now = t(60);
    let (added_to, _) = m.publish(again).await.unwrap();
    // Nor does it touch the package (GitLab's upload changes a package only by its status).
    assert_eq!(added_to, alpha1);
    assert_eq!(
        m.package_by_id(alpha1.id).await.unwrap(),
        Some(alpha1.clone())
    );

    let only_a = std::slice::from_ref(&a);
    let both = [a.clone(), b.clone()];
    let ids = |ps: &[Package]| ps.iter().map(|p| p.id).collect::<Vec<_>>();
    let list = |projects: &[Project], q: &str, group: bool| {
        let (projects, q) = (projects.to_vec(), query(q, group));
        async move { m.list_packages(&projects, &q).await.unwrap() }
    };

    let cases: [(&str, Vec<i64>); 15] = [
        ("", vec![alpha1.id, beta.id, alpha110.id, core.id]),
        ("sort=desc", vec![core.id, alpha110.id, beta.id, alpha1.id]),
        (
            "order_by=type",
            vec![alpha1.id, beta.id, alpha110.id, core.id],
        ),
        // Byte order, like GitLab's column order: upper case first, "1.0" before "1.10".
        (
            "order_by=name",
            vec![beta.id, alpha1.id, alpha110.id, core.id],
        ),
        (
            "order_by=name&sort=desc",
            vec![core.id, alpha110.id, alpha1.id, beta.id],
        ),
        (
            "order_by=version",
            vec![alpha1.id, core.id, alpha110.id, beta.id],
        ),
        ("package_name=LIB", vec![beta.id, core.id]),
        ("package_name=lib+core", vec![core.id]),
        ("package_version=1.0", vec![alpha1.id, core.id]),
        ("status=hidden", vec![gamma.id]),
        ("package_type=npm", vec![]),
        // Name order with a status, a name filter, a version filter.
        ("order_by=name&status=hidden", vec![gamma.id]),
        (
            "order_by=name&sort=desc&package_name=lib",
            vec![core.id, beta.id],
        ),
        (
            "order_by=name&package_version=1.0",
            vec![alpha1.id, core.id],
        ),
        ("order_by=name&package_name=nothing", vec![]),
    ];
    for (q, expected) in cases {
        let got = list(only_a, q, false).await;
        assert_eq!(ids(&got.items), expected, "{q}");
        assert_eq!(got.total, Some(expected.len() as u64), "{q}");
        assert!(!got.has_next, "{q}");
    }
    let hidden = list(only_a, "status=hidden", false).await;
    assert_eq!(hidden.items[0].status, PackageStatus::Hidden);
    assert_eq!(
        hidden.items[0],
        m.package_by_id(gamma.id).await.unwrap().unwrap()
    );

    let first = list(only_a, "per_page=3", false).await;
    assert_eq!(ids(&first.items), vec![alpha1.id, beta.id, alpha110.id]);
    assert_eq!((first.total, first.has_next), (Some(4), true));
    let second = list(only_a, "per_page=3&page=2", false).await;
    assert_eq!(ids(&second.items), vec![core.id]);
    assert_eq!((second.total, second.has_next), (Some(4), false));
    let named = list(only_a, "order_by=name&per_page=3&page=2", false).await;
    assert_eq!(ids(&named.items), vec![core.id]);
    assert_eq!((named.total, named.has_next), (Some(4), false));
    let named = list(only_a, "order_by=name&sort=desc&per_page=2", false).await;
    assert_eq!(ids(&named.items), vec![core.id, alpha110.id]);
    assert_eq!((named.total, named.has_next), (Some(4), true));
    let beyond = list(only_a, "per_page=3&page=5", false).await;
    assert!(beyond.items.is_empty());
    assert_eq!((beyond.total, beyond.has_next), (Some(4), false));
    // Pages whose offset passes 64 bits (found by the pagination fuzz target): empty as well.
    for q in [
        "page=7766279631452241918",
        "page=9223372036854775807&per_page=100",
    ] {
        for projects in [only_a, &both[..]] {
            let far = list(projects, q, projects.len() > 1).await;
            assert!(far.items.is_empty() && !far.has_next, "{q}");
        }
    }

    // A group list merges its projects' packages in one order.
    let group_cases: [(&str, Vec<i64>); 6] = [
        (
            "",
            vec![alpha1.id, alpha3.id, beta.id, zeta.id, alpha110.id, core.id],
        ),
        // Projects by path; within a project, newest id first in both directions (GitLab).
        (
            "order_by=project_path",
            vec![core.id, alpha110.id, beta.id, alpha1.id, zeta.id, alpha3.id],
        ),
        (
            "order_by=project_path&sort=desc",
            vec![zeta.id, alpha3.id, core.id, alpha110.id, beta.id, alpha1.id],
        ),
        (
            "order_by=version&sort=desc",
            vec![alpha3.id, beta.id, alpha110.id, zeta.id, core.id, alpha1.id],
        ),
        (
            "package_name=alpha",
            vec![alpha1.id, alpha3.id, alpha110.id],
        ),
        (
            "order_by=name&sort=desc",
            vec![zeta.id, core.id, alpha3.id, alpha110.id, alpha1.id, beta.id],
        ),
    ];
    for (q, expected) in group_cases {
        let got = list(&both, q, true).await;
        assert_eq!(ids(&got.items), expected, "group {q}");
        assert_eq!(got.total, Some(expected.len() as u64), "group {q}");
    }
    let page = list(&both, "per_page=4&page=2", true).await;
    assert_eq!(ids(&page.items), vec![alpha110.id, core.id]);
    assert_eq!((page.total, page.has_next), (Some(6), false));
    let page = list(&both, "per_page=2&page=2", true).await;
    assert_eq!(ids(&page.items), vec![beta.id, zeta.id]);
    assert!(page.has_next);
    assert!(list(&[], "", true).await.items.is_empty());

    // A status change moves a package between the default and the hidden list.
    let mut unhide = new_file(a.id, "gamma", "0.9", "h.bin", false);
    unhide.status = Some(PackageStatus::Default);
    unhide.now = t(70);
    let (unhidden, _) = m.publish(unhide).await.unwrap();
    assert_eq!(
        (unhidden.status, unhidden.updated_at),
        (PackageStatus::Default, t(70))
    );
    assert_eq!(m.package_by_id(gamma.id).await.unwrap(), Some(unhidden));
    assert_eq!(list(only_a, "status=hidden", false).await.items, vec![]);
    assert_eq!(list(only_a, "", false).await.total, Some(5));
}

async fn packages_by_id_and_their_files(s: Subject) {
    let m = s.meta.as_ref();
    let (a, _) = projects(m).await;
    let (p, f1) = put(m, a, "pkg", "1.0", "a.bin", false).await;
    let (_, f2) = put(m, a, "pkg", "1.0", "b.bin", false).await;
    let (_, f3) = put(m, a, "pkg", "1.0", "a.bin", false).await;
    let found = m.package_by_id(p.id).await.unwrap().unwrap();
    assert_eq!((found.id, found.name.as_str()), (p.id, "pkg"));
    assert_eq!(m.package_by_id(p.id + 1000).await.unwrap(), None);
    let mut files = m.files_of(p.id).await.unwrap();
    files.sort_by_key(|f| f.id);
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    assert_eq!(files, vec![f1, f2.clone(), f3]);
    assert!(m.files_of(p.id + 1000).await.unwrap().is_empty());
    // A list page's totals: per package in the order asked, none for an unknown one; a
    // deleted file no longer counts.
    let (q, _) = put(m, a, "other", "1.0", "c.bin", false).await;
    let totals = m.file_totals(&[p.id, p.id + 1000, q.id]).await.unwrap();
    assert_eq!(totals[0], (3, bytes));
    assert_eq!((totals[1], totals[2].0), ((0, 0), 1));
    m.delete_file(&p, &f2, t(99), &crate::support::ev())
        .await
        .unwrap();
    assert_eq!(
        m.file_totals(&[p.id]).await.unwrap()[0],
        (2, bytes - f2.size)
    );
    assert!(m.file_totals(&[]).await.unwrap().is_empty());
}

async fn deletes_and_purge_records(s: Subject) {
    let m = s.meta.as_ref();
    let (a, _) = projects(m).await;
    let (p, fa) = put(m, a, "p", "1.0", "a.bin", false).await;
    let (_, fb) = put(m, a, "p", "1.0", "b.bin", false).await;
    let (q, _) = put(m, a, "q", "1.0", "c.bin", false).await;
    let (pn, qn) = (
        PackageName::parse("p").unwrap(),
        PackageName::parse("q").unwrap(),
    );
    let v = PackageVersion::parse("1.0").unwrap();
    let b = FileName::parse(None, "b.bin").unwrap();

    // One file: gone from downloads and file lists, its name free again.
    m.delete_file(&p, &fb, t(5), &crate::support::ev())
        .await
        .unwrap();
    assert!(matches!(
        m.delete_file(&p, &fb, t(6), &crate::support::ev()).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(m.files_of(p.id).await.unwrap(), vec![fa.clone()]);
    assert_eq!(m.newest_file(a, &pn, &v, &b).await.unwrap(), None);
    assert!(!m.live_file_exists(a, &pn, &v, &b).await.unwrap());
    let (_, fb2) = put(m, a, "p", "1.0", "b.bin", true).await;
    assert_eq!(
        newest(m, a, "p", "1.0", "b.bin").await.unwrap().1.id,
        fb2.id
    );
    // With two live files of one name, deleting the newer keeps the name taken.
    let (_, fb3) = put(m, a, "p", "1.0", "b.bin", false).await;
    m.delete_file(&p, &fb3, t(7), &crate::support::ev())
        .await
        .unwrap();
    assert!(m.live_file_exists(a, &pn, &v, &b).await.unwrap());
    assert_eq!(
        newest(m, a, "p", "1.0", "b.bin").await.unwrap().1.id,
        fb2.id
    );

    // A package: gone from lists and downloads at once, listed as pending destruction.
    m.delete_package(&p, t(8), &crate::support::ev())
        .await
        .unwrap();
    assert!(matches!(
        m.delete_package(&p, t(9), &crate::support::ev()).await,
        Err(StoreError::NotFound { .. })
    ));
    let doomed = m.package_by_id(p.id).await.unwrap().unwrap();
    assert_eq!(doomed.status, PackageStatus::PendingDestruction);
    assert_eq!(
        m.newest_file(a, &pn, &v, &FileName::parse(None, "a.bin").unwrap())
            .await
            .unwrap(),
        None
    );
    let project = m.project_by_id(a).await.unwrap().unwrap();
    let listed = m
        .list_packages(std::slice::from_ref(&project), &query("", false))
        .await
        .unwrap();
    assert_eq!(
        listed.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![q.id]
    );
    for q in [
        "status=pending_destruction",
        "status=pending_destruction&order_by=name",
    ] {
        let listed = m
            .list_packages(std::slice::from_ref(&project), &query(q, false))
            .await
            .unwrap();
        assert_eq!(
            listed.items.iter().map(|p| p.id).collect::<Vec<_>>(),
            vec![p.id],
            "{q}"
        );
    }
    // Its name and version are free for a new package.
    let (p2, _) = put(m, a, "p", "1.0", "a.bin", true).await;
    assert_ne!(p2.id, p.id);
    assert!(
        m.live_file_exists(a, &pn, &v, &FileName::parse(None, "a.bin").unwrap())
            .await
            .unwrap()
    );
    assert!(
        m.live_file_exists(a, &qn, &v, &FileName::parse(None, "c.bin").unwrap())
            .await
            .unwrap()
    );

    // What the purge sees and removes.
    let (packages, files) = m.doomed(10).await.unwrap();
    assert_eq!(
        packages.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p.id]
    );
    let mut doomed_files: Vec<i64> = files.iter().map(|f| f.id).collect();
    doomed_files.sort();
    assert_eq!(doomed_files, vec![fb.id, fb3.id]);
    let all: Vec<i64> = m
        .all_files_of(p.id)
        .await
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(all, vec![fa.id, fb.id, fb2.id, fb3.id]);
    // Every publish names a blob of its own.
    assert!(!m.blob_shared(&fa).await.unwrap());
    for f in &files {
        m.forget_file(f).await.unwrap();
    }
    for f in m.all_files_of(p.id).await.unwrap() {
        m.forget_file(&f).await.unwrap();
    }
    m.forget_package(&doomed).await.unwrap();
    assert_eq!(m.package_by_id(p.id).await.unwrap(), None);
    assert_eq!(m.doomed(10).await.unwrap(), (vec![], vec![]));
    // The live packages are untouched.
    assert_eq!(m.files_of(p2.id).await.unwrap().len(), 1);
    assert_eq!(m.files_of(q.id).await.unwrap().len(), 1);
}

fn session(project_id: i64, id: &str) -> UploadSession {
    UploadSession {
        id: id.to_string(),
        project_id,
        name: PackageName::parse("big").unwrap(),
        version: PackageVersion::parse("1.0").unwrap(),
        file_name: FileName::parse(Some("dir"), "big.iso").unwrap(),
        package_status: Some(PackageStatus::Hidden),
        size: 200 << 20,
        sha256: Some("cd".repeat(32)),
        staged_key: format!("uploads/{id}"),
        multipart_id: Some("mpu-1".into()),
        part_size: 64 << 20,
        token_id: Some(7),
        // Kept as written (what a federated opener's delegation is, `auth` decides).
        delegation: Some(
            r#"{"source":{"kind":"gitlab_job","job_id":1,"gitlab_project":2}}"#.into(),
        ),
        state: SessionState::Pending,
        created_at: t(1),
        expires_at: t(86_400_000),
    }
}

async fn upload_sessions_commit_at_most_once(s: Subject) {
    let m = s.meta.as_ref();
    let (a, _) = projects(m).await;
    let first = session(a, &UploadSession::new_id());
    m.create_upload_session(&first).await.unwrap();
    assert_eq!(
        m.upload_session(&first.id).await.unwrap(),
        Some(first.clone())
    );
    assert!(matches!(
        m.create_upload_session(&first).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(
        m.upload_session("0".repeat(32).as_str()).await.unwrap(),
        None
    );
    let mut plain = session(a, &UploadSession::new_id());
    (
        plain.sha256,
        plain.multipart_id,
        plain.token_id,
        plain.package_status,
    ) = (None, None, None, None);
    plain.part_size = 0;
    m.create_upload_session(&plain).await.unwrap();
    assert_eq!(
        m.upload_session(&plain.id).await.unwrap(),
        Some(plain.clone())
    );

    // Claimed, held, then lapsed and claimed again.
    let claimed = m
        .claim_upload_session(&first.id, t(100), t(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.state, SessionState::Committing { until: t(100) });
    assert_eq!(
        m.claim_upload_session(&first.id, t(150), t(50))
            .await
            .unwrap(),
        None
    );
    let reclaimed = m
        .claim_upload_session(&first.id, t(300), t(200))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reclaimed.state, SessionState::Committing { until: t(300) });
    // Settled once; every later settle or claim changes nothing.
    let committed = SessionState::Committed {
        package_id: 3,
        file_id: 4,
    };
    let settled = m
        .settle_upload_session(&first.id, &committed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.state, committed);
    let refused = SessionState::Refused {
        reason: depot::domain::Refusal::Duplicate,
    };
    assert_eq!(
        m.settle_upload_session(&first.id, &refused).await.unwrap(),
        None
    );
    assert_eq!(
        m.claim_upload_session(&first.id, t(900), t(800))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        m.upload_session(&first.id).await.unwrap().unwrap().state,
        committed
    );
    // A pending session can be refused or aborted directly.
    let settled = m
        .settle_upload_session(&plain.id, &refused)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.state, refused);
    assert_eq!(
        m.settle_upload_session(&plain.id, &SessionState::Aborted)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        m.settle_upload_session("missing", &SessionState::Aborted)
            .await
            .unwrap(),
        None
    );

    // Racing claims: exactly one wins.
    let raced = session(a, &UploadSession::new_id());
    m.create_upload_session(&raced).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (meta, id) = (s.meta.clone(), raced.id.clone());
        tasks.push(tokio::spawn(async move {
            meta.claim_upload_session(&id, t(1000 + i), t(20))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap().is_some());
    }
    assert_eq!(won, 1);
}

/// A publish that commits an upload session settles it with its file in the same step, under
/// the claim it names only: with the claim gone, nothing is published and the session stays.
async fn a_session_is_committed_with_its_file(s: Subject) {
    let m = s.meta.as_ref();
    let (a, _) = projects(m).await;
    let opened = session(a, &UploadSession::new_id());
    m.create_upload_session(&opened).await.unwrap();
    m.claim_upload_session(&opened.id, t(100), t(10))
        .await
        .unwrap()
        .unwrap();
    let claim = |until| depot::domain::SessionClaim {
        session_id: opened.id.clone(),
        until,
    };
    // A claim that is not the one holding the session (it lapsed and was taken over).
    let stale = NewFile {
        event: crate::support::draft(),
        commits: Some(claim(t(99))),
        ..new_file(a, "big", "1.0", "big.iso", false)
    };
    assert!(matches!(
        m.publish(stale).await,
        Err(StoreError::Contention { .. })
    ));
    let stale_left = m
        .live_file_exists(
            a,
            &PackageName::parse("big").unwrap(),
            &PackageVersion::parse("1.0").unwrap(),
            &FileName::parse(None, "big.iso").unwrap(),
        )
        .await
        .unwrap();
    assert!(!stale_left, "a publish under a lost claim left a file");
    let held = NewFile {
        event: crate::support::draft(),
        commits: Some(claim(t(100))),
        ..new_file(a, "big", "1.0", "big.iso", false)
    };
    let (package, file) = m.publish(held.clone()).await.unwrap();
    let committed = SessionState::Committed {
        package_id: package.id,
        file_id: file.id,
    };
    let now = m.upload_session(&opened.id).await.unwrap().unwrap();
    assert_eq!(now.state, committed);
    // Committed once: the same claim publishes nothing more.
    assert!(matches!(
        m.publish(held).await,
        Err(StoreError::Contention { .. })
    ));
    assert_eq!(m.files_of(package.id).await.unwrap().len(), 1);
}

on_every_backend!(
    groups_and_projects,
    settings,
    publish_find_or_create,
    duplicates,
    downloads_are_recorded,
    concurrent_first_publishes_make_one_package,
    concurrent_refused_duplicates_let_one_win,
    duplicates_deleted_newest_first,
    ids_are_never_given_twice,
    lists_order_filter_and_page,
    packages_by_id_and_their_files,
    deletes_and_purge_records,
    upload_sessions_commit_at_most_once,
    a_session_is_committed_with_its_file,
);
