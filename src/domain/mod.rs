//! Domain types: parsed package coordinates, access vocabulary, records and timestamps.
//!
//! Everything here is plain data. Values are parsed once at the edge (`PackageName::parse`, ...)
//! and carried as typed values everywhere inside.

mod access;
mod coordinates;
mod records;
mod time;

pub use access::{MembershipTarget, Role, Scope, TokenKind, Visibility};
pub use coordinates::{
    FileName, InvalidParams, PackageName, PackageVersion, ProjectRef, check_file_path,
};
pub use records::{
    Group, GroupSettings, Membership, NewFile, NewToken, Package, PackageFile, PackageStatus,
    Project, Token, User,
};
pub use time::Timestamp;
