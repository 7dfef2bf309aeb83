//! A site's goals: added, listed, removed; and read as the query API's
//! `Goal`s.

use super::registered;
use crate::access::AccessError;
use crate::event::FieldError;
use crate::store::StoreError;
use analytics_query::{Goal, GoalKind};
use chrono::Utc;
use entity::goals;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

/// A goal from its parts as an admin gives them: exactly one of `page` (a
/// path pattern) and `event` (an event name, optionally with one property
/// `key=value`).
pub fn definition(
    name: &str,
    page: Option<&str>,
    event: Option<&str>,
    prop: Option<(&str, &str)>,
    currency: Option<&str>,
) -> Result<Goal, AccessError> {
    let field = |e: analytics_query::goal::GoalError| AccessError::Field(FieldError::new(e.field, e.message));
    match (page, event) {
        (Some(_), None) if currency.is_some() => Err(AccessError::Field(FieldError::new(
            "currency",
            "only a custom-event goal has revenue",
        ))),
        (Some(p), None) if prop.is_none() => Goal::page(name, p).map_err(field),
        (Some(_), None) => Err(AccessError::Field(FieldError::new(
            "prop",
            "only a custom-event goal matches a property",
        ))),
        (None, Some(e)) => {
            let goal = Goal::event(name, e, prop).map_err(field)?;
            match currency {
                Some(c) => goal.with_currency(c).map_err(field),
                None => Ok(goal),
            }
        }
        _ => Err(AccessError::Field(FieldError::new(
            "page",
            "a goal is either a pageview goal (page) or a custom-event goal (event)",
        ))),
    }
}

/// Adds `goal` to the registered `site`; its name must be new there.
pub async fn add(db: &impl ConnectionTrait, site: &str, goal: &Goal) -> Result<(), AccessError> {
    registered(db, site).await?;
    let (kind, pattern, event, prop, currency) = match &goal.kind {
        GoalKind::Page { pattern } => ("page", Some(pattern.clone()), None, None, None),
        GoalKind::Event { event, prop, currency } => {
            ("event", None, Some(event.clone()), prop.clone(), currency.clone())
        }
    };
    if goals::Entity::find_by_id((site.to_string(), goal.name.clone()))
        .one(db)
        .await
        .map_err(StoreError::from)?
        .is_some()
    {
        return Err(AccessError::Conflict(format!(
            "site `{site}` already has a goal named `{}`",
            goal.name
        )));
    }
    goals::Entity::insert(goals::ActiveModel {
        site_id: Set(site.to_string()),
        name: Set(goal.name.clone()),
        kind: Set(kind.to_string()),
        pattern: Set(pattern),
        event: Set(event),
        prop_key: Set(prop.as_ref().map(|p| p.0.clone())),
        prop_value: Set(prop.map(|p| p.1)),
        currency: Set(currency),
        created_at: Set(Utc::now()),
    })
    .exec(db)
    .await
    .map_err(StoreError::from)?;
    Ok(())
}

/// `site`'s goals, by name.
pub async fn list(db: &impl ConnectionTrait, site: &str) -> Result<Vec<Goal>, StoreError> {
    goals::Entity::find()
        .filter(goals::Column::SiteId.eq(site))
        .order_by_asc(goals::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Removes `site`'s goal `name` (saved funnels naming it then fail to run
/// until it is added again).
pub async fn remove(db: &impl ConnectionTrait, site: &str, name: &str) -> Result<(), AccessError> {
    let deleted = goals::Entity::delete_by_id((site.to_string(), name.to_string()))
        .exec(db)
        .await
        .map_err(StoreError::from)?
        .rows_affected;
    if deleted == 0 {
        return Err(AccessError::NotFound(format!(
            "site `{site}` has no goal named `{name}`"
        )));
    }
    Ok(())
}

fn from_row(row: goals::Model) -> Result<Goal, StoreError> {
    let corrupt =
        |what: &str| StoreError::Corrupt(format!("goal `{}` of site `{}`: {what}", row.name, row.site_id).into());
    let prop = match (&row.prop_key, &row.prop_value) {
        (Some(k), Some(v)) => Some((k.as_str(), v.as_str())),
        (None, None) => None,
        _ => return Err(corrupt("a property key without a value")),
    };
    let goal = match (row.kind.as_str(), &row.pattern, &row.event) {
        ("page", Some(p), None) if prop.is_none() => Goal::page(&row.name, p),
        ("event", None, Some(e)) => match &row.currency {
            None => Goal::event(&row.name, e, prop),
            Some(c) => Goal::event(&row.name, e, prop).and_then(|g| g.with_currency(c)),
        },
        _ => return Err(corrupt("not a pageview nor a custom-event goal")),
    };
    goal.map_err(|e| corrupt(&e.to_string()))
}
