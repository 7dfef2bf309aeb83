//! SeaORM entities, one module per table.

pub mod daily_path_views;
pub mod daily_users;
pub mod events;
pub mod hourly_event_counts;
pub mod hourly_users;
pub mod minute_event_counts;
pub mod sites;
