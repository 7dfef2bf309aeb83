//! SeaORM entities, one module per table.

pub mod daily_event_counts;
pub mod daily_path_packs;
pub mod daily_path_views;
pub mod daily_user_sets;
pub mod events;
pub mod hourly_event_counts;
pub mod hourly_user_sets;
pub mod minute_event_counts;
pub mod site_users;
pub mod sites;
pub mod weekly_path_packs;
pub mod weekly_user_sets;
