//! A download the purge overtakes: the file was located, then deleted and its bytes purged
//! before they were opened. No error in the log (the soak found the purge logging "blob of a
//! live file is missing" for it), and the download locates again: an older duplicate may be
//! the newest now (the soak then found a 404 while one was live). A live file whose bytes are
//! gone still is an error.

use crate::support::captured::Captured;
use crate::support::{Backend, TestApp};
use depot::auth::Principal;
use depot::domain::{FileName, PackageName, PackageVersion, ProjectRef, Role, Scope};
use depot::registry::{Error, FileCoordinates, Missing};

fn at(project: i64, file: &str) -> FileCoordinates {
    FileCoordinates {
        project: ProjectRef::Id(project),
        name: PackageName::parse("pkg").unwrap(),
        version: PackageVersion::parse("1.0").unwrap(),
        file_name: FileName::parse(None, file).unwrap(),
    }
}

// One thread: the captured log sees every event of the registry's async code.
#[tokio::test(flavor = "current_thread")]
async fn a_download_overtaken_by_the_purge_is_a_quiet_404() {
    let app = TestApp::start(Backend::Local).await;
    app.group("g").await;
    let project = app.project("g/p", true).await;
    app.user("dev").await;
    app.member("dev", "g", Role::Developer).await;
    let token = app.pat("dev", &[Scope::Api], None).await.1;
    for file in ["gone.txt", "kept.txt"] {
        let uri = format!("/api/v4/projects/{project}/packages/generic/pkg/1.0/{file}");
        // Above the inline limit: bytes in a blob of their own, which the purge removes.
        let put = app
            .put(&uri, &[("PRIVATE-TOKEN", &token)], &[b'x'; 10_000])
            .await;
        assert_eq!(put.status.as_u16(), 201, "{}", put.text());
    }
    let (log, _guard) = Captured::start();
    let registry = &app.registry;
    let anyone = Principal::Anonymous;

    // Located, then deleted and purged before its bytes are opened.
    let (package, gone) = registry
        .locate(&anyone, &at(project, "gone.txt"), false)
        .await
        .unwrap();
    app.meta()
        .delete_file(
            &package,
            &gone,
            depot::domain::Timestamp::now(),
            &crate::support::ev(),
        )
        .await
        .unwrap();
    assert_eq!(registry.purge(100).await.unwrap().blobs, 1);
    let opened = registry.open(&gone, None).await;
    // Overtaken: the download locates again (an older duplicate may be the newest now).
    assert!(matches!(opened, Err(Error::NotFound(Missing::Overtaken))));
    assert!(!log.text().contains("missing"), "{}", log.text());

    // A live file without its bytes is an error, and says so.
    let (_, kept) = registry
        .locate(&anyone, &at(project, "kept.txt"), false)
        .await
        .unwrap();
    registry.blobs().delete(&kept.blob_key).await.unwrap();
    let opened = registry.open(&kept, None).await;
    assert!(matches!(opened, Err(Error::NotFound(Missing::Package))));
    assert!(
        log.text().contains("blob of a live file is missing"),
        "{}",
        log.text()
    );
}
