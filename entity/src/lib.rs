//! SeaORM entities, one module per table.

pub mod daily_path_views;
pub mod daily_users;
pub mod events;
pub mod hourly_event_counts;
