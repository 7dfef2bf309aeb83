//! Sites: every site that has data (a writer adds its row on the first
//! event), and those an admin registered (`registered`), which in Kafka
//! mode are the only ones that may send events. Each has an IANA time
//! zone (`timezone`, `UTC` unless an admin set another).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sites")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: String,
    /// The next user ordinal to assign (the number of users ever seen).
    pub user_count: i64,
    pub registered: bool,
    pub created_at: Option<DateTimeUtc>,
    /// User deletions so far: the epoch of writers' ordinal caches.
    pub deletions: i64,
    /// The site's IANA time zone (`Europe/Berlin`); `UTC` by default.
    pub timezone: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
