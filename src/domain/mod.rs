//! Domain types: parsed package coordinates, access vocabulary, records and timestamps.
//!
//! Everything here is plain data. Values are parsed once at the edge (`PackageName::parse`, ...)
//! and carried as typed values everywhere inside.

mod access;
mod cleanup;
mod coordinates;
mod digest;
mod events;
mod hooks;
mod listing;
mod names;
mod protection;
mod records;
mod time;
mod trust;
mod uploads;
mod versions;
mod web;

pub use access::{MembershipTarget, Role, Scope, TokenKind, Visibility};
pub use cleanup::{
    CLEANUP_EVERY_SECONDS, CleanupPlan, CleanupPolicy, CleanupReason, KEEP_N_DUPLICATED_VALUES,
    cleanup_plan,
};
pub use coordinates::{
    FileName, GroupRef, InvalidParams, PackageName, PackageVersion, ProjectRef, check_file_path,
};
pub use digest::Sha256Hex;
pub use events::{
    Actor, Event, EventDraft, EventFile, EventPackage, EventPlace, EventQuery, EventType,
    new_event_id,
};
pub use hooks::{Attempt, Delivery, DeliveryState, Hook, HookLog};
pub use listing::{
    COUNT_LIMIT, FileOrder, FileOrderBy, Listed, MAX_PER_PAGE, PackageOrder, PackageQuery, Page,
    parse_bool,
};
pub use names::{
    EXCEPTION_REGEX_MAX_CHARS, ExceptionRegex, RESERVED_TOP_LEVEL, RegexRefused, reserved_path,
    valid_path, valid_segment,
};
pub use protection::{
    Level, PACKAGE_TYPES, PATTERN_MAX_CHARS, ProtectLevel, Protected, ProtectionRule,
};
pub use records::{
    Downloads, Group, GroupSettings, LAST_USED_RESOLUTION_MS, Membership, NewFile, NewGroup,
    NewToken, NewUser, Package, PackageFile, PackageStatus, Project, Token, TokenGrant, TokenOwner,
    TokenParts, User,
};
pub use time::Timestamp;
pub use trust::{
    ClaimCondition, IDENTIFYING_CLAIMS, NewTrustRule, TrustRule, check_conditions, check_rule,
    glob_matches, valid_issuer, valid_public_issuer,
};
pub use uploads::{Refusal, SessionClaim, SessionState, StateParts, UploadSession};
pub use versions::{Rank, RankClass, VersionRef, latest_order};
pub use web::WebSession;
