//! Who may do what: sites an admin registered (`sites`, each in an IANA
//! time zone: `timezone`), API keys with a scope and sites (`keys`), shared
//! read-only links (`links`), the dashboard's signed session (`session`),
//! and the secrets behind keys and links (`secret`). The rows are SeaORM
//! entities (`entity`): this is CRUD, not a hot path.

pub mod keys;
pub mod links;
mod secret;
pub mod session;
pub mod sites;
pub mod timezone;

use crate::event::FieldError;
use crate::store::StoreError;

/// Why an access operation failed: the caller's mistake (`Invalid`,
/// `Field`, `NotFound`, `Conflict`: a 4xx, or the admin command's message)
/// or the store's.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    Invalid(String),
    /// A value of a named field is wrong (`timezone: ...`).
    #[error("{}: {}", .0.field, .0.message)]
    Field(FieldError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
