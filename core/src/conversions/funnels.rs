//! A site's saved funnels: a name and its steps (as `POST /api/v2/funnel`
//! takes them), run by name with `{"funnel": name}`.

use super::registered;
use crate::access::AccessError;
use crate::event::FieldError;
use crate::store::StoreError;
use analytics_query::funnel::{parse_steps_json, StepSpec};
use chrono::Utc;
use entity::funnels;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::Value;

/// Longest funnel name, in bytes.
pub const MAX_NAME: usize = 256;

/// A saved funnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFunnel {
    pub name: String,
    pub steps: Vec<StepSpec>,
}

impl SavedFunnel {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "steps": self.steps.iter().map(StepSpec::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Reads a funnel as an admin gives it: a name and a `steps` array. The
/// steps' goals are checked when it is saved.
pub fn definition(name: &str, steps: &Value) -> Result<SavedFunnel, AccessError> {
    if name.trim().is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AccessError::Field(FieldError::new(
            "name",
            format!("a funnel name is 1 to {MAX_NAME} bytes without control characters"),
        )));
    }
    let steps = parse_steps_json(steps).map_err(|e| {
        let first = e.0.first();
        AccessError::Field(FieldError::new(
            first.map_or("steps".to_owned(), |x| x.path.clone()),
            first.map_or(String::new(), |x| x.message.clone()),
        ))
    })?;
    Ok(SavedFunnel {
        name: name.to_owned(),
        steps,
    })
}

/// Saves `funnel` for the registered `site` (a new name); every goal step
/// must name one of the site's goals.
pub async fn add(db: &impl ConnectionTrait, site: &str, funnel: &SavedFunnel) -> Result<(), AccessError> {
    registered(db, site).await?;
    let goals = super::goals::list(db, site).await?;
    for (i, step) in funnel.steps.iter().enumerate() {
        if let StepSpec::Goal(name) = step {
            if !goals.iter().any(|g| g.name == *name) {
                return Err(AccessError::Field(FieldError::new(
                    format!("steps[{i}].goal"),
                    format!("site `{site}` has no goal named `{name}`"),
                )));
            }
        }
    }
    if get(db, site, &funnel.name).await?.is_some() {
        return Err(AccessError::Conflict(format!(
            "site `{site}` already has a funnel named `{}`",
            funnel.name
        )));
    }
    let steps: Vec<Value> = funnel.steps.iter().map(StepSpec::to_json).collect();
    funnels::Entity::insert(funnels::ActiveModel {
        site_id: Set(site.to_string()),
        name: Set(funnel.name.clone()),
        steps: Set(Value::Array(steps).to_string()),
        created_at: Set(Utc::now()),
    })
    .exec(db)
    .await
    .map_err(StoreError::from)?;
    Ok(())
}

/// `site`'s saved funnels, by name.
pub async fn list(db: &impl ConnectionTrait, site: &str) -> Result<Vec<SavedFunnel>, StoreError> {
    funnels::Entity::find()
        .filter(funnels::Column::SiteId.eq(site))
        .order_by_asc(funnels::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// `site`'s funnel `name`, if saved.
pub async fn get(db: &impl ConnectionTrait, site: &str, name: &str) -> Result<Option<SavedFunnel>, StoreError> {
    funnels::Entity::find_by_id((site.to_string(), name.to_string()))
        .one(db)
        .await?
        .map(from_row)
        .transpose()
}

pub async fn remove(db: &impl ConnectionTrait, site: &str, name: &str) -> Result<(), AccessError> {
    let deleted = funnels::Entity::delete_by_id((site.to_string(), name.to_string()))
        .exec(db)
        .await
        .map_err(StoreError::from)?
        .rows_affected;
    if deleted == 0 {
        return Err(AccessError::NotFound(format!(
            "site `{site}` has no funnel named `{name}`"
        )));
    }
    Ok(())
}

fn from_row(row: funnels::Model) -> Result<SavedFunnel, StoreError> {
    let steps = serde_json::from_str::<Value>(&row.steps)
        .ok()
        .and_then(|v| parse_steps_json(&v).ok())
        .ok_or_else(|| {
            StoreError::Corrupt(format!("funnel `{}` of site `{}` has unreadable steps", row.name, row.site_id).into())
        })?;
    Ok(SavedFunnel { name: row.name, steps })
}
