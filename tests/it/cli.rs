//! End to end against a real `depot serve` process: the admin CLI (also while the server runs),
//! GitLab's documented curl and wget commands run verbatim, and python-gitlab.

use crate::support::prerequisites::venv_tool;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEPOT: &str = env!("CARGO_BIN_EXE_depot");

/// A `depot serve` child on a free loopback port; killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    banner: Vec<String>,
    pub(crate) dir: tempfile::TempDir,
}

impl Server {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir)
    }

    fn start_in(dir: tempfile::TempDir) -> Self {
        Self::start_with(dir, &[], &[])
    }

    /// `depot serve` with extra flags and environment (e.g. `--store aws`).
    pub(crate) fn start_with(
        dir: tempfile::TempDir,
        flags: &[String],
        env: &[(&str, &str)],
    ) -> Self {
        let data = dir.path().to_path_buf();
        Self::start_command(Command::new(DEPOT), dir, &data, flags, env)
    }

    /// `depot serve` started by a shell that first sets `umask`, on a data directory `data`
    /// inside `dir` that it creates.
    fn start_under_umask(dir: tempfile::TempDir, umask: &str) -> Self {
        let mut shell = Command::new("sh");
        shell.args(["-c", &format!("umask {umask} && exec \"$@\""), "sh", DEPOT]);
        let data = dir.path().join("data");
        Self::start_command(shell, dir, &data, &[], &[])
    }

    /// `command` (which runs `depot` with the arguments it is given) serving `data`.
    pub(crate) fn start_command(
        mut command: Command,
        dir: tempfile::TempDir,
        data: &Path,
        flags: &[String],
        env: &[(&str, &str)],
    ) -> Self {
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(flags)
            .envs(env.iter().copied())
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start depot serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        // A first start ends with the curl pair; a later one with the hint for new tokens.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            let done = line.starts_with("New token:")
                || (line.trim().starts_with("curl ")
                    && banner
                        .iter()
                        .any(|l: &String| l.trim().starts_with("curl ")));
            banner.push(line);
            if done {
                break;
            }
        }
        let base = banner
            .first()
            .and_then(|l| l.strip_prefix("depot is serving "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no banner from depot serve: {banner:?}"))
            .to_string();
        Server {
            child,
            base,
            banner,
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap()
    }

    /// The curl commands the banner printed.
    fn curls(&self) -> Vec<String> {
        self.banner
            .iter()
            .map(|l| l.trim().to_string())
            .filter(|l| l.starts_with("curl "))
            .collect()
    }

    pub(crate) fn demo_token(&self) -> String {
        self.banner
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with("dpat-"))
            .unwrap_or_else(|| panic!("no token in banner {:?}", self.banner))
            .to_string()
    }

    pub(crate) fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `depot admin --data-dir DIR args...`; the JSON line it prints.
pub(crate) fn admin(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(DEPOT)
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "depot admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout:?}");
    serde_json::from_str(stdout.trim()).unwrap()
}

fn admin_fails(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(DEPOT)
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "depot admin {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sh(cwd: &Path, script: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A client that sends half its headers is cut off after --header-timeout; one that stops
/// mid-body is refused after --body-idle-timeout, and its temp file goes with it.
#[test]
fn slow_clients_are_cut_off() {
    use std::io::{Read, Write};
    let flags = [
        "--header-timeout".to_string(),
        "1".to_string(),
        "--body-idle-timeout".to_string(),
        "1".to_string(),
    ];
    let server = Server::start_with(tempfile::tempdir().unwrap(), &flags, &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let read_until_closed = |tcp: &mut std::net::TcpStream| {
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf) {
                Ok(0) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) => panic!("still open after 10 s ({e}); read {seen:?}"),
            }
        }
    };
    let mut half = std::net::TcpStream::connect(&addr).unwrap();
    half.write_all(b"PUT /api/v4/projects/1/packages/generic/p/1/f HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    read_until_closed(&mut half);
    assert!(started.elapsed() < Duration::from_secs(5));

    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    let head = format!(
        "PUT /api/v4/projects/1/packages/generic/p/1/f.bin HTTP/1.1\r\nHost: x\r\n\
         PRIVATE-TOKEN: {}\r\nContent-Length: 1048576\r\n\r\n",
        server.demo_token()
    );
    stalled.write_all(head.as_bytes()).unwrap();
    stalled.write_all(&[7u8; 100 << 10]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while temp_files(server.dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let answer = String::from_utf8_lossy(&read_until_closed(&mut stalled)).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("The request body ended early"),
        "{answer}"
    );
    assert_eq!(temp_files(server.dir.path()), Vec::<String>::new());
    assert!(
        server.log().contains("no body data for 1 s"),
        "{}",
        server.log()
    );
}

/// The temp files in `dir`'s `tmp/`.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("tmp"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// An upload cut off by `kill -9` leaves its temp file; the next start sweeps it at once (it
/// used to keep any younger than an hour), and the purge loop sweeps one no request holds.
#[test]
fn temp_files_of_a_killed_server_are_swept() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--purge-interval".into(), "1".into()],
        &[],
    );
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("big.bin"), vec![7u8; 4 << 20]).unwrap();
    let url = format!(
        "{}/api/v4/projects/1/packages/generic/slow/1.0/big.bin",
        server.base
    );
    let mut upload = Command::new("curl")
        .args(["-s", "--limit-rate", "64k", "-H"])
        .arg(format!("PRIVATE-TOKEN: {}", server.demo_token()))
        .arg("--upload-file")
        .arg(work.path().join("big.bin"))
        .arg(&url)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while temp_files(server.dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "no temp file appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = server.stop();
    let _ = upload.kill();
    let _ = upload.wait();
    assert_eq!(
        temp_files(dir.path()).len(),
        1,
        "the killed upload's temp file"
    );
    let again = Server::start_with(dir, &["--purge-interval".into(), "1".into()], &[]);
    assert_eq!(temp_files(again.dir.path()), Vec::<String>::new());
    // A leftover of a process that is gone, found by the purge loop while serving.
    let leftover = again.dir.path().join("tmp").join("4294967295.0a0b.part");
    std::fs::write(&leftover, b"x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while leftover.exists() {
        assert!(
            Instant::now() < deadline,
            "the purge loop left {leftover:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every directory under `root` (itself included) and every file, with its permission bits.
fn modes_under(root: &Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![];
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::metadata(&path).unwrap();
        out.push((path.clone(), meta.permissions().mode() & 0o777));
        if meta.is_dir() {
            todo.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

/// Under the common umask 022, the data directory, `blobs/`, `tmp/` and `uploads/` are 0700 and
/// the database (with its WAL), the signing key and every blob 0600.
#[test]
fn data_is_private_whatever_the_umask() {
    let server = Server::start_under_umask(tempfile::tempdir().unwrap(), "022");
    let curls = server.curls();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("file.txt"), "private bytes\n").unwrap();
    let (ok, out, err) = sh(work.path(), &curls[0], &[]);
    assert!(ok && out.contains("201"), "{out} {err}");
    // An upload session stages its bytes under uploads/.
    let session = format!(
        "curl -s -X POST -H 'PRIVATE-TOKEN: {}' -H 'Content-Type: application/json' \
         --data '{{\"size\": 5}}' {}/api/v4/projects/1/packages/generic/big/1.0/b.bin/uploads",
        server.demo_token(),
        server.base
    );
    let (ok, out, err) = sh(work.path(), &session, &[]);
    assert!(ok && out.contains("\"pending\""), "{out} {err}");
    let upload: Value = serde_json::from_str(&out).unwrap();
    let put = format!(
        "printf hello | curl -s -o /dev/null -w '%{{http_code}}' -X PUT --data-binary @- '{}'",
        upload["upload"]["url"].as_str().unwrap()
    );
    let (ok, code, err) = sh(work.path(), &put, &[]);
    assert!(ok && code == "200", "{code} {err}");
    let data = server.dir.path().join("data");
    let modes = modes_under(&data);
    for want in ["blobs", "tmp", "uploads", "depot.sqlite3", "signing.key"] {
        assert!(
            modes.iter().any(|(p, _)| p.file_name().unwrap() == want),
            "{want} missing: {modes:?}"
        );
    }
    for (path, mode) in &modes {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} is {mode:o}", path.display());
    }
    assert!(modes.len() >= 8, "{modes:?}");
}

#[test]
fn first_start_prints_a_working_curl_pair_and_later_starts_print_no_secret() {
    let server = Server::start();
    let token = server.demo_token();
    let text = server.banner.join("\n");
    let curls: Vec<&str> = server
        .banner
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("curl "))
        .collect();
    assert_eq!(curls.len(), 2, "{text}");
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("file.txt"), "hello depot\n").unwrap();
    let (ok, out, err) = sh(work.path(), curls[0], &[]);
    assert!(ok, "{err}");
    assert_eq!(out, r#"{"message":"201 Created"}"#);
    let (ok, out, err) = sh(work.path(), curls[1], &[]);
    assert!(ok, "{err}");
    assert_eq!(out, "hello depot\n");

    let dir = server.stop();
    let again = Server::start_in(dir);
    let text = again.banner.join("\n");
    assert!(
        !text.contains(&token) && !text.contains("dpat-"),
        "a later start shows no secret: {text}"
    );
    // The data survived the restart.
    let url = format!(
        "{}/api/v4/projects/1/packages/generic/my_package/0.0.1/file.txt",
        again.base
    );
    let (ok, out, _) = sh(
        work.path(),
        &format!("curl -s --header 'PRIVATE-TOKEN: {token}' '{url}'"),
        &[],
    );
    assert!(ok);
    assert_eq!(out, "hello depot\n");
}

#[test]
fn admin_commands_print_json_and_work_while_serving() {
    let server = Server::start();
    let dir = server.dir.path().to_path_buf();
    let group = admin(&dir, &["group", "create", "acme"]);
    assert_eq!(group["full_path"], "acme");
    admin(&dir, &["group", "create", "acme/tools"]);
    let project = admin(&dir, &["project", "create", "acme/tools/cli", "--public"]);
    assert_eq!(project["path_with_namespace"], "acme/tools/cli");
    assert_eq!(project["visibility"], "public");
    let pid = project["id"].as_i64().unwrap();
    assert_eq!(
        admin(&dir, &["user", "create", "alice"])["username"],
        "alice"
    );
    let member = admin(&dir, &["member", "add", "alice", "acme", "developer"]);
    assert_eq!(member["access_level"], 30);
    let pat = admin(
        &dir,
        &[
            "token",
            "create",
            "personal",
            "--user",
            "alice",
            "--scopes",
            "api,read_api",
            "--expires-at",
            "2099-01-01",
        ],
    );
    let secret = pat["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("dpat-"));
    assert_eq!(pat["expires_at"], "2099-01-01T00:00:00.000Z");
    let deploy = admin(
        &dir,
        &[
            "token",
            "create",
            "deploy",
            "--project",
            "acme/tools/cli",
            "--scopes",
            "read_package_registry,write_package_registry",
        ],
    );
    assert!(deploy["token"].as_str().unwrap().starts_with("ddt-"));
    let job = admin(
        &dir,
        &[
            "token",
            "create",
            "job",
            "--user",
            "alice",
            "--project",
            "acme/tools/cli",
            "--ttl",
            "1h",
        ],
    );
    assert!(job["token"].as_str().unwrap().starts_with("djt-"));
    let settings = admin(
        &dir,
        &[
            "settings",
            "set",
            "acme/tools",
            "--duplicates-allowed",
            "false",
            "--exception-regex",
            "nightly-.*",
        ],
    );
    assert_eq!(settings["generic_duplicates_allowed"], false);
    assert_eq!(settings["generic_duplicate_exception_regex"], "nightly-.*");

    // The running server sees the new records at once (it never kept their absence).
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f.bin"), "v1").unwrap();
    let url = format!(
        "{}/api/v4/projects/{pid}/packages/generic/tool/1.0/f.bin",
        server.base
    );
    let put = format!("curl -s -H 'PRIVATE-TOKEN: {secret}' --upload-file f.bin '{url}'");
    assert_eq!(sh(work.path(), &put, &[]).1, r#"{"message":"201 Created"}"#);
    assert_eq!(
        sh(work.path(), &put, &[]).1,
        r#"{"message":"400 Bad request - Duplicate package is not allowed"}"#
    );
    let revoked = admin(&dir, &["token", "revoke", &pat["id"].to_string()]);
    assert_eq!(revoked["revoked"], true);
    // Within the server's identity cache lifetime (the token was read a moment ago).
    let bound = std::time::Instant::now() + depot::auth::IDENTITY_CACHE_TTL;
    let mut answer = sh(work.path(), &put, &[]).1;
    while !answer.contains("Token was revoked") && std::time::Instant::now() < bound {
        std::thread::sleep(std::time::Duration::from_millis(100));
        answer = sh(work.path(), &put, &[]).1;
    }
    assert!(answer.contains("Token was revoked"), "{answer}");

    // Mistakes are refused with a message and a failing exit code.
    assert!(admin_fails(&dir, &["project", "create", "nogroup/x"]).contains("not found"));
    assert!(admin_fails(&dir, &["project", "create", "lonely"]).contains("<group>/<name>"));
    assert!(admin_fails(&dir, &["group", "create", "acme"]).contains("already exists"));
    assert!(admin_fails(&dir, &["member", "add", "alice", "acme", "boss"]).contains("role"));
    assert!(
        admin_fails(
            &dir,
            &[
                "token",
                "create",
                "personal",
                "--user",
                "alice",
                "--scopes",
                "write_package_registry"
            ]
        )
        .contains("not valid")
    );
    assert!(
        admin_fails(&dir, &["settings", "set", "acme", "--exception-regex", "("])
            .contains("invalid regexp")
    );
    assert!(admin_fails(&dir, &["token", "revoke", "9999"]).contains("not found"));
}

/// GitLab's documented commands, byte for byte, with the variables they use.
#[test]
fn gitlab_documented_curl_and_wget_commands_run_verbatim() {
    let server = Server::start();
    let dir = server.dir.path().to_path_buf();
    let token = server.demo_token();
    // The docs use project 24: create projects until one has that id.
    let mut id = 1;
    let mut n = 0;
    while id < 24 {
        n += 1;
        id = admin(&dir, &["project", "create", &format!("demo/p{n}")])["id"]
            .as_i64()
            .unwrap();
    }
    assert_eq!(id, 24);
    let job = admin(
        &dir,
        &[
            "token",
            "create",
            "job",
            "--user",
            "demo",
            "--project",
            "demo/app",
        ],
    );
    let job_token = job["token"].as_str().unwrap().to_string();
    let api = format!("{}/api/v4", server.base);
    let env = [
        ("TOKEN", token.as_str()),
        ("URL", server.base.as_str()),
        ("CI_JOB_TOKEN", job_token.as_str()),
        ("CI_API_V4_URL", api.as_str()),
        ("CI_PROJECT_ID", "1"),
    ];
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("path/to")).unwrap();
    std::fs::write(work.path().join("path/to/file.txt"), "documented\n").unwrap();

    let upload = r#"curl --header "PRIVATE-TOKEN: $TOKEN" --upload-file path/to/file.txt \
  "$URL/api/v4/projects/24/packages/generic/my_package/0.0.1/file.txt""#;
    let (ok, out, err) = sh(work.path(), upload, &env);
    assert!(ok, "{err}");
    assert_eq!(out, r#"{"message":"201 Created"}"#);

    let download = r#"curl --header "PRIVATE-TOKEN: $TOKEN" "$URL/api/v4/projects/24/packages/generic/my_package/0.0.1/file.txt""#;
    assert_eq!(sh(work.path(), download, &env).1, "documented\n");
    let basic = r#"curl --user "user:$TOKEN" "$URL/api/v4/projects/24/packages/generic/my_package/0.0.1/file.txt""#;
    assert_eq!(sh(work.path(), basic, &env).1, "documented\n");

    let ci_upload = r#"curl --header "JOB-TOKEN: $CI_JOB_TOKEN" --upload-file path/to/file.txt \
  "${CI_API_V4_URL}/projects/${CI_PROJECT_ID}/packages/generic/my_package/0.0.1/file.txt""#;
    let (ok, out, err) = sh(work.path(), ci_upload, &env);
    assert!(ok, "{err}");
    assert_eq!(out, r#"{"message":"201 Created"}"#);
    let wget = r#"wget --header="JOB-TOKEN: $CI_JOB_TOKEN" ${CI_API_V4_URL}/projects/${CI_PROJECT_ID}/packages/generic/my_package/0.0.1/file.txt"#;
    let fetched = tempfile::tempdir().unwrap();
    let (ok, _, err) = sh(fetched.path(), wget, &env);
    assert!(ok, "wget failed: {err}");
    assert_eq!(
        std::fs::read_to_string(fetched.path().join("file.txt")).unwrap(),
        "documented\n"
    );
}

#[test]
fn python_gitlab_uploads_and_downloads() {
    let server = Server::start();
    run_python_gitlab(
        "python_gitlab.py",
        &server,
        &server.demo_token(),
        "demo/app",
    );
}

/// The one bootstrap command, then onboarding over HTTP with its token only; and trust rules
/// from the command line.
#[test]
fn bootstrap_then_everything_over_http() {
    let server = Server::start();
    let dir = server.dir.path().to_path_buf();
    let made = admin(&dir, &["bootstrap", "root"]);
    assert_eq!(
        (
            made["user"]["username"].clone(),
            made["user"]["is_admin"].clone()
        ),
        (json!("root"), json!(true))
    );
    let token = made["token"]["token"].as_str().unwrap().to_string();
    // A second bootstrap of the same administrator is a new token; a plain user is refused.
    assert_ne!(
        admin(&dir, &["bootstrap", "root"])["token"]["token"],
        json!(token)
    );
    assert!(admin_fails(&dir, &["bootstrap", "demo"]).contains("not an administrator"));
    let script = format!(
        r#"set -e
        api="{base}/api/v4"; auth="PRIVATE-TOKEN: {token}"
        curl -sf -H "$auth" -X POST "$api/users" --data "username=alice&name=Alice&email=a@example.com&force_random_password=true" > /dev/null
        alice=$(curl -sf -H "$auth" "$api/users?username=alice" | sed 's/.*"id":\([0-9]*\).*/\1/')
        curl -sf -H "$auth" -X POST "$api/groups" --data "name=Acme&path=acme" > /dev/null
        group=$(curl -sf -H "$auth" "$api/groups/acme" | sed 's/^{{"id":\([0-9]*\).*/\1/')
        curl -sf -H "$auth" -X POST "$api/projects" --data "name=tool&namespace_id=$group" > /dev/null
        curl -sf -H "$auth" -X POST "$api/groups/acme/members" --data "user_id=$alice&access_level=30" > /dev/null
        curl -sf -H "$auth" -X POST "$api/users/$alice/personal_access_tokens" --data "name=ci&scopes[]=api" | sed 's/.*"token":"\([^"]*\)".*/\1/'
        "#,
        base = server.base
    );
    let (ok, out, err) = sh(&dir, &script, &[]);
    assert!(ok, "onboarding over HTTP failed: {out} {err}");
    let alice = out.trim();
    assert!(alice.starts_with("dpat-"), "{out}");
    let put = format!(
        "{}/api/v4/projects/acme%2Ftool/packages/generic/t/1.0/t.txt",
        server.base
    );
    let (ok, _, err) = sh(
        &dir,
        &format!("echo hi | curl -sf -H 'PRIVATE-TOKEN: {alice}' --upload-file - '{put}'"),
        &[],
    );
    assert!(ok, "alice could not publish: {err}");

    let rule = admin(
        &dir,
        &[
            "trust",
            "add",
            "acme/tool",
            "--issuer",
            "https://gitlab.example.com",
            "--audience",
            "depot",
            "--claim",
            "project_path=team/tool",
            "--claim",
            "ref=v*",
            "--role",
            "maintainer",
        ],
    );
    assert_eq!(
        rule["conditions"],
        json!({"project_path": "team/tool", "ref": "v*"})
    );
    assert_eq!(rule["access_level"], 40);
    assert_eq!(
        admin(&dir, &["trust", "list", "acme/tool"])[0]["id"],
        rule["id"]
    );
    let id = rule["id"].to_string();
    admin(&dir, &["trust", "remove", &id]);
    assert_eq!(admin(&dir, &["trust", "list", "acme/tool"]), json!([]));
    let refused = admin_fails(
        &dir,
        &[
            "trust",
            "add",
            "acme/tool",
            "--issuer",
            "http://x.example",
            "--audience",
            "a",
        ],
    );
    assert!(refused.contains("must be https"), "{refused}");
}

/// python-gitlab's people calls: `auth()`, projects and groups read whole, `members_all`, a
/// deploy token made and used, and the caller's own token rotated.
#[test]
fn python_gitlab_manages_people() {
    let server = Server::start();
    run_python_gitlab(
        "python_gitlab_people.py",
        &server,
        &server.demo_token(),
        "demo/app",
    );
}

/// A client that keeps its connections (python-gitlab's `requests.Session`) survives uploads
/// refused before their body is read: 100 rounds, no connection error.
#[test]
fn refused_uploads_do_not_break_kept_connections() {
    let flags = ["--max-file-size".to_string(), "64KiB".to_string()];
    let server = Server::start_with(tempfile::tempdir().unwrap(), &flags, &[]);
    run_python_gitlab("keep_alive.py", &server, &server.demo_token(), "1");
}

/// Run a python-gitlab script from `tests/clients` against `server`; it prints OK.
fn run_python_gitlab(script: &str, server: &Server, token: &str, project: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = Command::new(venv_tool("python"))
        .arg(&script)
        .args([&server.base, token, project])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{} failed:\n{stdout}\n{stderr}",
        script.display()
    );
    assert_eq!(stdout.trim(), "OK");
}

/// Wait (bounded) until `count()` is `expected`; the last count seen.
async fn eventually<F, Fut>(expected: usize, mut count: F) -> usize
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = count().await;
        if n == expected || std::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Packages API through python-gitlab on the embedded stores, then the background purge
/// removes exactly the deleted package's two files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_gitlab_lists_and_deletes_packages() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--purge-interval".to_string(), "1".to_string()],
        &[],
    );
    run_python_gitlab(
        "python_gitlab_packages.py",
        &server,
        &server.demo_token(),
        "demo/app",
    );
    let data = server.dir.path().to_path_buf();
    let left = eventually(104, || {
        let data = data.clone();
        async move {
            depot::store::fs::count_files(&data.join("blobs"))
                + crate::support::inline_bodies(&data)
        }
    })
    .await;
    assert_eq!(
        left, 104,
        "106 files uploaded, the 2 of the deleted package purged"
    );
}

#[test]
fn no_token_ever_appears_in_a_log_line() {
    let server = Server::start();
    let token = server.demo_token();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f.txt"), "x").unwrap();
    let url = format!(
        "{}/api/v4/projects/demo%2Fapp/packages/generic/p/1.0/f.txt",
        server.base
    );
    for cmd in [
        format!("curl -s -H 'PRIVATE-TOKEN: {token}' --upload-file f.txt '{url}'"),
        format!("curl -s --upload-file f.txt '{url}?private_token={token}'"),
        format!("curl -s -H 'Authorization: Bearer {token}' '{url}'"),
        format!("curl -s --user 'u:{token}' '{url}'"),
        format!("curl -s -H 'PRIVATE-TOKEN: {token}x' '{url}'"),
        format!("curl -s '{url}?private_token={token}&job_token={token}'"),
    ] {
        assert!(sh(work.path(), &cmd, &[]).0, "{cmd}");
    }
    let log = server.log();
    assert!(
        log.contains("status=201"),
        "requests are logged at all: {log}"
    );
    assert!(
        log.lines().filter(|l| l.contains("request")).count() >= 6,
        "{log}"
    );
    let hex = token.trim_start_matches("dpat-");
    assert!(
        !log.contains(&token) && !log.contains(hex),
        "a token leaked into the log"
    );
}

/// Credentials and settings the AWS SDK reads, pointed at nothing real.
pub(crate) const EMULATOR_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// `--store aws` flags for `bucket` on `s3` and a fresh table on the shared DynamoDB Local.
async fn aws_store_flags(s3: &crate::support::s3::S3Emulator, bucket: &str) -> Vec<String> {
    let (_, table) = crate::support::dynamo::DynamoEmulator::shared()
        .fresh_table()
        .await;
    aws_flags(s3, &table, bucket)
}

/// `--store aws` flags for `table` on the shared DynamoDB Local and `bucket` on `s3` (either
/// may not exist yet).
pub(crate) fn aws_flags(
    s3: &crate::support::s3::S3Emulator,
    table: &str,
    bucket: &str,
) -> Vec<String> {
    let dynamo = crate::support::dynamo::DynamoEmulator::shared();
    [
        "--store",
        "aws",
        "--table",
        table,
        "--bucket",
        bucket,
        "--s3-endpoint",
        &s3.endpoint,
        "--dynamodb-endpoint",
        &dynamo.endpoint,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_and_admin_on_the_aws_stores() {
    let s3 = crate::support::s3::S3Emulator::start().await;
    let bucket = s3.bucket("depot-cli").await;
    let flags = aws_store_flags(&s3, &bucket).await;
    let table = &flags[3];
    let server = Server::start_with(tempfile::tempdir().unwrap(), &flags, &EMULATOR_ENV);
    assert!(
        server.banner[0].contains(&format!("table {table}, bucket {bucket}")),
        "{:?}",
        server.banner
    );
    // The first start on an empty table creates the demo data; its curl pair works.
    let curls = server.curls();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("file.txt"), "on aws\n").unwrap();
    assert_eq!(
        sh(work.path(), &curls[0], &[]).1,
        r#"{"message":"201 Created"}"#
    );
    assert_eq!(sh(work.path(), &curls[1], &[]).1, "on aws\n");
    // A small file: kept in its DynamoDB item, nothing in the bucket.
    let dynamo = crate::support::dynamo::DynamoEmulator::shared().client();
    assert_eq!(
        crate::support::dynamo::items_with(&dynamo, table, "content").await,
        1,
        "the file is kept in its item"
    );
    assert_eq!(s3.keys(&bucket).await.len(), 0, "no blob for a small file");

    // depot admin provisions the same stores while the server runs.
    let admin_aws = |args: &[&str]| {
        let out = Command::new(DEPOT)
            .arg("admin")
            .args(&flags)
            .args(args)
            .envs(EMULATOR_ENV)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "depot admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    admin_aws(&["group", "create", "acme"]);
    let pid = admin_aws(&["project", "create", "acme/tool"])["id"]
        .as_i64()
        .unwrap();
    admin_aws(&["user", "create", "ci"]);
    admin_aws(&["member", "add", "ci", "acme", "developer"]);
    let token = admin_aws(&[
        "token", "create", "personal", "--user", "ci", "--scopes", "api",
    ])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!(
        "{}/api/v4/projects/{pid}/packages/generic/tool/1.0/file.txt",
        server.base
    );
    let put = format!(
        "curl -s -H 'PRIVATE-TOKEN: {token}' --upload-file file.txt '{url}?select=package_file'"
    );
    let record: Value = serde_json::from_str(&sh(work.path(), &put, &[]).1).unwrap();
    assert_eq!(record["file_store"], 2, "object storage");
    assert_eq!(record["size"], 7);
    let get = format!("curl -s --user 'ci:{token}' '{url}'");
    assert_eq!(sh(work.path(), &get, &[]).1, "on aws\n");
    assert_eq!(
        crate::support::dynamo::items_with(&dynamo, table, "content").await,
        2
    );
    assert_eq!(s3.keys(&bucket).await.len(), 0);
}

/// python-gitlab's downloads follow depot's redirect to a presigned S3 URL for files above the
/// inline threshold (its uploads are never redirected).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_gitlab_follows_download_redirects_on_the_aws_stores() {
    let s3 = crate::support::s3::S3Emulator::start().await;
    let bucket = s3.bucket("depot-redirect").await;
    let mut flags = aws_store_flags(&s3, &bucket).await;
    flags.extend(["--inline-download-max".to_string(), "1KiB".to_string()]);
    let server = Server::start_with(tempfile::tempdir().unwrap(), &flags, &EMULATOR_ENV);
    run_python_gitlab(
        "python_gitlab.py",
        &server,
        &server.demo_token(),
        "demo/app",
    );
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("method=GET") && l.contains("status=302")),
        "the 300 KB downloads were redirected: {log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("method=GET") && l.contains("status=200")),
        "the small one came inline: {log}"
    );
}

/// The Packages API through python-gitlab on DynamoDB Local + S3, and the purge after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_gitlab_lists_and_deletes_packages_on_the_aws_stores() {
    let s3 = crate::support::s3::S3Emulator::start().await;
    let bucket = s3.bucket("depot-pygl").await;
    let mut flags = aws_store_flags(&s3, &bucket).await;
    flags.extend(["--purge-interval".to_string(), "1".to_string()]);
    let server = Server::start_with(tempfile::tempdir().unwrap(), &flags, &EMULATOR_ENV);
    run_python_gitlab(
        "python_gitlab_packages.py",
        &server,
        &server.demo_token(),
        "demo/app",
    );
    let (dynamo, table) = (
        crate::support::dynamo::DynamoEmulator::shared().client(),
        flags[3].clone(),
    );
    let left = eventually(104, || async {
        s3.keys(&bucket).await.len()
            + crate::support::dynamo::items_with(&dynamo, &table, "content").await
    })
    .await;
    assert_eq!(
        left, 104,
        "106 files uploaded, the 2 of the deleted package purged"
    );
}
