//! Stored values, pure: the path packs and the user sets, encoded and
//! decoded without a database. A value that does not decode is corrupt
//! stored data, never a reason to retry.

pub mod path_pack;
pub mod user_set;

/// A stored value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("a stored path pack is corrupt: {0}")]
    PathPack(&'static str),
    #[error("a stored user set is corrupt: {0}")]
    UserSet(String),
}
