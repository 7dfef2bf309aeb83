//! Every way a store call fails, sorted by what the caller should do:
//! retry later (`Unavailable`), give up on these rows (`Rejected`), or
//! stop and call an operator (`Corrupt`, `Capacity`, `Internal`). The
//! underlying error is kept as the source, for the log; none of it is ever
//! shown to a client.

use crate::codec::CodecError;
use crate::ingest::FoldError;
use sea_orm::{DbErr, RuntimeErr};

type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer, or asked to be retried (connection,
    /// pool, lock, serialization failure, shutdown, disk full).
    #[error("database unavailable")]
    Unavailable(#[source] Source),
    /// The database refused the rows themselves (a data exception or a
    /// broken constraint): the same rows fail the same way every time.
    #[error("database rejected the data")]
    Rejected(#[source] Source),
    /// Stored data does not decode.
    #[error("stored data is corrupt")]
    Corrupt(#[source] Source),
    /// A limit of the schema was reached.
    #[error("store capacity exceeded")]
    Capacity(#[source] Source),
    /// Anything else: a bug (bad SQL, an unexpected type).
    #[error("database error")]
    Internal(#[source] Source),
}

impl StoreError {
    /// Worth retrying the same call later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// The database refused these rows: retrying them is pointless.
    pub fn is_rejected_data(&self) -> bool {
        matches!(self, Self::Rejected(_))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into().into())
    }
}

/// What a SQLSTATE (PostgreSQL) class says about retrying.
fn by_sqlstate(code: &str, source: Source) -> StoreError {
    // A lock not had within `lock_timeout` (dropping a partition).
    if code == "55P03" {
        return StoreError::Unavailable(source);
    }
    match code.get(..2).unwrap_or_default() {
        // Connection exceptions, transaction rollback (serialization
        // failure, deadlock), insufficient resources, operator
        // intervention (shutdown, cannot connect now), system errors.
        "08" | "40" | "53" | "57" | "58" => StoreError::Unavailable(source),
        // Data exceptions (invalid text such as byte 0, out-of-range
        // values), integrity constraints, program limits (an index entry
        // too large).
        "22" | "23" | "54" => StoreError::Rejected(source),
        "XX" => StoreError::Corrupt(source),
        _ => StoreError::Internal(source),
    }
}

/// What an SQLite result code says about retrying.
fn by_sqlite_code(primary: i32, source: Source) -> StoreError {
    match primary {
        // BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN, PROTOCOL.
        5 | 6 | 7 | 10 | 13 | 14 | 15 => StoreError::Unavailable(source),
        // TOOBIG, CONSTRAINT, MISMATCH, RANGE.
        18 | 19 | 20 | 25 => StoreError::Rejected(source),
        // CORRUPT, NOTADB.
        11 | 26 => StoreError::Corrupt(source),
        _ => StoreError::Internal(source),
    }
}

fn from_sqlx(e: &sea_orm::sqlx::Error, source: Source) -> StoreError {
    use sea_orm::sqlx::Error as E;
    match e {
        E::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            if db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() {
                by_sqlite_code(code.parse::<i32>().unwrap_or(0) & 0xff, source)
            } else {
                by_sqlstate(&code, source)
            }
        }
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
            StoreError::Unavailable(source)
        }
        E::Encode(_) => StoreError::Rejected(source),
        _ => StoreError::Internal(source),
    }
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        let sqlx = match &e {
            DbErr::Conn(RuntimeErr::SqlxError(s))
            | DbErr::Exec(RuntimeErr::SqlxError(s))
            | DbErr::Query(RuntimeErr::SqlxError(s)) => Some(s.clone()),
            _ => None,
        };
        match (sqlx, &e) {
            (Some(s), _) => from_sqlx(&s, e.into()),
            (None, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) => Self::Unavailable(e.into()),
            (None, _) => Self::Internal(e.into()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => by_sqlite_code(f.extended_code & 0xff, e.into()),
            _ => Self::Internal(e.into()),
        }
    }
}

impl From<CodecError> for StoreError {
    fn from(e: CodecError) -> Self {
        Self::Corrupt(e.into())
    }
}

impl From<FoldError> for StoreError {
    fn from(e: FoldError) -> Self {
        match e {
            FoldError::TooManyUsers(_) => Self::Capacity(e.into()),
            FoldError::NoSiteRow(_) => Self::Internal(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> Source {
        "x".into()
    }

    #[test]
    fn sqlstate_classes() {
        assert!(by_sqlstate("40001", src()).is_transient());
        assert!(by_sqlstate("08006", src()).is_transient());
        assert!(by_sqlstate("57P01", src()).is_transient());
        assert!(by_sqlstate("55P03", src()).is_transient());
        assert!(!by_sqlstate("55006", src()).is_transient());
        assert!(by_sqlstate("22021", src()).is_rejected_data());
        assert!(by_sqlstate("22P05", src()).is_rejected_data());
        assert!(by_sqlstate("23505", src()).is_rejected_data());
        assert!(by_sqlstate("54000", src()).is_rejected_data());
        assert!(matches!(by_sqlstate("42P01", src()), StoreError::Internal(_)));
        assert!(matches!(by_sqlstate("XX001", src()), StoreError::Corrupt(_)));
    }

    #[test]
    fn sqlite_codes() {
        assert!(by_sqlite_code(5, src()).is_transient());
        assert!(by_sqlite_code(13, src()).is_transient());
        assert!(by_sqlite_code(19, src()).is_rejected_data());
        assert!(matches!(by_sqlite_code(11, src()), StoreError::Corrupt(_)));
        assert!(matches!(by_sqlite_code(1, src()), StoreError::Internal(_)));
    }

    #[test]
    fn pool_exhaustion_is_transient_and_codec_errors_are_corrupt() {
        let e = StoreError::from(DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout));
        assert!(e.is_transient());
        assert!(matches!(
            StoreError::from(CodecError::PathPack("x")),
            StoreError::Corrupt(_)
        ));
        assert!(matches!(
            StoreError::from(FoldError::TooManyUsers("s".into())),
            StoreError::Capacity(_)
        ));
    }
}
