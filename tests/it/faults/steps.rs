//! The fault matrix's rows (each step of each flow, and the service requests it meets) and the
//! bytes each flow publishes.

use crate::support::faults::{self, Fault, Matcher, Seen, Service, any, is_copy};

/// A file past the inline limit (a blob of its own): every flow but the small publishes.
static LARGE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    (0..depot::DEFAULT_INLINE_FILE_MAX as u32 + 1000)
        .map(|i| (i % 251) as u8)
        .collect()
});

/// A file its DynamoDB item keeps.
const SMALL: &[u8] = b"the bytes of a file that must arrive whole, or not at all";

/// What a case does: the flow whose step meets the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Publish,
    /// Duplicates allowed: a new package, no transaction.
    PublishNew,
    /// Duplicates allowed: a file of an existing package, no transaction.
    PublishExisting,
    /// As `PublishNew`, a small file (kept in its item, no S3 request).
    PublishNewSmall,
    /// As `PublishExisting`, a small file.
    PublishExistingSmall,
    DeletePackage,
    DeleteFile,
    PurgePackage,
    PurgeFile,
    /// An upload session without a declared SHA-256: staged, copied, sealed, read back.
    Commit,
    /// An upload session with one: its PUT checked by S3 on arrival at its final key.
    CommitChecked,
}

impl Flow {
    /// A publish with duplicates allowed (no transaction).
    pub(super) fn allows_duplicates(self) -> bool {
        use Flow::*;
        matches!(
            self,
            PublishNew | PublishExisting | PublishNewSmall | PublishExistingSmall
        )
    }

    pub(super) fn is_publish(self) -> bool {
        self == Flow::Publish || self.allows_duplicates()
    }

    /// A publish adding a file to a package that exists already.
    pub(super) fn adds_to_existing(self) -> bool {
        matches!(self, Flow::PublishExisting | Flow::PublishExistingSmall)
    }

    pub(super) fn commits(self) -> bool {
        matches!(self, Flow::Commit | Flow::CommitChecked)
    }

    pub(super) fn data(self) -> &'static [u8] {
        match self {
            Flow::PublishNewSmall | Flow::PublishExistingSmall => SMALL,
            _ => &LARGE,
        }
    }
}

/// One step of a flow: the requests of one service that the fault meets.
#[derive(Clone)]
pub(super) struct Step {
    pub(super) name: &'static str,
    pub(super) flow: Flow,
    pub(super) service: Service,
    pub(super) matcher: Matcher,
}

/// DynamoDB requests of `operation` whose body holds `needle`.
fn ddb(operation: &'static str, needle: &'static str) -> (Service, Matcher) {
    (Service::DynamoDb, faults::dynamo(operation, needle))
}

/// S3 requests `method` on keys under `prefix`, where `also` holds.
fn obj(method: &'static str, prefix: &'static str, also: fn(&Seen) -> bool) -> (Service, Matcher) {
    (Service::S3, faults::s3(method, prefix, also))
}

fn not_copy(s: &Seen) -> bool {
    !is_copy(s)
}

pub(super) fn steps() -> Vec<Step> {
    use Flow::*;
    const WRITE: &str = "TransactWriteItems";
    // One step a line: the matrix's rows.
    #[rustfmt::skip]
    let table = [
        ("publish: S3 PutObject of the blob", Publish, obj("PUT", "blobs/", any)),
        ("publish: DynamoDB publish transaction", Publish, ddb(WRITE, "")),
        ("publish, new package: DynamoDB PutItem of its id alias", PublishNew, ddb("PutItem", "PACKAGE#")),
        ("publish, new package: DynamoDB PutItem of the file", PublishNew, ddb("PutItem", "FILE#")),
        ("publish, new package: DynamoDB PutItem of the package", PublishNew, ddb("PutItem", "LIST_PK")),
        ("publish, existing package: DynamoDB PutItem of the file", PublishExisting, ddb("PutItem", "FILE#")),
        ("publish, new package, small file: DynamoDB PutItem of the file with its bytes", PublishNewSmall, ddb("PutItem", "FILE#")),
        ("publish, existing package, small file: DynamoDB PutItem of the file with its bytes", PublishExistingSmall, ddb("PutItem", "FILE#")),
        ("package delete: DynamoDB delete transaction", DeletePackage, ddb(WRITE, "")),
        ("file delete: DynamoDB delete transaction", DeleteFile, ddb(WRITE, "")),
        ("purge (package): S3 DeleteObject of the blob", PurgePackage, obj("DELETE", "blobs/", any)),
        ("purge (package): DynamoDB forget transactions", PurgePackage, ddb(WRITE, "")),
        ("purge (file): S3 DeleteObject of the blob", PurgeFile, obj("DELETE", "blobs/", any)),
        ("purge (file): DynamoDB forget transaction", PurgeFile, ddb(WRITE, "")),
        ("commit: S3 HEAD of the staged object", Commit, obj("HEAD", "uploads/", any)),
        ("commit: DynamoDB claim of the session", Commit, ddb("UpdateItem", "\":now\"")),
        ("commit: S3 HEAD of the session's blob", Commit, obj("HEAD", "blobs/", any)),
        ("commit: S3 CopyObject to the blob", Commit, obj("PUT", "blobs/", is_copy)),
        ("commit: S3 PutObject sealing the staged object", Commit, obj("PUT", "uploads/", not_copy)),
        ("commit: S3 GET of the blob (measured)", Commit, obj("GET", "blobs/", any)),
        ("commit: DynamoDB publish + settle transaction", Commit, ddb(WRITE, "")),
        ("commit, checked upload: S3 HEAD of the checked object", CommitChecked, obj("HEAD", "checked/", any)),
        ("commit, checked upload: DynamoDB claim of the session", CommitChecked, ddb("UpdateItem", "\":now\"")),
        ("commit, checked upload: DynamoDB publish + settle transaction", CommitChecked, ddb(WRITE, "")),
    ];
    table
        .into_iter()
        .map(|(name, flow, (service, matcher))| Step {
            name,
            flow,
            service,
            matcher,
        })
        .collect()
}

pub(super) const FAULTS: [Fault; 5] = [
    Fault::Throttle,
    Fault::ServerError,
    Fault::Timeout,
    Fault::DropBefore,
    Fault::DropAfter,
];
