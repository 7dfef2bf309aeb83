//! SeaORM entities for the tables read or written as rows: raw events (read
//! back by tests and exports), sites, and access control (keys, shared
//! links, site domains), the cookieless visitors' daily salts, and sites'
//! goals and saved funnels. The rollups are packed
//! values read with SQL of their own (`analytics_core::query`), and have no
//! entity. migration/tests/entities.rs checks every entity here against the
//! table the migrations make, on PostgreSQL and SQLite: add a new entity to
//! its `ENTITIES` list.

pub mod api_keys;
pub mod events;
pub mod funnels;
pub mod goals;
pub mod share_links;
pub mod site_domains;
pub mod sites;
pub mod visitor_salts;
