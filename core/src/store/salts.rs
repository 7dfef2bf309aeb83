//! The daily salts of cookieless visitors (`visitor_salts`): one random
//! key a UTC day, made by whichever api replica asks first and read by the
//! others, kept for the day after (a replica whose clock is still on
//! yesterday must not mint a second one) and then deleted, so no salt
//! outlives 48 hours and no visitor id can be recomputed after that.

use super::StoreError;
use chrono::{Duration, NaiveDate, Utc};
use entity::visitor_salts;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

/// SipHash's 128-bit key.
pub type Salt = [u8; 16];

/// How many days a salt is kept: its own and the next.
pub const SALT_DAYS: i64 = 2;

/// The salt of `day`, made now if no replica made it yet.
pub async fn salt_for(db: &DatabaseConnection, day: NaiveDate) -> Result<Salt, StoreError> {
    let mut fresh: Salt = [0; 16];
    getrandom::fill(&mut fresh).map_err(|e| StoreError::internal(format!("no randomness for a salt: {e}")))?;
    visitor_salts::Entity::insert(visitor_salts::ActiveModel {
        day: Set(day),
        salt: Set(fresh.to_vec()),
        created_at: Set(Utc::now()),
    })
    .on_conflict(OnConflict::column(visitor_salts::Column::Day).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    let stored = visitor_salts::Entity::find_by_id(day)
        .one(db)
        .await?
        .ok_or_else(|| StoreError::internal(format!("the salt of {day} vanished after it was written")))?;
    Salt::try_from(stored.salt.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("the salt of {day} is {} bytes, not 16", stored.salt.len()).into()))
}

/// Deletes the salts older than `SALT_DAYS` days before and including
/// `today`; returns how many went.
pub async fn prune(db: &DatabaseConnection, today: NaiveDate) -> Result<u64, StoreError> {
    let oldest_kept = today - Duration::days(SALT_DAYS - 1);
    let done = visitor_salts::Entity::delete_many()
        .filter(visitor_salts::Column::Day.lt(oldest_kept))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}
