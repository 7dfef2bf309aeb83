//! `GET /sites`: every site with data, in byte order.

use super::params::{reject_unknown, Params};
use crate::event::FieldError;
use crate::store::sql::binary_collation;
use crate::store::StoreError;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// `/sites` takes no parameters; anything given is a typo worth naming.
pub fn parse_sites(params: &Params) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    reject_unknown(params, &[], &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Every site with data, in byte order.
pub async fn sites(db: &DatabaseConnection) -> Result<Vec<String>, StoreError> {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT site_id FROM sites ORDER BY site_id{} ASC",
        binary_collation(backend)
    );
    db.query_all_raw(Statement::from_string(backend, sql))
        .await?
        .into_iter()
        .map(|row| Ok(row.try_get_by_index::<String>(0)?))
        .collect()
}
