//! The storage seams and their backends: blob storage (`blob`: a core trait plus presign and
//! multipart capabilities; `fs`, `s3`), metadata cut by kind of record (`meta`; `sqlite`,
//! `dynamo`), the errors they speak (`error`), what the AWS stores share (`aws`) and the one
//! place keys are decided (`keys`).

mod aws;
pub mod blob;
mod cached_read;
pub mod dynamo;
pub mod error;
pub mod events;
pub mod fs;
pub mod keys;
pub mod meta;
pub mod private;
pub mod provision;
pub mod s3;
pub mod signing;
pub mod sqlite;
pub mod temp_files;

pub use blob::{
    Accept, BlobBody, BlobLocation, BlobStore, BodyMeter, ByteStream, Declared, Multipart, Presign,
    Presigned, ReceivedPart, StoredBlob,
};
pub use error::{Record, StoreError, StoreResult};
pub use events::{EventStore, HookStore};
pub use keys::{
    CHECKED_PREFIX, INLINE_PREFIX, STAGING_PREFIX, checked_key, committed_key, is_inline_key,
    new_blob_key, new_inline_key, session_blob_key, session_of_staging_key, session_of_upload_key,
    staging_key,
};
pub use meta::{
    CleanupStore, IdentityStore, MetaStore, PackageStore, ProtectionStore, PurgeStore,
    SettingsStore, TrustStore, UploadSessionStore, WebSessionStore,
};
