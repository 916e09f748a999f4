//! A 201 means durable, proved on the write order of a real `depot serve` rather than assumed:
//! the server runs under `strace`, a publish is sent, and the system calls it made are checked
//! against what a power cut needs (POSIX: data is durable after its `fsync`/`fdatasync`, a
//! new name after its directory's `fsync`). Before the 201 is written: the blob's bytes are
//! synced before they get their name, that name is synced before the record is written to
//! SQLite's WAL, and the WAL is synced. A power cut at any point then loses the publish whole
//! (no 201 was sent) or keeps it whole.

use crate::cli::Server;
use crate::support::prerequisites::on_path;
use std::collections::HashMap;
use std::process::Command;

const DEPOT: &str = env!("CARGO_BIN_EXE_depot");

/// One traced system call: where it started and ended in the trace, its name and its text
/// (arguments with `-y`'s file names, and result).
#[derive(Debug, Clone)]
struct Call {
    start: usize,
    end: usize,
    name: String,
    text: String,
}

/// The calls of an `strace -f` log, joining `<unfinished ...>` with `<... resumed>` halves.
fn calls(trace: &str) -> Vec<Call> {
    let mut open: HashMap<String, (usize, String, String)> = HashMap::new();
    let mut calls = Vec::new();
    for (i, line) in trace.lines().enumerate() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(resumed) = rest.strip_prefix("<... ") {
            if let Some((start, name, text)) = open.remove(pid) {
                let tail = resumed.split_once("resumed>").map_or("", |(_, t)| t);
                calls.push(Call {
                    start,
                    end: i,
                    name,
                    text: format!("{text}{tail}"),
                });
            }
            continue;
        }
        let Some((name, _)) = rest.split_once('(') else {
            continue;
        };
        let name = name.to_string();
        match rest.strip_suffix(" <unfinished ...>") {
            Some(text) => {
                open.insert(pid.to_string(), (i, name, text.to_string()));
            }
            None => calls.push(Call {
                start: i,
                end: i,
                name,
                text: rest.to_string(),
            }),
        }
    }
    calls.sort_by_key(|c| c.start);
    calls
}

fn is_sync(c: &Call) -> bool {
    c.name == "fsync" || c.name == "fdatasync"
}

/// The first call after line `after` that `matches`, or a panic naming `what` with the trace.
fn first<'a>(
    calls: &'a [Call],
    after: usize,
    what: &str,
    matches: impl Fn(&Call) -> bool,
) -> &'a Call {
    calls
        .iter()
        .find(|c| c.start > after && matches(c))
        .unwrap_or_else(|| panic!("no {what} after line {after}:\n{calls:#?}"))
}

#[test]
fn a_201_is_durable_before_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trace = dir.path().join("serve.trace");
    let large = dir.path().join("large.bin");
    std::fs::write(&large, vec![7u8; 64 << 10]).unwrap();
    let mut strace = on_path("strace");
    strace
        .args(["-f", "-qq", "-y", "-s", "24", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat,write,writev,sendto,sendmsg,pwrite64",
            DEPOT,
        ]);
    let server = Server::start_command(strace, dir, &data, &[], &[]);
    let token = server.demo_token();
    let url = format!(
        "{}/api/v4/projects/demo%2Fapp/packages/generic/durable/1.0/file.bin",
        server.base
    );
    // A file above the inline limit goes to a blob of its own; a small one into its record.
    for body in [format!("@{}", large.display()), "small bytes".to_string()] {
        let out = on_path("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
            .args(["-H", &format!("PRIVATE-TOKEN: {token}")])
            .args(["--data-binary", &body])
            .arg(url.replace("file.bin", &format!("file{}.bin", body.len())))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "201");
    }
    // Stop depot (strace's child) and let strace finish its log.
    let strace_pid = server.child.id().to_string();
    Command::new("pkill")
        .args(["-TERM", "-P", &strace_pid])
        .status()
        .unwrap();
    let mut server = server;
    let _ = server.child.wait();
    let log = std::fs::read_to_string(&trace).unwrap();
    let calls = calls(&log);

    let named = first(&calls, 0, "a blob getting its name", |c| {
        matches!(
            c.name.as_str(),
            "rename" | "renameat" | "renameat2" | "link" | "linkat"
        ) && c.text.contains("/blobs/")
    });
    let temp = named
        .text
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("no source path in {named:?}"))
        .to_string();
    let data_synced = calls
        .iter()
        .rfind(|c| is_sync(c) && c.text.contains(&format!("<{temp}>")) && c.end < named.start);
    assert!(
        data_synced.is_some(),
        "the blob's bytes are synced before it gets its name: {named:?}\n{calls:#?}"
    );
    let name_synced = first(&calls, named.end, "a sync of the blobs directory", |c| {
        is_sync(c) && c.text.contains("/blobs>")
    });
    let wal_written = first(&calls, named.end, "a write of the record to the WAL", |c| {
        c.name == "pwrite64" && c.text.contains("-wal>")
    });
    assert!(
        name_synced.end < wal_written.start,
        "the blob's name is durable before the record is written: {name_synced:?} {wal_written:?}"
    );
    let answered = first(&calls, 0, "the 201", |c| c.text.contains("HTTP/1.1 201"));
    assert_wal_synced(&calls, wal_written, answered, "the record");

    // The small file: no blob, its bytes and record in the WAL, synced before its 201.
    let second = first(&calls, answered.end, "the second 201", |c| {
        c.text.contains("HTTP/1.1 201")
    });
    let between = |c: &&Call| c.start > answered.end && c.end < second.start;
    assert!(
        !calls
            .iter()
            .filter(between)
            .any(|c| c.text.contains("/blobs/")),
        "a small file makes no blob: {calls:#?}"
    );
    let wal_written = first(
        &calls,
        answered.end,
        "a write of the small file's record",
        |c| c.name == "pwrite64" && c.text.contains("-wal>"),
    );
    assert_wal_synced(&calls, wal_written, second, "the small file");
}

/// `what`, written to the WAL by `written`, is durable (the WAL synced after it) before
/// `answered` sends its 201.
fn assert_wal_synced(calls: &[Call], written: &Call, answered: &Call, what: &str) {
    let synced = calls
        .iter()
        .find(|c| is_sync(c) && c.text.contains("-wal>") && c.start > written.start);
    assert!(
        synced.is_some_and(|s| s.end < answered.start),
        "{what} is durable (WAL synced) before the 201 is written: {synced:?} {answered:?}"
    );
}
