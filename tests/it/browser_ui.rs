//! The web UI in a real browser: `tests/browser/ui.mjs` (playwright-core driving Debian's
//! chromium, headless) against a real `depot serve` seeded here; screenshots of every page in
//! `target/ui-screenshots/`.

use crate::cli::{Server, admin};
use crate::support::prerequisites;
use std::path::Path;
use std::process::Command;

/// PUT `body` at the generic `file` of demo/app with `token`.
fn publish(server: &Server, token: &str, file: &str, body: &str) {
    let url = format!(
        "{}/api/v4/projects/demo%2Fapp/packages/generic/{file}",
        server.base
    );
    let out = Command::new("curl")
        .args([
            "-sf",
            "-H",
            &format!("PRIVATE-TOKEN: {token}"),
            "-X",
            "PUT",
            "--data-binary",
            body,
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "publish {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_ui_works_in_a_real_browser() {
    let playwright = prerequisites::browser().unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start();
    let owner = server.demo_token();
    publish(
        &server,
        &owner,
        "tool/1.0.0/bin/tool.txt",
        "the tool, version 1\n",
    );
    publish(&server, &owner, "old-tool/0.1/old.txt", "an old tool\n");
    publish(
        &server,
        &owner,
        "secret-tool/1.0/s.txt?status=hidden",
        "hidden\n",
    );
    let dir = server.dir.path().to_path_buf();
    admin(&dir, &["user", "create", "visitor"]);
    admin(&dir, &["member", "add", "visitor", "demo", "guest"]);
    let guest = admin(
        &dir,
        &[
            "token", "create", "personal", "--user", "visitor", "--scopes", "api",
        ],
    );
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/ui.mjs");
    let out = Command::new("node")
        .arg(&script)
        .env("DEPOT_URL", &server.base)
        .env("OWNER_TOKEN", &owner)
        .env("GUEST_TOKEN", guest["token"].as_str().unwrap())
        .env("SCREENSHOTS", &shots)
        .env("PLAYWRIGHT", &playwright)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.trim(), "OK");
    for page in [
        "01-home-anonymous",
        "05-package",
        "06-group-settings",
        "14-guest-package",
    ] {
        assert!(
            shots.join(format!("{page}.png")).exists(),
            "screenshot {page}"
        );
    }
}
