//! Encode/decode pairs for every record the DynamoDB store keeps, one file per kind of record:
//! each `*_item` writes a whole item (key, `schema`, attributes) and its `*_from` reads it back,
//! the exact inverse (the round-trip tests hold them to it). Decoding fails only with
//! `Corrupt`, naming the item by `PK/SK`.

mod events;
mod identity;
mod packages;
mod people;
mod protection;
mod sessions;

pub use events::*;
pub use identity::*;
pub use packages::*;
pub use people::*;
pub use protection::*;
pub use sessions::*;
